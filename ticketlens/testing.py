"""Helpers for tests and examples: tiny models of every family, built locally."""

from __future__ import annotations

from typing import Any

FAMILY_PRESETS = {"bert": "tiny-bert", "distilbert": "tiny-distilbert", "gpt2": "tiny-gpt2",
                  "llama": "tiny-llama"}


def tiny_model(family: str = "bert", *, objective: str = "classification", seed: int = 0,
               vocab_size: int = 100, num_labels: int = 2) -> Any:
    """A random-init tiny model of ``family`` in eval mode."""
    from ticketlens.models.load import build_preset

    loaded = build_preset(FAMILY_PRESETS[family], vocab_size=vocab_size, num_labels=num_labels,
                          pad_id=0, seed=seed, objective=objective)
    return loaded.model.eval()


def tiny_inputs(batch: int = 3, length: int = 7, vocab_size: int = 100, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (batch, length), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
