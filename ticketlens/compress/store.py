"""The file that holds a compressed variant, and reading it back.

One safetensors file per variant (no pickle; bytes depend only on the content,
``core.io.safetensors_bytes``). Per prunable tensor ``NAME`` (an attention or FFN matrix):

===============  ===============================================================
``NAME``          the weight, float32 (dense variants that are not quantized)
``NAME#mask``     ticket variants: the mask bit-packed, 1 bit per weight (``numpy.packbits``
                  of the row-major flattening, as the run's mask files)
``NAME#values``   ticket variants not quantized: the kept weights, float32 or float16
``NAME#q``        int8: the integers, int8 (all of them, or the kept ones after a mask)
``NAME#q4``       int4: the integers + 8, two a byte (high nibble first), 0-padded to a byte
``NAME#scale``    quantized: float32 scales, ``(out, 1)`` per channel, ``(out, in / group)``
                  per group, ``(1, 1)`` per tensor (torch's dynamic int8)
===============  ===============================================================

Every other tensor (embeddings, norms, biases, the task head; with torch's dynamic int8 also
the head's and pooler's int8 ``nn.Linear`` weights) is stored the same way without a mask:
float32 unless the variant quantizes it. Tied tensors (an LM head sharing the embedding) are
stored once; the metadata names the aliases. The metadata's ``tensors`` entry records each
stored tensor's shape, storage kind, mask flag and group, so :func:`read_variant` needs
nothing but the file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ticketlens.compress.quant import QTensor, dequantize
from ticketlens.core.errors import RunFormatError
from ticketlens.core.io import safetensors_bytes, write_bytes_atomic

__all__ = ["Stored", "read_variant", "write_variant", "write_variant_from"]

FORMAT = "ticketlens.compressed"


@dataclass(frozen=True)
class Stored:
    """How one tensor is stored: a float tensor (``float32``/``float16``) or a
    :class:`~ticketlens.compress.quant.QTensor`, optionally after a mask (bool, the
    tensor's shape: only the kept entries are written, the mask as bits)."""

    value: torch.Tensor | QTensor
    mask: torch.Tensor | None = None
    dtype: str = "float32"  # of a float tensor's stored values: float32 | float16


def _pack4(q: np.ndarray) -> np.ndarray:
    """int4 values in [-8, 7] (int8 storage, any shape) -> uint8, two a byte."""
    u = (q.reshape(-1).astype(np.int16) + 8).astype(np.uint8)
    if u.size % 2:
        u = np.concatenate([u, np.zeros(1, np.uint8)])
    return (u[0::2] << 4) | u[1::2]


def _unpack4(packed: np.ndarray, n: int) -> np.ndarray:
    u = np.empty(packed.size * 2, np.uint8)
    u[0::2], u[1::2] = packed >> 4, packed & 0x0F
    return (u[:n].astype(np.int16) - 8).astype(np.int8)


def _encode(name: str, s: Stored) -> tuple[dict[str, np.ndarray], dict]:
    arrays: dict[str, np.ndarray] = {}
    keep = None if s.mask is None else s.mask.detach().cpu().numpy().astype(bool).reshape(-1)
    if keep is not None:
        arrays[f"{name}#mask"] = np.packbits(keep)
    if isinstance(s.value, QTensor):
        q = s.value.q.cpu().numpy().reshape(-1)
        q = q if keep is None else q[keep]
        if s.value.bits == 4:
            arrays[f"{name}#q4"] = _pack4(q)
        else:
            arrays[f"{name}#q"] = q.astype(np.int8)
        arrays[f"{name}#scale"] = s.value.scale.float().cpu().numpy()
        info = {"shape": list(s.value.shape), "kind": f"int{s.value.bits}",
                "group": s.value.group, "count": int(q.size)}
    else:
        v = s.value.detach().cpu().float().numpy()
        info = {"shape": list(v.shape), "kind": s.dtype}
        v = v.astype(np.dtype(s.dtype))
        if keep is None:
            arrays[name] = v
        else:
            arrays[f"{name}#values"] = v.reshape(-1)[keep]
    info["masked"] = keep is not None
    return arrays, info


def write_variant(path: str | os.PathLike[str], tensors: Mapping[str, Stored], *,
                  aliases: Mapping[str, str] | None = None,
                  meta: Mapping[str, str] | None = None,
                  payload: dict[str, int] | None = None) -> int:
    """Write a variant's tensors to ``path`` atomically; returns its size on disk (bytes).
    ``aliases``: tied names -> the name actually stored (left out of ``tensors``).
    ``payload``, when given, receives the data bytes each tensor takes in the file (its
    mask bits, values and scales; the header aside)."""
    return write_variant_from(path, list(tensors), tensors.__getitem__, aliases=aliases,
                              meta=meta, payload=payload)


def write_variant_from(path: str | os.PathLike[str], names: list[str],
                       get: Callable[[str], Stored], *,
                       aliases: Mapping[str, str] | None = None,
                       meta: Mapping[str, str] | None = None,
                       payload: dict[str, int] | None = None) -> int:
    """:func:`write_variant` with each tensor asked for when it is encoded (``get(name)``,
    in sorted order) and dropped after: only the encoded bytes are held, never all the
    float tensors (``compress.stream``). The file is the same byte for byte."""
    arrays: dict[str, np.ndarray] = {}
    infos: dict[str, dict] = {}
    for name in sorted(names):
        a, info = _encode(name, get(name))
        arrays.update(a)
        infos[name] = info
        if payload is not None:
            payload[name] = sum(int(x.nbytes) for x in a.values())
    metadata = {"format": FORMAT, "tensors": json.dumps(infos, sort_keys=True),
                "aliases": json.dumps(dict(aliases or {}), sort_keys=True), **(meta or {})}
    write_bytes_atomic(path, safetensors_bytes(arrays, metadata))
    return Path(path).stat().st_size


def read_variant(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The dequantized float32 state dict a variant file holds (masked-out weights exactly
    0), aliases included."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open API)
    except Exception as exc:  # safetensors' own error types
        raise RunFormatError(f"{path}: not a readable compressed variant ({exc})") from None
    if meta.get("format") != FORMAT:
        raise RunFormatError(f"{path}: not a ticketlens compressed variant")
    infos = json.loads(meta["tensors"])
    state: dict[str, torch.Tensor] = {}
    for name, info in infos.items():
        shape = tuple(info["shape"])
        n = math.prod(shape)
        keep = None
        if info["masked"]:
            keep = np.unpackbits(arrays[f"{name}#mask"], count=n).astype(bool)
        kind = info["kind"]
        if kind.startswith("int"):
            q = (_unpack4(arrays[f"{name}#q4"], info["count"]) if kind == "int4"
                 else arrays[f"{name}#q"])
            full = np.zeros(n, np.int8)
            if keep is None:
                full[:] = q
            else:
                full[keep] = q
            qt = QTensor(torch.from_numpy(full.reshape(shape)),
                         torch.from_numpy(arrays[f"{name}#scale"].copy()), int(kind[3:]),
                         info["group"])
            state[name] = dequantize(qt)
        elif keep is None:
            state[name] = torch.from_numpy(arrays[name].astype(np.float32)).reshape(shape)
        else:
            full = np.zeros(n, np.float32)
            full[keep] = arrays[f"{name}#values"].astype(np.float32)
            state[name] = torch.from_numpy(full.reshape(shape))
    for alias, name in json.loads(meta.get("aliases", "{}")).items():
        state[alias] = state[name]
    return state
