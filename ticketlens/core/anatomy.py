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
# The most heads and FFN neurons (layers x per layer) a stored anatomy may declare, 65 and 2.5
# times those of the largest released model (Llama 3 405B: 16,128 heads, 6.7 M neurons): a
# corrupt manifest cannot make a view loop for minutes or allocate gigabytes.
MAX_HEADS, MAX_NEURONS = 1 << 20, 1 << 24


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
        """The inverse of :meth:`to_dict`, validated (the unit views rely on the checks): a
        ``ValueError`` or ``TypeError`` names the first inconsistency."""
        keys = ("num_layers", "num_heads", "num_kv_heads", "head_dim", "hidden", "intermediate")
        sizes = {k: _count(d[k], k) for k in keys}
        tensors = tuple(
            TensorInfo(_text(t["name"], "name"), _int(t["layer"], "layer"),
                       _text(t["role"], "role"), tuple(_count(x, "shape") for x in t["shape"]),
                       _text(t.get("layout", "linear"), "layout"))
            for t in d["tensors"]
        )
        a = cls(family=_text(d["family"], "family"), **sizes, tensors=tensors)
        a._check()
        return a

    def _check(self) -> None:
        h, kv, d = self.num_heads, self.num_kv_heads, self.head_dim
        if h and not (kv and h % kv == 0):
            raise ValueError(f"num_kv_heads {kv} does not divide num_heads {h}")
        if self.num_layers * h > MAX_HEADS or self.num_layers * self.intermediate > MAX_NEURONS:
            raise ValueError(f"more than {MAX_HEADS:,} heads or {MAX_NEURONS:,} neurons")
        # the width of each role's head or neuron axis
        widths = {"q": h * d, "k": kv * d, "v": kv * d, "qkv": 3 * h * d, "o": h * d,
                  **dict.fromkeys(FFN_ROLES, self.intermediate)}
        for t in self.tensors:
            if t.layout not in ("linear", "conv1d"):
                raise ValueError(f"{t.name!r}: unknown layout {t.layout!r}")
            if t.role not in widths:
                if t.role != "other":  # other: a weight of no head or neuron (embeddings)
                    raise ValueError(f"{t.name!r}: unknown role {t.role!r}")
                continue
            if not 0 <= t.layer < self.num_layers:  # the unit views index layers by it
                raise ValueError(f"{t.name!r}: layer {t.layer} is not one of the model's "
                                 f"{self.num_layers} layers")
            # (out, in) for linear, (in, out) for conv1d; o and ffn_out write the residual
            # stream (hidden), the others read it; the other axis holds the heads or neurons
            hidden_axis = int((t.layout == "linear") != (t.role in ("o", "ffn_out")))
            width = widths[t.role]
            if len(t.shape) != 2 or (t.shape[hidden_axis], t.shape[1 - hidden_axis]) != \
                    (self.hidden, width):
                raise ValueError(f"{t.name!r}: shape {t.shape} does not fit role {t.role!r} "
                                 f"(hidden {self.hidden}, width {width})")

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


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an integer, not {type(v).__name__}")
    return v


def _count(v: Any, what: str) -> int:
    if _int(v, what) < 0:
        raise ValueError(f"{what} must not be negative ({v})")
    return v


def _text(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{what} must be a string, not {type(v).__name__}")
    return v
