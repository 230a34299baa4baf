"""Vocabulary trimming: keep only the token ids a task uses, the rest map to the unknown token.

The kept ids are every id that occurs in the task's encoded training and dev data (what the
run trained and evaluated on) plus the tokenizer's special tokens (added tokens marked
special, the unknown, padding and mask tokens), in ascending order of their original id: new
id ``i`` is original id ``kept[i]``. The word-embedding matrix keeps those rows only; position
and token-type embeddings are untouched. An input made only of covered tokens gives exactly
the untrimmed model's logits (the embedding lookup picks the same rows).

Beside the model two files say how text becomes ids:

- ``NAME.vocab.json``: ``{"kept_ids": [...], "unk_id": new id of the unknown token,
  "original_vocab_size": V}``; :func:`map_ids` applies it to ids of the original tokenizer
  (the reference: an uncovered id becomes ``unk_id``);
- ``NAME.tokenizer.json`` (WordPiece and WordLevel tokenizers): the original tokenizer with
  its vocabulary, added tokens and post-processor ids renumbered. For text made of covered
  tokens it gives ``map_ids`` of the original ids (WordPiece's greedy longest match finds the
  same pieces: none longer was in the original vocabulary either); WordLevel maps an
  uncovered word to the unknown token exactly as ``map_ids`` does. With WordPiece a word that
  was one uncovered token may be split into covered pieces instead of becoming the unknown
  token; ``map_ids`` after the original tokenizer is exact in every case. Other tokenizer
  models (BPE, Unigram) get the mapping only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["covered_ids", "map_ids", "mapping_record", "trimmed_tokenizer_json", "unk_token"]


def unk_token(tok: Any) -> str | None:
    """The unknown token of a ``tokenizers.Tokenizer`` (None when it has none)."""
    model = json.loads(tok.to_str()).get("model", {})
    name = model.get("unk_token")
    return name if name is not None and tok.token_to_id(name) is not None else None


def covered_ids(tok: Any, splits: Iterable[Sequence[Sequence[int]]],
                extra: Iterable[int | None] = ()) -> list[int]:
    """Sorted ids occurring in ``splits`` (lists of encoded examples), plus the special
    tokens of ``tok``, its unknown token and ``extra`` ids (pad, mask)."""
    ids: set[int] = set()
    for split in splits:
        for example in split:
            ids.update(int(i) for i in example)
    for i, added in tok.get_added_tokens_decoder().items():
        if added.special:
            ids.add(int(i))
    unk = unk_token(tok)
    if unk is not None:
        ids.add(int(tok.token_to_id(unk)))
    ids.update(int(i) for i in extra if i is not None)
    return sorted(ids)


def map_ids(ids: Sequence[int], kept: Sequence[int], unk_new: int) -> list[int]:
    """Original ids -> trimmed ids (an id not kept becomes ``unk_new``)."""
    new = {old: i for i, old in enumerate(kept)}
    return [new.get(int(i), unk_new) for i in ids]


def mapping_record(kept: Sequence[int], unk_new: int, vocab_size: int) -> dict[str, Any]:
    return {"kept_ids": [int(i) for i in kept], "unk_id": int(unk_new),
            "original_vocab_size": int(vocab_size)}


def trimmed_tokenizer_json(tok: Any, kept: Sequence[int]) -> str | None:
    """``tok`` (a WordPiece or WordLevel ``tokenizers.Tokenizer``) with only the ``kept``
    ids, renumbered in order; None for other tokenizer models (BPE, Unigram: the id mapping
    is then the way in)."""
    d = json.loads(tok.to_str())
    model = d.get("model") or {}
    if model.get("type") not in ("WordPiece", "WordLevel"):
        return None
    new = {old: i for i, old in enumerate(kept)}
    model["vocab"] = {t: new[i] for t, i in model["vocab"].items() if i in new}
    d["added_tokens"] = [{**a, "id": new[a["id"]]} for a in d.get("added_tokens") or ()
                         if a["id"] in new]
    _remap_post(d.get("post_processor"), new)
    return json.dumps(d, ensure_ascii=False)


def _remap_post(post: Any, new: dict[int, int]) -> None:
    """Renumber the special-token ids a post-processor inserts ([CLS], [SEP])."""
    if not isinstance(post, dict):
        return
    for key in ("cls", "sep"):  # BertProcessing / RobertaProcessing: [token, id]
        if isinstance(post.get(key), list) and len(post[key]) == 2:
            post[key] = [post[key][0], new[int(post[key][1])]]
    for spec in (post.get("special_tokens") or {}).values():  # TemplateProcessing
        spec["ids"] = [new[int(i)] for i in spec.get("ids", ())]
    for sub in post.get("processors") or ():  # Sequence
        _remap_post(sub, new)
