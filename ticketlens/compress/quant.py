"""Weight-only quantization: symmetric integers + float scales, and back (pure torch).

Why our own and not torchao: on this CPU with torch 2.13, torchao 0.18's
``Int8WeightOnlyConfig`` runs, but every ``Int4WeightOnlyConfig`` packing fails on a CPU
float32 model (plain needs the ``mslk`` kernels, plain_int32 has no CPU support,
tile_packed_to_4d needs bfloat16 on CUDA), and torchao is an optional extra. So a variant is
a *fake quantization with real integer storage*: the integers and scales are what the file on
disk holds (``compress.store``), and the model is evaluated with their dequantization
``q * scale`` in float32, which is what a weight-only kernel computes up to summation order.

The arithmetic is torchao's (``choose_qparams_affine`` / ``quantize_affine`` with
``MappingType.SYMMETRIC``), tested against it in ``tests/test_compress.py``: int8 equals
``Int8WeightOnlyConfig``'s quantized layer bit for bit; int4 equals torchao's primitives with
``block_size = (1, group)``, ``quant_min = -8``, ``quant_max = 7``:

    scale = max(amax(|w|) over the channel or group / ((qmax - qmin) / 2), eps_fp32)
    q     = clamp(round(w * (1 / scale)), qmin, qmax)          (round half to even)
    w'    = q * scale

- int8: one scale per output channel (row of an ``nn.Linear`` weight ``(out, in)``);
- int4: one scale per group of ``group`` consecutive inputs of a row (32, 64 or 128).

Symmetric quantization has no zero point, so 0 maps to 0 and back: a pruned weight stays
exactly zero (``check_zeros_kept`` asserts it for every variant).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketlens.compress.config import GROUPS
from ticketlens.core.errors import ConfigError

__all__ = ["GROUPS", "QTensor", "check_zeros_kept", "dequantize", "quantize"]

_EPS = torch.finfo(torch.float32).eps
_RANGE = {8: (-128, 127), 4: (-8, 7)}


@dataclass(frozen=True)
class QTensor:
    """A quantized weight: ``q`` (int8 storage, values in the scheme's range, the weight's
    shape ``(out, in)``) and ``scale`` (float32, ``(out, 1)`` per channel or
    ``(out, in // group)`` per group)."""

    q: torch.Tensor
    scale: torch.Tensor
    bits: int
    group: int | None  # None: per output channel

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.q.shape)


def _check(w: torch.Tensor, bits: int, group: int | None) -> None:
    if bits not in _RANGE:
        raise ConfigError(f"{bits}-bit weights are not supported (8 or 4)")
    if w.ndim != 2:
        raise ConfigError(f"weight-only quantization takes (out, in) matrices, got "
                          f"{tuple(w.shape)}")
    if group is not None and (group not in GROUPS or w.shape[1] % group):
        raise ConfigError(f"int4 group size {group} must be one of {GROUPS} and divide the "
                          f"input size {w.shape[1]}")


def quantize(w: torch.Tensor, bits: int, group: int | None = None) -> QTensor:
    """Symmetric quantization of ``w`` ``(out, in)``: per output channel (``group=None``)
    or per ``group`` consecutive inputs of each row."""
    _check(w, bits, group)
    qmin, qmax = _RANGE[bits]
    w = w.detach().float()
    out, inp = w.shape
    g = inp if group is None else group
    blocks = w.reshape(out, inp // g, g)  # (out, groups, g)
    amax = blocks.abs().amax(-1)  # (out, groups)
    scale = torch.clamp(amax / ((qmax - qmin) / 2), min=_EPS)
    q = torch.clamp(torch.round(blocks * (1.0 / scale[..., None])), qmin, qmax)
    return QTensor(q.reshape(out, inp).to(torch.int8), scale, bits, group)


def dequantize(qt: QTensor) -> torch.Tensor:
    """``q * scale`` in float32, the weight's shape."""
    out, inp = qt.shape
    groups = qt.scale.shape[1]
    q = qt.q.float().reshape(out, groups, inp // groups)
    return (q * qt.scale[..., None]).reshape(out, inp)


def check_zeros_kept(original: torch.Tensor, quantized: torch.Tensor, name: str = "") -> None:
    """Every weight that is exactly 0 in ``original`` (a pruned weight) is exactly 0 after
    quantization; raises ``AssertionError`` naming the tensor otherwise."""
    zero = original == 0
    if bool((quantized[zero] != 0).any()):
        raise AssertionError(f"{name}: a pruned (zero) weight is not zero after quantization")
