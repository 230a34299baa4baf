"""The report's figures of a sweep (``analysis.sweep.SweepStats``): metric vs sparsity with
confidence bands per task, and the seed x task overlap matrix. Drawn here, computed there."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ticketlens.report import fmt
from ticketlens.report.figures import PALETTE, _control_marker, _finish, esc

DENSE, TICKET = "#7f7f7f", PALETTE[0]


def sweep_figures(stats: Any) -> Iterator[tuple[go.Figure, str]]:
    """(figure, name) for the report: the curves, then one overlap matrix per model and
    settings."""
    ci = f"{stats.confidence:.0%}"
    yield curves_figure(stats, f"Metric vs sparsity over seeds: mean and {ci} band per IMP "
                               "round, dense (band), ticket and controls (intervals)"), \
        "seeds-curves"
    for i, m in enumerate(stats.matrices):
        where = esc(f"{m.model} {m.settings}".strip())
        yield overlap_matrix_figure(m, f"Ticket overlap, seed × task ({where}; Jaccard, "
                                       "hover: chance)"), f"seeds-overlap-{i}"


def _band(fig: go.Figure, x: list[float], low: list[float], high: list[float], color: str,
          group: str, row: int, col: int) -> None:
    """A filled band between ``low`` and ``high`` (no band where an interval is NaN)."""
    fig.add_trace(go.Scatter(x=fmt.sig(x), y=fmt.sig(high, 6), mode="lines",
                             line=dict(width=0, color=color), legendgroup=group,
                             showlegend=False, hoverinfo="skip"), row=row, col=col)
    fig.add_trace(go.Scatter(x=fmt.sig(x), y=fmt.sig(low, 6), mode="lines", fill="tonexty",
                             line=dict(width=0, color=color), opacity=0.25,
                             legendgroup=group, showlegend=False, hoverinfo="skip",
                             name=f"{group} band"), row=row, col=col)


def _point(fig: go.Figure, name: str, x: float, est: Any, color: str, symbol: str,
           first: bool, row: int, col: int) -> None:
    half = [] if est.n < 2 or math.isnan(est.half_width) else [est.half_width]
    fig.add_trace(go.Scatter(
        x=fmt.sig([x]), y=fmt.sig([est.mean], 6), mode="markers", name=name,
        legendgroup=name, showlegend=first,
        marker=dict(color=color, symbol=symbol, size=11, line=dict(width=2, color=color)),
        error_y=dict(type="data", array=fmt.sig(half, 4), visible=bool(half), color=color),
        hovertemplate=f"{name}<br>sparsity %{{x:.1%}}<br>mean %{{y:.4f}} over {est.n} "
                      "seeds<extra></extra>"), row=row, col=col)


def curves_figure(stats: Any, title: str) -> go.Figure:
    """One panel per group (task, settings): the IMP rounds' mean metric with its band, dense
    as a band across the panel, the ticket and each control at the ticket's sparsity."""
    groups = list(stats.groups)
    cols = min(3, max(1, len(groups)))
    rows = max(1, math.ceil(len(groups) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[
        esc(f"{g.task} {g.settings}".strip() + f" ({len(g.seeds)} seeds)") for g in groups])
    controls = list(dict.fromkeys(c for g in groups for c in g.controls))
    for gi, g in enumerate(groups):
        row, col, first = gi // cols + 1, gi % cols + 1, gi == 0
        rounds = g.rounds
        x = [r.sparsity.mean for r in rounds]
        right = max([*x, g.sparsity.mean, 0.0])
        _band(fig, [0.0, right], [g.dense.low] * 2, [g.dense.high] * 2, DENSE, "dense", row,
              col)
        fig.add_trace(go.Scatter(
            x=fmt.sig([0.0, right]), y=fmt.sig([g.dense.mean] * 2, 6), mode="lines",
            name="dense", legendgroup="dense", showlegend=first,
            line=dict(color=DENSE, dash="dash"),
            hovertemplate=f"dense<br>mean %{{y:.4f}} over {g.dense.n} seeds<extra></extra>"),
            row=row, col=col)
        _band(fig, x, [r.metric.low for r in rounds], [r.metric.high for r in rounds],
              TICKET, "IMP rounds", row, col)
        fig.add_trace(go.Scatter(
            x=fmt.sig(x), y=fmt.sig([r.metric.mean for r in rounds], 6), mode="lines+markers",
            name="IMP rounds", legendgroup="IMP rounds", showlegend=first,
            line=dict(color=TICKET), marker=dict(size=5),
            customdata=[[r.index, r.metric.n] for r in rounds],
            hovertemplate="round %{customdata[0]}<br>sparsity %{x:.1%}<br>mean %{y:.4f} over "
                          "%{customdata[1]} seeds<extra></extra>"), row=row, col=col)
        _point(fig, "ticket", g.sparsity.mean, g.ticket, TICKET, "circle", first, row, col)
        for c, est in g.controls.items():
            ci = controls.index(c)
            _point(fig, esc(c.replace("_", " ")), g.sparsity.mean, est,
                   PALETTE[(ci + 1) % len(PALETTE)], _control_marker(c, ci)[0], first, row,
                   col)
        fig.update_xaxes(tickformat=".0%", title_text="sparsity", row=row, col=col)
        fig.update_yaxes(title_text=esc(g.metric) if col == 1 else None, row=row, col=col)
    return _finish(fig, title, 140 + 300 * rows)


def overlap_matrix_figure(m: Any, title: str) -> go.Figure:
    """A heatmap of ``OverlapMatrix.jaccard`` (rows and columns by task, then seed), the tasks
    parted by lines."""
    names = [esc(n) for n in m.names]
    n = len(names)
    text = [[(f"{names[a]} vs {names[b]}<br>Jaccard {fmt.num(m.jaccard[a][b])} (chance "
              f"{fmt.num(m.chance[a][b])})") if a != b else names[a] for b in range(n)]
            for a in range(n)]
    fig = go.Figure(go.Heatmap(z=fmt.sig([list(r) for r in m.jaccard]), x=names, y=names,
                               text=text, hoverinfo="text", colorscale="Magma",
                               reversescale=True, colorbar=dict(title="Jaccard")))
    for i in range(1, n):
        if m.tasks[i] != m.tasks[i - 1]:  # a task boundary
            for axis in ("x", "y"):
                pos = dict(x0=i - 0.5, x1=i - 0.5, y0=-0.5, y1=n - 0.5) if axis == "x" else \
                    dict(y0=i - 0.5, y1=i - 0.5, x0=-0.5, x1=n - 0.5)
                fig.add_shape(type="line", line=dict(color="white", width=3), **pos)
    _finish(fig, title, 220 + 30 * n)
    fig.update_yaxes(autorange="reversed")
    return fig
