"""Unit names, the same everywhere: ``L3H5`` is layer 3 head 5, ``L3N1024`` layer 3 FFN neuron
1024, ``L3F`` the whole FFN block of layer 3 (TransformerLens-style, 0-based)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_RE = re.compile(r"^L(\d+)(?:(H|N)(\d+)|(F))$")


@dataclass(frozen=True, order=True)
class UnitId:
    layer: int
    kind: str  # "head" | "neuron" | "ffn"
    index: int = 0

    def __str__(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}H{self.index}"
        if self.kind == "neuron":
            return f"L{self.layer}N{self.index}"
        return f"L{self.layer}F"


def head_name(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def neuron_name(layer: int, neuron: int) -> str:
    return f"L{layer}N{neuron}"


def parse_unit(name: str) -> UnitId:
    """Parse ``L3H5`` / ``L3N7`` / ``L3F``; raises ``ValueError`` on anything else."""
    m = _UNIT_RE.match(name.strip())
    if not m:
        raise ValueError(f"not a unit name: {name!r} (expected e.g. L3H5, L3N1024 or L3F)")
    layer = int(m.group(1))
    if m.group(4):
        return UnitId(layer, "ffn")
    kind = "head" if m.group(2) == "H" else "neuron"
    return UnitId(layer, kind, int(m.group(3)))
