"""The report's figures of statistics over seeds (``analysis.sweep.SweepStats``): each arm at
the ticket's sparsity with its interval, the IMP rounds with bands per task, and the seed x
task overlap matrix. Drawn here, computed there; intervals of a bounded metric are clipped to
its range where drawn (``fmt.clip_interval``) and the caption says so."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ticketlens.analysis.sweep import OverlapMatrix, SweepStats
from ticketlens.core.record import control_label
from ticketlens.report import fmt
from ticketlens.report.draw import Drawn, draws
from ticketlens.report.figures import DENSE_COLOR, TICKET, _finish, arm_marker, esc

__all__ = ["curves_drawn", "overlap_matrix_drawn", "seed_arms_drawn"]


def _groups_layout(stats: SweepStats) -> tuple[list[Any], int, int, list[str]]:
    groups = list(stats.groups)
    cols = min(3, max(1, len(groups)))
    rows = max(1, math.ceil(len(groups) / cols))
    titles = [esc(f"{g.task} {g.settings}".strip() + f" ({len(g.seeds)} seeds)")
              for g in groups]
    return groups, rows, cols, titles


def _interval(metric: str, est: Any) -> tuple[list, list, bool]:
    """(plus, minus) error bars of ``est`` clipped to ``metric``'s range, and whether cut."""
    if est.n < 2 or math.isnan(est.half_width):
        return [], [], False
    low, high, cut = fmt.clip_interval(metric, est.low, est.high)
    return fmt.sig([high - est.mean], 4), fmt.sig([est.mean - low], 4), cut


def _clip_note(metric: str, cut: bool) -> str:
    rng = fmt.range_text(metric)
    if not rng:
        return ""
    return (f" Intervals are clipped to the range of {esc(metric)}, {rng}"
            + (" (some reach it: the t-interval is symmetric and does not know the bound)."
               if cut else "; none reached it here."))


@draws(SweepStats, "arms")
def seed_arms_drawn(stats: SweepStats) -> Drawn:
    """One panel per group of seeds: dense, the ticket and each control side by side (x:
    the arm), the mean over seeds with its confidence interval."""
    groups, rows, cols, titles = _groups_layout(stats)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07)
    controls = list(dict.fromkeys(c for g in groups for c in g.controls))
    ci = f"{stats.confidence:.0%}"
    cut_any = False
    shown: set[str] = set()
    for gi, g in enumerate(groups):
        row, col = gi // cols + 1, gi % cols + 1
        arms = [("dense", "dense model", g.dense, ("diamond", 11, DENSE_COLOR)),
                ("ticket", "ticket", g.ticket, TICKET[:3])]
        for ci_, c in enumerate(controls):
            if c in g.controls:
                symbol, size, color, _ = arm_marker(c, ci_)
                arms.append((c, f"{control_label(c)} control", g.controls[c],
                             (symbol, size, color)))
        for key, label, est, (symbol, size, color) in arms:
            plus, minus, cut = _interval(g.metric, est)
            cut_any |= cut
            fig.add_trace(go.Scatter(
                x=[esc(label)], y=fmt.sig([est.mean], 6), mode="markers", name=esc(label),
                legendgroup=key, showlegend=key not in shown, cliponaxis=False,
                marker=dict(color=color, symbol=symbol, size=max(size, 11),
                            line=dict(width=2, color=color)),
                error_y=dict(type="data", array=plus, arrayminus=minus, visible=bool(plus),
                             color=color, thickness=2, width=8),
                hovertemplate=f"{esc(label)}<br>mean %{{y:.4f}} over {est.n} seeds"
                              f"<br>{ci} interval {fmt.num(est.low, '.4f')} to "
                              f"{fmt.num(est.high, '.4f')}<extra></extra>"), row=row, col=col)
            shown.add(key)
        fig.update_yaxes(title_text=f"{esc(g.metric)} (mean over seeds)" if col == 1 else None,
                         row=row, col=col)
        fig.update_xaxes(title_text="arm, at the ticket's sparsity" if row == rows else None,
                         row=row, col=col)
    _finish(fig, f"Each arm over seeds: mean and {ci} interval", 130 + 320 * rows,
            legend=dict(orientation="h", y=-0.15, x=0))
    caption = (f"<b>The verdict over seeds, drawn.</b> One panel per task: the dense model, "
               "the ticket and each control at the ticket's sparsity; the marker is the mean "
               f"over the seeds, the bar its {ci} confidence interval (Student's t over the "
               "seeds, n in the panel title). Where the ticket's bar overlaps the dense "
               "model's and stays above the controls' bars, the ticket matches dense and "
               "beats the controls; the paired tests are in the table below."
               + _clip_note(groups[0].metric if groups else "", cut_any))
    return Drawn(fig, caption)


def _band(fig: go.Figure, x: list[float], low: list[float], high: list[float], color: str,
          group: str, row: int, col: int) -> None:
    """A filled band between ``low`` and ``high`` (no band where an interval is NaN)."""
    fig.add_trace(go.Scatter(x=fmt.sig(x), y=fmt.sig(high, 6), mode="lines",
                             line=dict(width=0, color=color), legendgroup=group,
                             showlegend=False, hoverinfo="skip"), row=row, col=col)
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    fig.add_trace(go.Scatter(x=fmt.sig(x), y=fmt.sig(low, 6), mode="lines", fill="tonexty",
                             line=dict(width=0, color=color),
                             fillcolor=f"rgba({r},{g},{b},0.18)", legendgroup=group,
                             showlegend=False, hoverinfo="skip", name=f"{group} band"),
                  row=row, col=col)


@draws(SweepStats, "rounds")
def curves_drawn(stats: SweepStats) -> Drawn:
    """One panel per group (task, settings): the IMP rounds' mean metric with its band and
    dense as a band across the panel."""
    groups, rows, cols, titles = _groups_layout(stats)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07)
    ci = f"{stats.confidence:.0%}"
    cut_any = False
    for gi, g in enumerate(groups):
        row, col, first = gi // cols + 1, gi % cols + 1, gi == 0
        rounds = g.rounds
        x = [r.sparsity.mean for r in rounds]
        right = max([*x, g.sparsity.mean, 0.0])
        d_low, d_high, cut = fmt.clip_interval(g.metric, g.dense.low, g.dense.high)
        cut_any |= cut
        _band(fig, [0.0, right], [d_low] * 2, [d_high] * 2, DENSE_COLOR, "dense", row, col)
        fig.add_trace(go.Scatter(
            x=fmt.sig([0.0, right]), y=fmt.sig([g.dense.mean] * 2, 6), mode="lines",
            name=f"dense model (shaded: {ci} interval)", legendgroup="dense",
            showlegend=first, line=dict(color=DENSE_COLOR, dash="dot"),
            hovertemplate=f"dense<br>mean %{{y:.4f}} over {g.dense.n} seeds<extra></extra>"),
            row=row, col=col)
        bounds = [fmt.clip_interval(g.metric, r.metric.low, r.metric.high) for r in rounds]
        cut_any |= any(b[2] for b in bounds)
        _band(fig, x, [b[0] for b in bounds], [b[1] for b in bounds], TICKET[2], "IMP rounds",
              row, col)
        fig.add_trace(go.Scatter(
            x=fmt.sig(x), y=fmt.sig([r.metric.mean for r in rounds], 6), mode="lines+markers",
            name=f"IMP rounds, mean over seeds (shaded: {ci} interval)",
            legendgroup="IMP rounds", showlegend=first, line=dict(color=TICKET[2]),
            marker=dict(size=6),
            customdata=[[r.index, r.metric.n] for r in rounds],
            hovertemplate="round %{customdata[0]}<br>sparsity %{x:.1%}<br>mean %{y:.4f} over "
                          "%{customdata[1]} seeds<extra></extra>"), row=row, col=col)
        fig.update_xaxes(tickformat=".0%", row=row, col=col,
                         title_text="sparsity (mean over seeds)" if row == rows else None)
        fig.update_yaxes(title_text=esc(g.metric) if col == 1 else None, row=row, col=col)
    _finish(fig, f"IMP rounds over seeds: mean and {ci} band", 130 + 300 * rows,
            legend=dict(orientation="h", y=-0.22, x=0))
    caption = ("<b>How the metric falls as IMP prunes, over seeds.</b> One panel per task. "
               "Blue: the mean over the seeds of each IMP round's metric against the round's "
               f"mean sparsity (linear axes), the shaded band its {ci} interval (Student's t; "
               "a round reached by one seed has no band); grey dotted: the dense model's mean, "
               "its band shaded grey. The arms at the ticket's sparsity are in the figure "
               "above." + _clip_note(groups[0].metric if groups else "", cut_any))
    return Drawn(fig, caption)


@draws(OverlapMatrix, "matrix")
def overlap_matrix_drawn(m: OverlapMatrix) -> Drawn:
    """A heatmap of ``OverlapMatrix.jaccard`` (rows and columns by task, then seed), the tasks
    parted by lines, the diagonal blank."""
    names = [esc(n) for n in m.names]
    n = len(names)
    text = [[(f"{names[a]} vs {names[b]}<br>Jaccard {fmt.num(m.jaccard[a][b])} (chance "
              f"{fmt.num(m.chance[a][b])})") if a != b else f"{names[a]} (itself)"
             for b in range(n)] for a in range(n)]
    z = [[None if a == b else m.jaccard[a][b] for b in range(n)] for a in range(n)]
    cells = [["" if a == b else fmt.num(m.jaccard[a][b], ".2f") for b in range(n)]
             for a in range(n)]
    fig = go.Figure(go.Heatmap(z=fmt.sig(z), x=names, y=names, customdata=text,
                               hovertemplate="%{customdata}<extra></extra>", text=cells,
                               texttemplate="%{text}", colorscale="Magma", reversescale=True,
                               xgap=1, ygap=1, colorbar=dict(title="Jaccard")))
    for i in range(1, n):
        if m.tasks[i] != m.tasks[i - 1]:  # a task boundary
            for axis in ("x", "y"):
                pos = dict(x0=i - 0.5, x1=i - 0.5, y0=-0.5, y1=n - 0.5) if axis == "x" else \
                    dict(y0=i - 0.5, y1=i - 0.5, x0=-0.5, x1=n - 0.5)
                fig.add_shape(type="line", line=dict(color="#1b2a41", width=3), **pos)
    where = esc(f"{m.model} {m.settings}".strip())
    _finish(fig, f"Ticket overlap, seed × task ({where})", 220 + 34 * n)
    fig.update_yaxes(autorange="reversed")
    caption = ("<b>Do tickets of different tasks share weights, and is it the seed?</b> "
               "Each cell: the Jaccard index of the kept weights of two runs (written in the "
               "cell; the diagonal blank), rows and columns ordered by task then seed, tasks "
               "parted by dark lines. The blocks off the diagonal compare tasks; in them, a "
               "cell of two runs with the same seed holds the seed fixed. Hover for each "
               "pair's chance level (independent masks with the same per-tensor counts).")
    return Drawn(fig, caption)
