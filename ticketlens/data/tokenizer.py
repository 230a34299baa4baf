"""Tokenizers through HF ``tokenizers`` (no transformers import on this path).

The built-in word-level tokenizer is shared by every built-in task, so tickets found on
different tasks live on the same parameters. A file task on a from-scratch preset fits a
word-level vocabulary on its training split. Pretrained models bring their own
``tokenizer.json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ticketlens.core.errors import DataError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Padding for models without a pad token falls back to the end-of-text token (as HF does for
# GPT-2 / Llama classification): BERT, T5/Gemma, GPT-2/Qwen, Llama 1-2/Mistral, Llama 3.
PAD_CANDIDATES = ("[PAD]", "<pad>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>")


@dataclass
class Encoded:
    """Token ids per example (special tokens included, truncated)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` plus the ids the engine needs."""

    def __init__(self, tok, kind: str, pad_token: str | None = None,
                 mask_token: str | None = None):
        self.tok = tok
        self.kind = kind
        pad = pad_token or _first_present(tok, PAD_CANDIDATES)
        if pad is None:
            raise DataError("the tokenizer has no padding token")
        self.pad_token = pad
        self.pad_id = tok.token_to_id(pad)
        self.mask_token = mask_token or _first_present(tok, ("[MASK]", "<mask>"))
        self.mask_id = None if self.mask_token is None else tok.token_to_id(self.mask_token)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None,
               max_length: int) -> Encoded:
        self.tok.enable_truncation(max_length)
        self.tok.no_padding()
        inputs = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
        encs = self.tok.encode_batch(inputs)
        return Encoded([e.ids for e in encs], [e.type_ids for e in encs])

    def tokens(self, text: str, pair: str | None = None) -> list[str]:
        self.tok.no_truncation()
        return self.tok.encode(text, pair).tokens if pair else self.tok.encode(text).tokens

    def save(self, path: str | os.PathLike[str]) -> None:
        from ticketlens.core.io import write_bytes_atomic

        write_bytes_atomic(path, self.tok.to_str().encode("utf-8"))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], kind: str = "file") -> TextTokenizer:
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)), kind)
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise DataError(f"{path}: not a readable tokenizer.json ({exc})") from None


def _first_present(tok, candidates: Iterable[str]) -> str | None:
    for c in candidates:
        if tok.token_to_id(c) is not None:
            return c
    return None


def word_tokenizer(words: Sequence[str]) -> TextTokenizer:
    """A lower-casing word-level tokenizer over ``words``, BERT-style specials and templates."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    _bert_style(tok, normalizers, pre_tokenizers, processors, vocab)
    return TextTokenizer(tok, "word")


def fit_word_tokenizer(texts: Iterable[str], max_words: int = 8000) -> TextTokenizer:
    """Fit a word-level vocabulary (most frequent words) on ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=max_words + len(SPECIALS),
                                        special_tokens=list(SPECIALS), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    _bert_style(tok, normalizers, pre_tokenizers, processors, tok.get_vocab())
    return TextTokenizer(tok, "word-fitted")


def _bert_style(tok, normalizers, pre_tokenizers, processors, vocab) -> None:
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )


def builtin_tokenizer() -> TextTokenizer:
    from ticketlens.data.synthetic import vocabulary

    return word_tokenizer(vocabulary())
