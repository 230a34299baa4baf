"""Which figure the report draws for which result: one registry, used by the report and by
``tl.figure(result)``, so a figure is written once and a notebook shows what the report shows.

A drawer is registered for a result type and a *kind* (``"matrix"``, ``"layers"``, ...; the
first registered is the type's default) and returns a :class:`Drawn`: the plotly figure and
its caption (HTML, escaped: what is drawn and how to read it). The drawers live beside the
figures they draw (``report.figures``, ``report.sweep``, ``report.compress``) and register on
import; ``report.gallery`` imports them all and dispatches (``tl.figure``). The analysis layer
never imports this (nor plotly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

__all__ = ["DRAWERS", "Drawn", "draws"]


@dataclass(frozen=True)
class Drawn:
    figure: go.Figure
    caption: str  # HTML, already escaped


Drawer = Callable[[Any], Drawn]
DRAWERS: dict[type, dict[str, Drawer]] = {}


def draws(result_type: type, kind: str) -> Callable[[Drawer], Drawer]:
    """Register the decorated function as the drawer of ``kind`` for ``result_type``."""
    def register(fn: Drawer) -> Drawer:
        DRAWERS.setdefault(result_type, {})[kind] = fn
        return fn

    return register
