"""Labels and metrics of a task: classes or scores (regression), and the metric by name.

The GLUE convention when ``--metric auto``: MCC for CoLA, F1 for MRPC and QQP, Pearson for
STS-B, accuracy otherwise; a task is a regression when asked (Pearson / Spearman), for STS-B,
or (auto) when its labels are numbers with fractions.
"""

from __future__ import annotations

import math
from typing import Any

from ticketlens.core.errors import DataError

GLUE_METRICS = {"cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "pearson"}
REGRESSION_METRICS = ("pearson", "spearman")


def is_regression(choice: str, name: str, labels: list) -> bool:
    """Scores, not classes: ``--metric pearson|spearman``, STS-B, or (auto) numeric labels
    with fractional values."""
    if choice in REGRESSION_METRICS:
        return True
    if choice != "auto":
        return False
    if name.lower() == "stsb":
        return True
    values = [number(x) for x in labels[:10000]]
    return all(v is not None for v in values) and any(not v.is_integer() for v in values)


def number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return float(x)
    try:
        v = float(str(x))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def scores(where: str):
    def convert(values: list, split: str) -> list[float]:
        out = []
        for i, x in enumerate(values):
            v = number(x)
            if v is None:
                raise DataError(f"{where or split}: label {x!r} (row {i + 1} of {split}) is "
                                "not a number; a regression task needs numeric scores")
            out.append(v)
        return out

    return convert


def class_ids(n: int, where: str):
    def convert(values: list, split: str) -> list[int]:
        bad = [v for v in values if not (isinstance(v, int) and 0 <= v < n)]
        if bad:
            raise DataError(f"{where}[{split}]: label {bad[0]!r} is not one of the {n} classes")
        return list(values)

    return convert


def class_metric(choice: str, name: str, num_labels: int) -> str:
    """The GLUE convention when ``auto`` (by task name); F1 and MCC need two labels."""
    metric = GLUE_METRICS.get(name.lower(), "accuracy") if choice == "auto" else choice
    if metric in ("f1", "mcc") and num_labels != 2:
        raise DataError(f"--metric {metric} needs a binary task; {name!r} has "
                        f"{num_labels} labels")
    return metric


def regression_metric(choice: str, name: str) -> str:
    if choice == "auto":
        return "pearson"
    if choice not in REGRESSION_METRICS:
        raise DataError(f"--metric {choice} needs classes; {name!r} has numeric scores "
                        "(use pearson or spearman)")
    return choice


def label_names(raw: list[str], where: str = "the data") -> tuple[str, ...]:
    """The class names of the label values ``raw`` read from ``where`` (named in errors)."""
    uniq = set(raw)
    if len(uniq) < 2:
        value = f" ({next(iter(uniq))!r})" if uniq else ""
        raise DataError(f"{where}: only one label value in the training data{value}: a "
                        "classifier needs two or more")
    if all(x.lstrip("-").isdigit() for x in uniq):
        ints = sorted(int(x) for x in uniq)
        if ints == list(range(len(ints))):
            return tuple(str(i) for i in ints)
    return tuple(sorted(uniq))
