"""Anatomy: which weight matrices are prunable and which slice of each belongs to which unit.

An :class:`Anatomy` is plain data (stored in every run's manifest), so analyses can map mask
bits to heads and neurons without loading a model. The family adapters in
``ticketlens.models.anatomy`` build it from an HF model.

Conventions (``layout`` of a tensor):
- ``linear``: ``nn.Linear`` weight, shape ``(out_features, in_features)``;
- ``conv1d``: GPT-2's ``Conv1D`` weight, shape ``(in_features, out_features)`` (transposed).

Roles: ``q k v o`` (attention), ``qkv`` (GPT-2's fused projection: Q, K, V side by side along
the output axis), ``ffn_in`` ``ffn_gate`` (FFN input side; gate in gated FFNs), ``ffn_out``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ticketlens.core.units import head_name, neuron_name

ATTN_ROLES = ("q", "k", "v", "qkv", "o")
FFN_ROLES = ("ffn_in", "ffn_gate", "ffn_out")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    layer: int
    role: str
    shape: tuple[int, ...]
    layout: str = "linear"


@dataclass(frozen=True)
class Slice:
    """Rows (``dim=0``) or columns (``dim=1``) ``start:stop`` of tensor ``name``."""

    name: str
    dim: int
    start: int
    stop: int

    def index(self) -> tuple[slice, ...]:
        s = slice(self.start, self.stop)
        return (s,) if self.dim == 0 else (slice(None), s)


@dataclass(frozen=True)
class Anatomy:
    family: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    tensors: tuple[TensorInfo, ...] = field(default=())

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tensors"] = [{**asdict(t), "shape": list(t.shape)} for t in self.tensors]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Anatomy:
        tensors = tuple(
            TensorInfo(t["name"], int(t["layer"]), t["role"], tuple(t["shape"]),
                       t.get("layout", "linear"))
            for t in d["tensors"]
        )
        keys = ("family", "num_layers", "num_heads", "num_kv_heads", "head_dim", "hidden",
                "intermediate")
        return cls(**{k: d[k] for k in keys}, tensors=tensors)

    # ------------------------------------------------------------------ queries
    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {t.name: t.shape for t in self.tensors}

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    @property
    def num_prunable(self) -> int:
        n = 0
        for t in self.tensors:
            size = 1
            for d in t.shape:
                size *= d
            n += size
        return n

    def select(self, names: set[str] | list[str]) -> Anatomy:
        keep = set(names)
        return Anatomy(**{**self._scalars(), "tensors": tuple(
            t for t in self.tensors if t.name in keep)})

    def _scalars(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("family", "num_layers", "num_heads",
                                               "num_kv_heads", "head_dim", "hidden",
                                               "intermediate")}

    def layer_tensors(self, layer: int) -> list[TensorInfo]:
        return [t for t in self.tensors if t.layer == layer]

    def tensor(self, name: str) -> TensorInfo:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    # ------------------------------------------------------------------ unit slices
    def head_slices(self, layer: int, head: int) -> dict[str, Slice]:
        """The slices of head ``head`` of ``layer``, keyed by ``q k v o``.

        Q rows (or GPT-2 columns) ``head*d:(head+1)*d``; with grouped-query attention K and V
        are those of the key/value head ``head // (num_heads // num_kv_heads)``, shared by the
        query heads of its group; O the matching input columns of the output projection.
        """
        d = self.head_dim
        kv = head // (self.num_heads // self.num_kv_heads)
        out: dict[str, Slice] = {}
        for t in self.layer_tensors(layer):
            out_axis = 0 if t.layout == "linear" else 1
            in_axis = 1 - out_axis
            if t.role == "q":
                out["q"] = Slice(t.name, out_axis, head * d, (head + 1) * d)
            elif t.role in ("k", "v"):
                out[t.role] = Slice(t.name, out_axis, kv * d, (kv + 1) * d)
            elif t.role == "qkv":  # fused [Q | K | V] along the output axis
                width = self.num_heads * d
                for i, part in enumerate(("q", "k", "v")):
                    start = i * width + (head if part == "q" else kv) * d
                    out[part] = Slice(t.name, out_axis, start, start + d)
            elif t.role == "o":
                out["o"] = Slice(t.name, in_axis, head * d, (head + 1) * d)
        return out

    def neuron_slices(self, layer: int, neuron: int) -> dict[str, Slice]:
        """The slices of FFN neuron ``neuron``: its input row(s) and its output column."""
        out: dict[str, Slice] = {}
        for t in self.layer_tensors(layer):
            out_axis = 0 if t.layout == "linear" else 1
            in_axis = 1 - out_axis
            if t.role in ("ffn_in", "ffn_gate"):
                key = "in" if t.role == "ffn_in" else "gate"
                out[key] = Slice(t.name, out_axis, neuron, neuron + 1)
            elif t.role == "ffn_out":
                out["out"] = Slice(t.name, in_axis, neuron, neuron + 1)
        return out

    def heads(self) -> Iterator[tuple[str, int, int]]:
        for layer in range(self.num_layers):
            for h in range(self.num_heads):
                yield head_name(layer, h), layer, h

    def neurons(self, layer: int) -> Iterator[tuple[str, int]]:
        for n in range(self.intermediate):
            yield neuron_name(layer, n), n
