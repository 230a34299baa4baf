"""The report's stability part: Frankle et al.'s linear paths between two copies, one curve per
start point (error vs interpolation coefficient), and their barriers, from a run's
``analysis/stability.json`` (:class:`~ticketlens.pruning.stability.StabilityResult`). No
maths here: the errors and barriers were computed (and tested) by ``pruning.stability``."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from ticketlens.pruning.stability import StabilityResult, read_stability
from ticketlens.report import fmt
from ticketlens.report.draw import Drawn, draws
from ticketlens.report.figures import _finish, esc

__all__ = ["stability_drawn", "stability_html", "stability_table"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


@draws(StabilityResult, "paths")
def stability_drawn(res: StabilityResult) -> Drawn:
    """Error (y) at each point of the path from copy A (0) to copy B (1), per start point."""
    fig = go.Figure()
    for k, c in enumerate(res.curves):  # each start point its own colour, marker and dash
        fig.add_trace(go.Scatter(
            x=fmt.sig(list(c.alphas)), y=fmt.sig(list(c.error)), mode="lines+markers",
            marker=dict(symbol=_SYMBOLS[k % len(_SYMBOLS)]),
            line=dict(color=_COLOURS[k % len(_COLOURS)], dash=_DASHES[k % len(_DASHES)]),
            name=f"from {esc(c.start)} (barrier {fmt.num(c.error_barrier, '+.3f')})",
            customdata=fmt.sig(list(c.loss)),
            hovertemplate="α %{x}<br>error %{y}<br>loss %{customdata}<extra></extra>"))
    _finish(fig, f"Error along the linear path between two copies (round {res.round}, "
            f"{esc(res.arm)})", 380, xaxis=dict(title="interpolation α (0: copy A, 1: copy B)"),
            yaxis=dict(title=esc(f"error ({res.error})")))
    caption = ("<b>Are two copies trained from each start point in one basin?</b> From each "
               "start point (the legend: initial or pretrained weights, the run's rewind "
               "point, a random re-initialisation, a step of the dense run) two copies of the "
               "arm were trained with different data orders and dropout; each curve is the "
               f"dev error ({esc(res.error)}) at {res.points} evenly spaced points of the "
               "straight line between their weights (α 0 and 1 are the copies). The error "
               "barrier in the legend is the highest point minus the mean of the two ends "
               f"(Frankle et al. 2020); under {fmt.pct(res.stable_below, 0)} counts as stable.")
    return Drawn(fig, caption)


def stability_table(res: StabilityResult) -> str:
    e = lambda x: html.escape(fmt.text(x), quote=True)  # noqa: E731
    rows = "".join(
        f"<tr><td>{e(c.start)}</td><td>{c.start_step}</td><td>{fmt.num(c.ends_error, '.4f')}"
        f"</td><td>{fmt.num(c.worst_error, '.4f')}</td><td>{fmt.num(c.error_barrier, '+.4f')}"
        f"</td><td>{fmt.num(c.loss_barrier, '+.4f')}</td><td>{res.stable_text(c)}"
        "</td></tr>" for c in res.curves)
    head = ("<tr><th>from</th><th>step</th><th>ends' error</th><th>worst on path</th>"
            "<th>error barrier</th><th>loss barrier</th>"
            f"<th>stable (&lt; {fmt.pct(res.stable_below, 0)})</th></tr>")
    return f"<table>{head}{rows}</table>"


def stability_html(run: Any, doc: Any, i: int) -> None:
    """Add a run's stability curves and table to the report (nothing without a record)."""
    for r, res in read_stability(run).items():
        doc.add(f"<h4>Stability of round {r} ({html.escape(res.arm)}, "
                f"{fmt.pct(res.sparsity)} sparse): two copies from each start point, "
                f"{res.points} points on the path between them</h4>")
        from ticketlens.report.roles import findings_html

        doc.add("<p class='note'>Findings:</p>" + findings_html(res.findings()))
        doc.fig(stability_drawn(res), f"stability-{i}-{r}")
        doc.add(stability_table(res))
