"""What ``ticketlens compress`` measured (typed, JSON round-trip) and its Pareto front.

Stdlib only: ``info``, the report and the TUI read ``compress.json`` without torch.

The 8 cells are the subsets of {prune, quantize, distill} (Movva et al. 2022):

============================  ===========================================================
none                          the trained dense model (round 0), float32
prune                         the ticket, stored as bitmask + float32 kept weights
quantize                      the dense model quantized (``--cell-scheme``, default int8)
distill                       *born-again* dense (Furlanello et al. 2018): the dense model
                              retrained from the run's rewind point against the trained dense
                              model as teacher, with the distilled run's alpha and T; the
                              bytes of dense
prune+quantize                the ticket quantized (bitmask + quantized kept weights)
prune+distill                 the distilled run's ticket (``find --distill``)
quantize+distill              born-again dense quantized
prune+quantize+distill        the distilled run's ticket quantized
============================  ===========================================================

A cell is Pareto-optimal when no other measured cell is at most as big and at least as good,
and strictly better on one of the two.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketlens.core.errors import RunFormatError
from ticketlens.core.io import json_bytes

__all__ = ["CELLS", "Cell", "CompressResult", "Latency", "VariantResult", "compress_path",
           "pareto_flags", "read_compress", "runs_as", "write_compress"]

CELLS = ("none", "prune", "quantize", "distill", "prune+quantize", "prune+distill",
         "quantize+distill", "prune+quantize+distill")


def compress_path(run: str | os.PathLike[str]) -> Path:
    """Where a run's compression table lives (``RUN/compress.json``; ``core.run.RunPaths``
    knows the run's file names)."""
    from ticketlens.core.run import RunPaths

    return RunPaths(run).compress


def pareto_flags(points: Sequence[tuple[float, float]], higher_is_better: bool = True
                 ) -> list[bool]:
    """For ``(bytes, metric)`` points: True where no other point dominates (at most as many
    bytes and at least as good a metric, strictly better in one)."""
    sign = 1.0 if higher_is_better else -1.0
    flags = []
    for i, (b, m) in enumerate(points):
        dominated = any(
            b2 <= b and sign * m2 >= sign * m and (b2 < b or sign * m2 > sign * m)
            for j, (b2, m2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


@dataclass(frozen=True)
class VariantResult:
    """One evaluated variant: ``model`` (dense, ticket, distilled dense, distilled ticket)
    stored with ``scheme`` (fp32, fp16, dynamic-int8, int8, int4-gG)."""

    name: str
    model: str
    scheme: str
    metrics: dict[str, float]
    bytes: int
    ratio: float  # dense fp32 bytes / these bytes
    sparsity: float
    pareto: bool = False
    # the data bytes of the prunable matrices alone (mask bits, values, scales), and dense
    # fp32's over these: what pruning and quantization act on, the embeddings aside
    prunable_bytes: int = 0
    prunable_ratio: float = 0.0


@dataclass(frozen=True)
class Cell:
    name: str  # one of CELLS
    variant: str | None  # the variant that fills it; None when not measured
    metric: float | None = None
    bytes: int | None = None
    ratio: float | None = None
    pareto: bool = False
    prunable_ratio: float | None = None  # over the prunable matrices alone


@dataclass(frozen=True)
class Latency:
    """One CPU latency measurement: the median wall time of one forward pass of ``variant``
    on ``batch`` x ``tokens`` random token ids, as the variant runs (``runs_as``, from
    :func:`runs_as`); ``speedup`` = dense float32's ms at the same batch over ``ms`` (both
    written by ``compress``; absent (empty, None) in files written before they were)."""

    variant: str
    batch: int
    tokens: int
    ms: float  # median wall time of one forward pass
    threads: int
    runs_as: str = ""
    speedup: float | None = None


def runs_as(scheme: str) -> str:
    """How a variant of ``scheme`` (a :class:`VariantResult`'s scheme label, e.g.
    ``int4-g64+emb-int4+vocab``, ``sliced+dynamic-int8``) executes once loaded: torch's
    dynamic int8 runs int8 matrix kernels; every weight-only scheme (fp16, int8, int4, the
    embeddings' too) is dequantized to float32 when the file is read, so it runs float32
    kernels at the shape it has: the dense shape (a ticket's pruned zeros are multiplied),
    or the smaller matrices of a sliced ticket. A trimmed vocabulary only shortens the
    embedding lookup table."""
    parts = scheme.split("+")
    shape = "sliced" if "sliced" in parts else "dense shape"
    if "dynamic-int8" in parts:
        return f"int8 kernels (torch dynamic), {shape}"
    stored = [p for p in parts if p not in ("fp32", "sliced", "vocab")]
    return f"fp32 kernels, {shape}" + (", dequantized at load" if stored else "")


@dataclass(frozen=True)
class CompressResult:
    run: str
    metric: str
    higher_is_better: bool
    cell_scheme: str
    variants: tuple[VariantResult, ...]
    cells: tuple[Cell, ...]
    latency: tuple[Latency, ...] = ()
    distilled_run: str | None = None
    distill: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)

    def variant(self, name: str) -> VariantResult:
        return next(v for v in self.variants if v.name == name)

    def cell(self, name: str) -> Cell:
        return next(c for c in self.cells if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompressResult:
        return cls(
            run=str(d["run"]), metric=str(d["metric"]),
            higher_is_better=bool(d["higher_is_better"]), cell_scheme=str(d["cell_scheme"]),
            variants=tuple(VariantResult(**v) for v in d["variants"]),
            cells=tuple(Cell(**c) for c in d["cells"]),
            latency=tuple(Latency(**x) for x in d.get("latency", [])),
            distilled_run=d.get("distilled_run"), distill=dict(d.get("distill") or {}),
            notes=tuple(d.get("notes", [])), versions=dict(d.get("versions") or {}))


def write_compress(run: str | os.PathLike[str], result: CompressResult) -> Path:
    """Save the table in the run (atomically; its SHA-256 goes into the manifest)."""
    from ticketlens.core.run import RunWriter

    path = compress_path(run)
    RunWriter(run).file(path, json_bytes(result.to_dict()))
    return path


def read_compress(run: str | os.PathLike[str]) -> CompressResult | None:
    """The run's compression table, or None when ``compress`` has not been run on it."""
    path = compress_path(run)
    if not path.is_file():
        return None
    try:
        return CompressResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise RunFormatError(f"{path}: unreadable compression table "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from None
