"""Which figure the report draws for which result: one registry, used by the report and by
``tl.figure(result)``, so a figure is written once and a notebook shows what the report shows.

A drawer is registered for a result type and a *kind* (``"matrix"``, ``"layers"``, ...; the
first registered is the type's default) and returns a :class:`Drawn`: the plotly figure and
its caption (HTML, escaped: what is drawn and how to read it). The drawers live beside the
figures they draw (``report.figures``, ``report.sweep``, ``report.compress``) and register on
import; :func:`figure` imports them. The analysis layer never imports this (nor plotly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

__all__ = ["Drawn", "draw", "draws", "figure", "kinds"]


@dataclass(frozen=True)
class Drawn:
    figure: go.Figure
    caption: str  # HTML, already escaped


Drawer = Callable[[Any], Drawn]
_DRAWERS: dict[type, dict[str, Drawer]] = {}


def draws(result_type: type, kind: str) -> Callable[[Drawer], Drawer]:
    """Register the decorated function as the drawer of ``kind`` for ``result_type``."""
    def register(fn: Drawer) -> Drawer:
        _DRAWERS.setdefault(result_type, {})[kind] = fn
        return fn

    return register


def _load() -> None:
    """Import the modules whose drawers register themselves."""
    from ticketlens.report import compress, figures, sweep  # noqa: F401


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
    _load()
    if isinstance(result, list):
        return _DRAWERS.get(list, {})
    for cls in type(result).__mro__:
        if cls in _DRAWERS:
            return _DRAWERS[cls]
    known = ", ".join(sorted(t.__name__ for t in _DRAWERS))
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
