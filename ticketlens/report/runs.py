"""What the report reads from a run, read here and nowhere else in the report.

:func:`run_view` turns an opened run into a :class:`RunView` of plain values (labels, the
metric per round, controls, verdict, settings) from the typed run record
(``core.record``); figures and tables draw from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ticketlens.core.config import flatten
from ticketlens.core.record import control_label

# Known controls first, in this order; any other arm follows by name.
CONTROL_ORDER = ("random_mask", "random_reinit", "oneshot")


@dataclass(frozen=True)
class Point:
    """One measured point of a run: the metric at a sparsity (``round`` None for a control)."""

    sparsity: float
    value: float | None
    round: int | None = None
    # structured runs (find --granularity): the share of heads and of FFN neurons pruned
    heads: float | None = None
    neurons: float | None = None


@dataclass(frozen=True)
class ControlPoint:
    name: str  # random_mask, random_reinit, oneshot, ...
    label: str  # as users read it: "random mask"
    point: Point


@dataclass(frozen=True)
class RunView:
    name: str  # the run directory's name
    label: str  # "sentiment · seed 0"
    model: str
    task: str
    seed: int | None
    metric: str
    rounds: tuple[Point, ...]
    ticket: Point
    controls: tuple[ControlPoint, ...]
    verdict: str | None  # "winning", "not winning", "inconclusive"; None: no verdict
    reason: str | None
    settings: tuple[tuple[str, Any], ...]
    structured: bool = False  # rounds record unit sparsity (find --granularity head|neuron|unit)

    @property
    def trained(self) -> bool:
        return any(p.value is not None for p in self.rounds)

    @property
    def dense(self) -> float | None:
        return self.rounds[0].value if self.rounds else None

    def control(self, name: str) -> float | None:
        """The metric of a control, None when the run has no such control."""
        return next((c.point.value for c in self.controls if c.name == name), None)


def _value(metrics: Mapping[str, float], metric: str) -> float | None:
    v = metrics.get(metric)
    return None if v is None or v != v else float(v)  # NaN: not measured


def _settings(run: Any) -> list[tuple[str, Any]]:
    m = run.manifest
    items = [("path", str(run.path)), ("model", run.model_name),
             ("family", m.model.family), ("task", run.task), ("seed", run.seed),
             ("status", m.status), ("rewind", m.rewind.mode if m.rewind else None)]
    for section, values in (("config", m.config), ("versions", m.versions),
                            ("import", m.extra.get("import") or {})):
        items += flatten(values, section).items()
    return items


def _point(rec: Any, metric: str, index: int | None = None) -> Point:
    """A round's or an arm's point, with its unit sparsity when recorded."""
    units = rec.unit_sparsity or {}
    return Point(float(rec.sparsity), _value(rec.metrics, metric), index,
                 units.get("head"), units.get("neuron"))


def run_view(run: Any) -> RunView:
    """Everything the report shows about one run, read from the run record once."""
    metric = run.metric
    rounds = tuple(_point(r, metric, int(r.index)) for r in run.rounds)
    ticket = run.ticket
    arms = run.controls
    names = [c for c in CONTROL_ORDER if c in arms] + sorted(c for c in arms
                                                             if c not in CONTROL_ORDER)
    controls = tuple(ControlPoint(c, control_label(c), _point(arms[c], metric))
                     for c in names)
    v = run.verdict
    verdict = None if v is None else v.state
    label = f"{run.task} · seed {run.seed}" if run.seed is not None else run.name
    return RunView(
        name=run.name, label=label, model=run.model_name, task=run.task,
        seed=run.seed, metric=metric, rounds=rounds,
        ticket=_point(ticket, metric, int(ticket.index)),
        controls=controls, verdict=verdict, reason=v.reason if v else None,
        settings=tuple(_settings(run)),
        structured=any(r.unit_sparsity for r in run.rounds))


def architecture_groups(runs: list[Any]) -> list[list[Any]]:
    """Runs of one architecture (same prunable tensor shapes), groups of two or more."""
    groups: dict[Any, list[Any]] = {}
    for r in runs:
        groups.setdefault(tuple(sorted(r.anatomy.shapes.items())), []).append(r)
    return [g for g in groups.values() if len(g) >= 2]


def has_heads(run: Any) -> bool:
    return bool(run.anatomy.num_heads)
