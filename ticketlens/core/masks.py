"""Masks: boolean arrays keyed by parameter name (True = weight kept).

On disk a mask set is one safetensors file holding, per parameter, the mask bit-packed into
``uint8`` (``numpy.packbits``, big-endian bit order, row-major flattening), 1 bit per weight.
The original shapes live in the file's metadata. Nothing is pickled, and the bytes of a file
depend only on its content (sorted header, see ``core.io.safetensors_bytes``).

Reading needs numpy and safetensors only: masks are ``numpy`` bool arrays. The pruning engine
(``ticketlens.pruning.ops``) works on torch tensors and converts at its boundary; the writers
here accept either (anything ``numpy.asarray`` takes).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ticketlens.core.errors import RunFormatError, first_line
from ticketlens.core.io import safetensors_bytes, write_bytes_atomic

MASK_FORMAT = "ticketlens.mask"
MASK_FORMAT_VERSION = 1

Masks = dict[str, np.ndarray]


# --------------------------------------------------------------------------- packing
def as_bool(mask: Any) -> np.ndarray:
    """A mask (numpy array or CPU/GPU torch tensor) as a numpy bool array."""
    if hasattr(mask, "detach"):  # a torch tensor: no torch import needed to convert it
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask, dtype=bool)


def pack(mask: Any) -> np.ndarray:
    """Bool array of any shape -> uint8 vector of ``ceil(numel / 8)`` bytes."""
    return np.packbits(as_bool(mask).reshape(-1))


def unpack(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`pack`."""
    n = math.prod(shape)
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size != (n + 7) // 8:
        raise ValueError(f"packed mask has {packed.size} bytes, expected {(n + 7) // 8}")
    bits = np.unpackbits(packed, count=n).astype(bool, copy=False)
    return bits.reshape(shape)


def mask_file_bytes(masks: Mapping[str, Any], **meta: str) -> bytes:
    """The bytes of a mask file (deterministic: the same masks give the same bytes)."""
    return packed_file_bytes({name: pack(m) for name, m in masks.items()},
                             {name: list(m.shape) for name, m in masks.items()}, **meta)


def save_packed_masks(path: str | os.PathLike[str], packed: Mapping[str, np.ndarray],
                      shapes: Mapping[str, Any], **meta: str) -> int:
    """:func:`save_masks` of masks already packed (:func:`pack`), e.g. gathered layer by
    layer without ever holding them unpacked; returns the file size in bytes."""
    data = packed_file_bytes(packed, shapes, **meta)
    write_bytes_atomic(path, data)
    return len(data)


def packed_file_bytes(arrays: Mapping[str, np.ndarray], shapes: Mapping[str, Any],
                      **meta: str) -> bytes:
    """The bytes of a mask file from packed masks and their shapes."""
    shapes = {name: list(shapes[name]) for name in arrays}
    metadata = {
        "format": MASK_FORMAT,
        "format_version": str(MASK_FORMAT_VERSION),
        "bitorder": "big",
        "shapes": json.dumps(shapes, separators=(",", ":")),
        **meta,
    }
    return safetensors_bytes(arrays, metadata)


def save_masks(path: str | os.PathLike[str], masks: Mapping[str, Any], **meta: str) -> int:
    """Write ``masks`` bit-packed to ``path`` atomically; returns the file size in bytes."""
    data = mask_file_bytes(masks, **meta)
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
        raise RunFormatError(f"{path}: corrupt mask file ({first_line(exc)})") from None
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
        raise RunFormatError(f"{path}: corrupt mask file ({first_line(exc)})") from None
    for name, arr in out.items():
        if arr.dtype != np.uint8 or arr.ndim != 1 or \
                arr.size != (math.prod(shapes[name]) + 7) // 8:
            raise RunFormatError(f"{path}: corrupt mask file ({name!r} has the wrong size)")
    return out


def read_packed_into(
    path: str | os.PathLike[str], out: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]] | None = None,
) -> None:
    """Read a mask file's bit-packed arrays straight into ``out`` (name -> writable ``uint8``
    vector of ``ceil(numel / 8)`` bytes, e.g. a slice of a bigger buffer): one ``readinto``
    per tensor and no copy, the fast path for overlap analyses of many large masks. Validated
    as :func:`load_packed`; ``out`` must name exactly the file's tensors."""
    _, shapes = _open_checked(path)  # safe_open has checked the header and the file size
    if expected is not None:
        check_names_and_shapes(shapes, expected, source=str(path))
    sizes = {name: (math.prod(shape) + 7) // 8 for name, shape in shapes.items()}
    if set(out) != set(sizes) or any(
            b.dtype != np.uint8 or b.shape != (sizes[n],) for n, b in out.items()):
        raise ValueError(f"{path}: the buffers given are not the file's tensors' sizes")
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
            for name, buf in out.items():
                info = header[name]
                start, end = info["data_offsets"]
                if info["dtype"] != "U8" or info["shape"] != [sizes[name]] or \
                        end - start != sizes[name]:
                    raise RunFormatError(f"{path}: corrupt mask file ({name!r} has the wrong "
                                         "size)")
                fh.seek(8 + n + start)
                if fh.readinto(memoryview(buf)) != sizes[name]:
                    raise RunFormatError(f"{path}: corrupt mask file (truncated)")
    except RunFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise RunFormatError(f"{path}: corrupt mask file ({first_line(exc)})") from None


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
        # (its message quotes the header, newlines included: the first line will do)
        raise RunFormatError(f"{path}: not a readable safetensors mask file "
                             f"({first_line(exc)})") from None
    if meta.get("format") != MASK_FORMAT:
        raise RunFormatError(f"{path}: not a ticketlens mask file (no '{MASK_FORMAT}' header)")
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        raise RunFormatError(f"{path}: mask file metadata has no valid 'format_version'") \
            from None
    if version > MASK_FORMAT_VERSION:
        raise RunFormatError(
            f"{path}: mask format version {version} is newer than this "
            f"ticketlens understands ({MASK_FORMAT_VERSION}); upgrade ticketlens"
        )
    try:
        shapes = {k: _shape(v) for k, v in json.loads(meta["shapes"]).items()}
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError):
        raise RunFormatError(f"{path}: mask file metadata has no valid 'shapes'") from None
    if set(shapes) != keys:
        raise RunFormatError(f"{path}: mask file tensors do not match its declared shapes")
    return meta, shapes


def _shape(dims: Any) -> tuple[int, ...]:
    """A declared shape: a list of at most 32 non-negative integers (numpy holds 32 or 64)."""
    if not isinstance(dims, list) or len(dims) > 32 or not all(
            type(d) is int and d >= 0 for d in dims):
        raise ValueError(f"not a shape: {dims!r}")
    return tuple(dims)


def check_names_and_shapes(
    got: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    if missing or extra:
        what = (
            f"lacks {len(missing)} of the model's prunable tensors (first: {missing[0]!r})"
            if missing
            else f"has {len(extra)} tensors the model does not have (first: {extra[0]!r})"
        )
        raise RunFormatError(f"{source}: mask is for another model: it {what}")
    for name, shape in expected.items():
        if tuple(got[name]) != tuple(shape):
            raise RunFormatError(
                f"{source}: mask is for another model: {name!r} has shape "
                f"{tuple(got[name])}, the model's is {tuple(shape)}"
            )


# --------------------------------------------------------------------------- statistics
def count_kept(masks: Mapping[str, Any]) -> tuple[int, int]:
    """(kept, total) over all tensors (numpy arrays or torch tensors)."""
    arrays = [as_bool(m) for m in masks.values()]
    return sum(int(np.count_nonzero(a)) for a in arrays), sum(a.size for a in arrays)


def sparsity(masks: Mapping[str, Any]) -> float:
    kept, total = count_kept(masks)
    return 1.0 - kept / total if total else 0.0


def sparsity_per_tensor(masks: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for name, m in masks.items():
        a = as_bool(m)
        out[name] = 1.0 - float(np.count_nonzero(a)) / a.size
    return out


def ones_like(shapes_or_arrays: Mapping[str, Any]) -> Masks:
    """All-kept masks shaped like the arrays (or shape tuples) given."""
    return {name: np.ones(tuple(getattr(v, "shape", v)), dtype=bool)
            for name, v in shapes_or_arrays.items()}


def prune_amount_for_round(kept: int, total: int, rate: float, target_sparsity: float) -> float:
    """Fraction of the ``kept`` weights to prune next: ``rate``, or less in the last round so
    the run lands exactly on ``round((1 - target_sparsity) * total)`` kept weights; 0 when
    there already."""
    target_kept = round((1.0 - target_sparsity) * total)
    if kept <= target_kept or kept == 0:
        return 0.0
    return min(rate, (kept - target_kept) / kept)


