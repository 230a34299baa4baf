"""What the TUI reads from a run's record beyond ``Run``'s plain properties: the verdict, the
controls, the task's label names. The only module of the TUI that knows the record's shape,
so a change of that shape (a manifest dict, or typed records) is made here alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


def _get(record: Any, key: str, default: Any = None) -> Any:
    """``record[key]`` of a manifest dict, ``record.key`` of a typed record."""
    if record is None:
        return default
    if isinstance(record, Mapping):
        return record.get(key, default)
    return getattr(record, key, default)


class Verdict(NamedTuple):
    winning: bool
    reason: str


class ControlPoint(NamedTuple):
    control: str  # random_mask, random_reinit, oneshot
    sparsity: float
    value: float | None  # the run's metric


def verdict(run: Any) -> Verdict | None:
    v = run.verdict
    return None if not v else Verdict(bool(_get(v, "winning")), str(_get(v, "reason", "")))


def control_points(run: Any) -> list[ControlPoint]:
    """The controls that were run, in the order of the record."""
    return [ControlPoint(c, float(_get(rec, "sparsity")), run.control_metric(c))
            for c, rec in run.controls.items()]


def label_names(run: Any) -> tuple[str, ...]:
    """The task's label names, by class id (empty when the record has none)."""
    return tuple(str(n) for n in _get(_get(run.manifest, "task"), "label_names") or ())


def label_name(run: Any, class_id: int) -> str:
    names = label_names(run)
    return names[class_id] if 0 <= class_id < len(names) else f"class {class_id}"
