"""The run's tokenizer as a folder ``AutoTokenizer`` loads, at the run's input length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ticketlens.core.run import Run

# special tokens of the tokenizers ticketlens runs use (built-in word level: BERT's names)
SPECIAL_TOKENS = {
    "unk_token": ("[UNK]", "<unk>", "<|endoftext|>"),
    "pad_token": ("[PAD]", "<pad>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"),
    "cls_token": ("[CLS]", "<s>"),
    "sep_token": ("[SEP]", "</s>"),
    "mask_token": ("[MASK]", "<mask>"),
    "bos_token": ("<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>"),
    "eos_token": ("</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"),
}


def save_tokenizer(run: Run, config, folder: Path) -> bool:
    """The run's ``tokenizer.json`` (an HF ``tokenizers`` file) as a fast tokenizer folder
    that ``AutoTokenizer`` loads; False when the run holds none."""
    if not run.paths.tokenizer.is_file():
        return False
    import transformers as tf
    from tokenizers import Tokenizer

    from ticketlens.models.load import uses_token_types

    tok = Tokenizer.from_file(str(run.paths.tokenizer))
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None)
    length = run_max_length(run, tok)
    if length:  # what the run truncated its inputs to: the model saw nothing longer
        length = min(length, int(positions)) if positions else length
        tok.enable_truncation(length)
    else:
        tok.no_truncation()
        length = positions
    tok.no_padding()
    vocab = tok.get_vocab(with_added_tokens=True)
    specials = {role: next((t for t in names if t in vocab), None)
                for role, names in SPECIAL_TOKENS.items()}
    names = ["input_ids", "attention_mask"]
    if uses_token_types(config):
        names.insert(1, "token_type_ids")
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, model_input_names=names,
        **({"model_max_length": int(length)} if length else {}),
        **{k: v for k, v in specials.items() if v is not None})
    fast.save_pretrained(str(folder))
    return True


def run_max_length(run: Run, tok: Any) -> int | None:
    """The input length the run trained and evaluated at: its ``--max-length`` (the
    manifest's config), else the truncation its ``tokenizer.json`` holds (``encode`` left
    it set); None when the run says neither (imported runs)."""
    data = (run.manifest.config or {}).get("data") or {}
    length = data.get("max_length") or (tok.truncation or {}).get("max_length")
    return length if isinstance(length, int) and length > 0 else None
