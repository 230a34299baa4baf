"""N:M semi-structured sparsity: N kept weights in every M consecutive ones along the input
dimension (Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks": the 2:4 pattern of
NVIDIA's sparse tensor cores), as pruned by Wanda and SparseGPT.

The groups run along the *input* axis of a weight, i.e. along one output unit's inputs: dim 1
of an ``nn.Linear`` weight ``(out, in)``, dim 0 of GPT-2's ``Conv1D`` weight ``(in, out)``
(layout ``conv1d``). ``n`` always counts the weights *kept*; the reference implementations'
``prune_n`` counts those pruned (the same number for 2:4 and 4:8 only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ticketlens.core.errors import ConfigError

LAYOUTS = ("linear", "conv1d")


@dataclass(frozen=True)
class Pattern:
    """Keep ``n`` of every ``m`` consecutive weights along the input dimension."""

    n: int
    m: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and isinstance(self.m, int)) or not 1 <= self.n <= self.m:
            raise ConfigError(f"N:M pattern needs integers 1 <= N <= M, got {self.n}:{self.m}")

    @property
    def sparsity(self) -> float:
        """The fraction pruned, ``1 - n/m``."""
        return 1.0 - self.n / self.m

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"


def parse_pattern(text: str) -> Pattern | None:
    """``"unstructured"`` -> ``None``; ``"2:4"``, ``"4:8"``, ``"N:M"`` -> :class:`Pattern`.

    Anything else, N > M or N < 1 raises a one-line :class:`ConfigError`.
    """
    s = str(text).strip().lower()
    if s == "unstructured":
        return None
    match = re.fullmatch(r"(\d{1,6})\s*:\s*(\d{1,6})", s)
    if not match:
        raise ConfigError(f"sparsity pattern {text!r}: expected 'unstructured' or N:M "
                          "(e.g. 2:4, 4:8)")
    n, m = int(match.group(1)), int(match.group(2))
    if n < 1 or n > m:
        raise ConfigError(f"sparsity pattern {text!r}: N:M needs 1 <= N <= M")
    return Pattern(n, m)


def _rows_view(t: torch.Tensor, layout: str) -> torch.Tensor:
    """``t`` as ``(out, in)`` (a view: the transpose for ``conv1d``)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    if t.dim() != 2:
        raise ConfigError(f"N:M sparsity needs a 2-D weight, got shape {tuple(t.shape)}")
    return t if layout == "linear" else t.t()


def _check_groups(in_features: int, m: int, shape: tuple[int, ...]) -> None:
    if in_features % m:
        raise ConfigError(f"weight of shape {shape}: its input dimension ({in_features}) is "
                          f"not a multiple of M={m}, so it cannot hold an N:M pattern")


def nm_mask(scores: torch.Tensor, n: int, m: int, layout: str = "linear") -> torch.Tensor:
    """Keep mask (bool, the shape and device of ``scores``): the ``n`` highest scores of every
    ``m`` consecutive entries along the input dimension are ``True``.

    Ties within a group are broken by ``torch.topk`` (deterministic for a given input).
    """
    Pattern(n, m)  # validates n, m
    rows = _rows_view(scores, layout)  # (out, in)
    out, inp = rows.shape
    _check_groups(inp, m, tuple(scores.shape))
    groups = rows.reshape(out, inp // m, m)  # (out, in/m, m)
    keep = torch.zeros(groups.shape, dtype=torch.bool, device=scores.device)
    keep.scatter_(2, torch.topk(groups, n, dim=2).indices, True)
    keep = keep.reshape(out, inp)
    return keep if layout == "linear" else keep.t().contiguous()


def is_nm(mask: torch.Tensor, n: int, m: int, layout: str = "linear") -> bool:
    """Whether every group of ``m`` consecutive entries along the input dimension holds
    exactly ``n`` kept (``True``) entries; ``False`` when the input dimension is not a
    multiple of ``m``."""
    rows = _rows_view(mask, layout)
    out, inp = rows.shape
    if inp % m:
        return False
    counts = rows.to(torch.int64).reshape(out, inp // m, m).sum(dim=2)
    return bool((counts == n).all())


def nm_magnitude_masks(weights: Mapping[str, torch.Tensor], layouts: Mapping[str, str],
                       n: int, m: int) -> dict[str, torch.Tensor]:
    """N:M masks keeping the largest magnitudes (CPU bool tensors, one per weight):
    ``layouts[name]`` is ``"linear"`` or ``"conv1d"`` (``TensorInfo.layout``)."""
    return {name: nm_mask(w.detach().abs().float(), n, m, layouts[name]).cpu()
            for name, w in weights.items()}
