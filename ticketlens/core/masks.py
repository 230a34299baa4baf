"""Masks: boolean tensors keyed by parameter name (True = weight kept).

On disk a mask set is one safetensors file holding, per parameter, the mask bit-packed into
``uint8`` (``numpy.packbits``, big-endian bit order, row-major flattening), 1 bit per weight.
The original shapes live in the file's metadata. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ticketlens.core.errors import RunFormatError
from ticketlens.core.io import write_bytes_atomic

MASK_FORMAT = "ticketlens.mask"
MASK_FORMAT_VERSION = 1

Masks = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- packing
def pack(mask: torch.Tensor) -> np.ndarray:
    """Bool tensor of any shape -> uint8 vector of ``ceil(numel / 8)`` bytes."""
    return np.packbits(mask.detach().to("cpu", torch.bool).numpy().reshape(-1))


def unpack(packed: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`pack`."""
    n = math.prod(shape)
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size != (n + 7) // 8:
        raise ValueError(f"packed mask has {packed.size} bytes, expected {(n + 7) // 8}")
    bits = np.unpackbits(packed, count=n).astype(bool, copy=False)
    return torch.from_numpy(bits.reshape(shape))


def save_masks(
    path: str | os.PathLike[str], masks: Mapping[str, torch.Tensor], **meta: str
) -> int:
    """Write ``masks`` bit-packed to ``path`` atomically; returns the file size in bytes."""
    from safetensors.numpy import save

    arrays = {name: pack(m) for name, m in masks.items()}
    shapes = {name: list(m.shape) for name, m in masks.items()}
    metadata = {
        "format": MASK_FORMAT,
        "format_version": str(MASK_FORMAT_VERSION),
        "bitorder": "big",
        "shapes": json.dumps(shapes, separators=(",", ":")),
        **meta,
    }
    data = save(arrays, metadata=metadata)
    write_bytes_atomic(path, data)
    return len(data)


def read_mask_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes a mask file declares (reads the header only)."""
    return _open_checked(path)[1]


def load_masks(
    path: str | os.PathLike[str],
    expected: Mapping[str, tuple[int, ...]] | None = None,
) -> Masks:
    """Read a mask file written by :func:`save_masks`.

    ``expected`` (name -> shape) validates the file against a model: missing, extra or
    mis-shaped entries raise :class:`RunFormatError` with a message naming the first problem.
    """
    from safetensors import safe_open

    path = Path(path)
    _, shapes = _open_checked(path)
    if expected is not None:
        check_names_and_shapes(shapes, expected, source=str(path))
    out: Masks = {}
    try:
        with safe_open(str(path), framework="numpy") as fh:
            for name, shape in shapes.items():
                out[name] = unpack(fh.get_tensor(name), shape)
    except (ValueError, OSError, RuntimeError) as exc:
        raise RunFormatError(f"{path}: corrupt mask file ({exc})") from None
    return out


def load_packed(
    path: str | os.PathLike[str], expected: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, np.ndarray]:
    """The bit-packed ``uint8`` arrays of a mask file, validated, without unpacking."""
    from safetensors import safe_open

    _, shapes = _open_checked(path)
    if expected is not None:
        check_names_and_shapes(shapes, expected, source=str(path))
    try:
        with safe_open(str(path), framework="numpy") as fh:
            out = {name: fh.get_tensor(name) for name in shapes}
    except (ValueError, OSError, RuntimeError) as exc:
        raise RunFormatError(f"{path}: corrupt mask file ({exc})") from None
    for name, arr in out.items():
        if arr.dtype != np.uint8 or arr.size != (math.prod(shapes[name]) + 7) // 8:
            raise RunFormatError(f"{path}: corrupt mask file ({name} has the wrong size)")
    return out


def _open_checked(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, tuple]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RunFormatError(f"{path}: mask file not found")
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            keys = set(fh.keys())
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise RunFormatError(f"{path}: not a readable safetensors mask file ({exc})") from None
    if meta.get("format") != MASK_FORMAT:
        raise RunFormatError(f"{path}: not a ticketlens mask file (no '{MASK_FORMAT}' header)")
    if int(meta.get("format_version", "0")) > MASK_FORMAT_VERSION:
        raise RunFormatError(
            f"{path}: mask format version {meta['format_version']} is newer than this "
            f"ticketlens understands ({MASK_FORMAT_VERSION}); upgrade ticketlens"
        )
    try:
        shapes = {k: tuple(int(d) for d in v) for k, v in json.loads(meta["shapes"]).items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        raise RunFormatError(f"{path}: mask file metadata has no valid 'shapes'") from None
    if set(shapes) != keys:
        raise RunFormatError(f"{path}: mask file tensors do not match its declared shapes")
    return meta, shapes


def check_names_and_shapes(
    got: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    if missing or extra:
        what = (
            f"lacks {len(missing)} of the model's prunable tensors (first: {missing[0]})"
            if missing
            else f"has {len(extra)} tensors the model does not have (first: {extra[0]})"
        )
        raise RunFormatError(f"{source}: mask is for another model: it {what}")
    for name, shape in expected.items():
        if tuple(got[name]) != tuple(shape):
            raise RunFormatError(
                f"{source}: mask is for another model: {name} has shape "
                f"{tuple(got[name])}, the model's is {tuple(shape)}"
            )


# --------------------------------------------------------------------------- statistics
def count_kept(masks: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(kept, total) over all tensors."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return kept, total


def sparsity(masks: Mapping[str, torch.Tensor]) -> float:
    kept, total = count_kept(masks)
    return 1.0 - kept / total if total else 0.0


def sparsity_per_tensor(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    return {name: 1.0 - float(m.sum()) / m.numel() for name, m in masks.items()}


def ones_like(weights: Mapping[str, torch.Tensor]) -> Masks:
    return {name: torch.ones(w.shape, dtype=torch.bool) for name, w in weights.items()}


# --------------------------------------------------------------------------- pruning
def magnitude_prune(
    weights: Mapping[str, torch.Tensor],
    masks: Mapping[str, torch.Tensor],
    amount: float,
    scope: str = "global",
) -> Masks:
    """Prune ``amount`` (a fraction) of the *remaining* weights with the smallest magnitude.

    ``scope="global"`` ranks all tensors together, ``"tensor"`` each tensor on its own. The
    selection reproduces ``torch.nn.utils.prune.global_unstructured`` /
    ``l1_unstructured``: ``round(amount * remaining)`` weights, chosen by ``torch.topk``
    (``largest=False``) over the surviving weights concatenated in ``weights`` order.
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount}")
    names = list(weights)
    if scope == "tensor":
        return {n: _prune_vector(weights[n], masks[n], amount) for n in names}
    if scope != "global":
        raise ValueError(f"scope must be 'global' or 'tensor', got {scope!r}")
    flat_w = torch.cat([weights[n].detach().reshape(-1).float().cpu() for n in names])
    flat_m = torch.cat([masks[n].reshape(-1).cpu() for n in names])
    new = _prune_vector(flat_w, flat_m, amount)
    out: Masks = {}
    start = 0
    for n in names:
        size = weights[n].numel()
        out[n] = new[start : start + size].reshape(weights[n].shape).clone()
        start += size
    return out


def magnitude_like(weights: Mapping[str, torch.Tensor], like: Mapping[str, torch.Tensor],
                   scope: str = "global") -> Masks:
    """One-shot magnitude pruning of ``weights`` down to the kept counts of ``like``: the
    same total (``global``) or the same count in every tensor (``tensor``)."""
    ones = ones_like(weights)
    if scope == "tensor":
        return {n: _prune_vector(weights[n], ones[n], 1.0 - int(like[n].sum()) / like[n].numel())
                for n in weights}
    kept, total = count_kept(like)
    return magnitude_prune(weights, ones, (total - kept) / total, scope)


def _prune_vector(w: torch.Tensor, m: torch.Tensor, amount: float) -> torch.Tensor:
    w = w.detach().float().cpu()
    m = m.cpu().to(torch.bool)
    alive = m.reshape(-1).nonzero().squeeze(1)  # indices of surviving weights
    k = round(amount * alive.numel())  # same rounding as torch.nn.utils.prune
    new = m.clone()
    if k:
        scores = w.reshape(-1)[alive].abs()
        drop = torch.topk(scores, k=k, largest=False).indices
        new.view(-1)[alive[drop]] = False
    return new


def random_masks_like(
    masks: Mapping[str, torch.Tensor], generator: torch.Generator
) -> Masks:
    """Masks with exactly the same number of kept weights per tensor, at random positions."""
    out: Masks = {}
    for name, m in masks.items():
        kept = int(m.sum())
        new = torch.zeros(m.numel(), dtype=torch.bool)
        new[torch.randperm(m.numel(), generator=generator)[:kept]] = True
        out[name] = new.reshape(m.shape)
    return out


def prune_amount_for_round(kept: int, total: int, rate: float, target_sparsity: float) -> float:
    """Fraction of the ``kept`` weights to prune next: ``rate``, or less in the last round so
    the run lands exactly on ``round((1 - target_sparsity) * total)`` kept weights; 0 when
    there already."""
    target_kept = round((1.0 - target_sparsity) * total)
    if kept <= target_kept or kept == 0:
        return 0.0
    return min(rate, (kept - target_kept) / kept)
