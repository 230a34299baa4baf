"""Batches: length-grouped order for training, dynamic padding to the longest in a batch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ticketlens.data.tokenizer import Encoded


@dataclass
class TensorData:
    """An encoded split: token ids, token type ids, labels (class ids, or float scores when
    ``regression``)."""

    enc: Encoded
    labels: list
    regression: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.enc.input_ids]


def length_grouped_order(lengths: list[int], batch_size: int, generator: torch.Generator,
                         mega: int = 50) -> list[list[int]]:
    """Shuffled batches of similar-length examples (as HF's LengthGroupedSampler): shuffle,
    cut into mega-batches of ``mega * batch_size``, sort each by length, split into batches,
    then shuffle the batches. Every example appears once; the last batch may be short."""
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    size = mega * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(perm), size):
        chunk = sorted(perm[start:start + size], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def batch_stream(data: TensorData, batch_size: int, seed: int):
    """An endless stream of index batches, epoch after epoch, a pure function of ``seed``.
    Short tail batches are dropped so every step sees ``batch_size`` examples."""
    g = torch.Generator().manual_seed(seed)
    while True:
        for b in length_grouped_order(data.lengths, batch_size, g):
            if len(b) == batch_size:
                yield b


def eval_batches(data: TensorData, batch_size: int) -> list[list[int]]:
    """Deterministic batches sorted by length (least padding)."""
    order = sorted(range(len(data)), key=lambda i: data.lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def collate(data: TensorData, idx: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad ``idx`` examples to the longest: input_ids, attention_mask, token_type_ids, labels."""
    lengths = [data.lengths[i] for i in idx]
    width = max(lengths)
    ids = torch.tensor([data.enc.input_ids[i] + [pad_id] * (width - n)
                        for i, n in zip(idx, lengths)], dtype=torch.long)
    types = torch.tensor([data.enc.token_type_ids[i] + [0] * (width - n)
                          for i, n in zip(idx, lengths)], dtype=torch.long)
    attn = (torch.arange(width) < torch.tensor(lengths)[:, None]).long()
    return {"input_ids": ids, "attention_mask": attn, "token_type_ids": types,
            "labels": torch.tensor([data.labels[i] for i in idx],
                                   dtype=torch.float32 if data.regression else torch.long)}


def lm_collate(data: TensorData, idx: list[int], pad_id: int, objective: str,
               generator: torch.Generator | None = None, mask_id: int | None = None,
               vocab_size: int = 0, special_ids: tuple[int, ...] = (),
               rate: float = 0.15) -> dict[str, torch.Tensor]:
    """Language-model batches. ``clm``: labels are the inputs (padding ignored; the model
    shifts them). ``mlm``: ``rate`` of the non-special tokens are predicted; of those 80% are
    replaced by the mask token, 10% by a random token, 10% kept (Devlin et al. 2019), drawn
    from ``generator`` so a seeded phase repeats exactly."""
    b = collate(data, idx, pad_id)
    ids = b["input_ids"]
    labels = ids.clone()
    labels[b["attention_mask"] == 0] = -100
    if objective == "mlm":
        g = generator or torch.Generator().manual_seed(0)
        special = torch.isin(ids, torch.tensor(sorted(set(special_ids) | {pad_id})))
        chosen = (torch.rand(ids.shape, generator=g) < rate) & ~special
        labels[~chosen] = -100
        roll = torch.rand(ids.shape, generator=g)
        ids = ids.clone()
        ids[chosen & (roll < 0.8)] = mask_id
        rnd = chosen & (roll >= 0.8) & (roll < 0.9)
        ids[rnd] = torch.randint(0, vocab_size, ids.shape, generator=g)[rnd]
    b["input_ids"] = ids
    b["labels"] = labels
    return b
