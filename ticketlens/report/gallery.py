"""``tl.figure(result)``: the figure the report draws for a result, found by its type in the
registry of ``report.draw`` (filled by the modules imported here)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ticketlens.report import (  # noqa: F401  (they register)
    compress,
    figures,
    roles,
    stability,
    sweep,
)
from ticketlens.report.draw import DRAWERS, Drawer, Drawn

__all__ = ["draw", "figure", "kinds"]


def _key(result: Any) -> Any:
    """What a result is drawn as: a run or a sequence of runs is a list of runs (the metric
    vs sparsity figure); anything else is itself."""
    from ticketlens.core.run import Run

    if isinstance(result, Run):
        return [result]
    if isinstance(result, list | tuple) and result and all(isinstance(r, Run) for r in result):
        return list(result)
    return result


def _drawers(result: Any) -> dict[str, Drawer]:
    from ticketlens.core.run import Run

    if isinstance(result, list) and result and all(isinstance(r, Run) for r in result):
        return DRAWERS[list]
    for cls in type(result).__mro__:
        if cls is list:
            break
        if cls in DRAWERS:
            return DRAWERS[cls]
    known = ", ".join(sorted(t.__name__ for t in DRAWERS if t is not list))
    raise TypeError(f"no figure for a {type(result).__name__}; figures exist for: {known}, "
                    "and runs")


def kinds(result: Any) -> tuple[str, ...]:
    """The figures the report draws for ``result`` (the first is :func:`figure`'s default)."""
    return tuple(_drawers(_key(result)))


def draw(result: Any, kind: str | None = None) -> Drawn:
    """The figure (and caption) the report draws for ``result``."""
    result = _key(result)
    found = _drawers(result)
    if kind is None:
        kind = next(iter(found))
    if kind not in found:
        raise ValueError(f"no {kind!r} figure for a {type(result).__name__}; "
                         f"there are: {', '.join(found)}")
    return found[kind](result)


def figure(result: Any, *, kind: str | None = None) -> go.Figure:
    """The plotly figure the report draws for ``result`` (see :func:`kinds`)."""
    return draw(result, kind).figure
