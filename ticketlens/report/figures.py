"""Plotly figures from analysis results. No maths here: every number drawn comes from a run's
record (read once, :mod:`ticketlens.report.runs`) or an analysis result (``ticketlens.analysis``).
Numbers go into a figure through :func:`fmt.sig` (fewer digits, no NaN) and into text through
:mod:`ticketlens.report.fmt`; every axis writes small numbers as ``1e-6``, never ``1µ``."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ticketlens.analysis.earlybird import EarlyBirdResult
from ticketlens.analysis.overlap import OverlapResult
from ticketlens.analysis.results import AttributionResult
from ticketlens.analysis.survival import ProfileResult, SurvivalResult
from ticketlens.core.structure import STATE_NAMES
from ticketlens.report import fmt
from ticketlens.report.draw import Drawn, draws
from ticketlens.report.runs import Point, RunView

# 34 distinct colours, for series that are not arms (levels, unit kinds).
PALETTE = tuple(dict.fromkeys(qualitative.D3 + qualitative.Dark24))
# Each arm one colour and one marker in every figure (legend entries never look alike):
# (plotly symbol, size, colour, glyph for text).
TICKET = ("circle", 7, "#1f77b4", "●")
DENSE_COLOR = "#555555"
ARM_MARKERS = {"random_mask": ("x", 11, "#d62728", "✕"),
               "random_reinit": ("triangle-up-open", 13, "#ff7f0e", "△"),
               "oneshot": ("diamond-open", 13, "#9467bd", "◇")}
SPARE_MARKERS = (("square-open", 12, "#8c564b", "□"), ("star-open", 13, "#e377c2", "☆"),
                 ("hexagon-open", 12, "#17becf", "⬡"), ("pentagon-open", 12, "#bcbd22", "⬠"))
# kept for callers that ask for a control's marker by name: (symbol, size, glyph)
CONTROL_MARKERS = {k: (v[0], v[1], v[3]) for k, v in ARM_MARKERS.items()}
DODGE = 0.04  # a control's x offset from the ticket's sparsity (per control), so none hides
EXPONENT = "e"  # plotly's default ("B") writes 1e-9 as "1n" and 1e-5 as "10µ"
# A unit's state (core.structure), in STATE_NAMES order: colour and what it means.
STATE_COLORS = {"alive": "#2e7d32", "blind": "#e6c229", "constant": "#8d8d8d",
                "dead": "#b71c1c"}
STATE_MEANING = {"alive": "no slice fully pruned",
                 "blind": "Q or K fully pruned: attends without looking, still adds a mix of V",
                 "constant": "V fully pruned: adds a fixed vector (counts as dead)",
                 "dead": "O fully pruned: adds nothing"}
NEURON_MEANING = {"alive": "neither side fully pruned",
                  "constant": "input row pruned: adds a fixed vector (counts as dead)",
                  "dead": "output column pruned: adds nothing"}
def _template() -> go.layout.Template:
    """plotly_white's look, without its defaults for trace types the report never draws
    (the full template is 7 kB, repeated in every figure)."""
    white = pio.templates["plotly_white"].layout
    keep = ("font", "hovermode", "hoverlabel", "paper_bgcolor", "plot_bgcolor", "xaxis",
            "yaxis", "title", "colorway")
    return go.layout.Template(layout={k: white[k] for k in keep},
                              data={"heatmap": [{"colorbar": {"outlinewidth": 0, "ticks": ""}}]})


def _finish(fig: go.Figure, title: str, height: int, **layout: Any) -> go.Figure:
    fig.update_layout(template=_template(), margin=dict(l=60, r=20, t=70, b=50),
                      font=dict(size=12), hoverlabel=dict(namelength=-1), title=title,
                      height=height, **layout)
    fig.update_xaxes(exponentformat=EXPONENT)
    fig.update_yaxes(exponentformat=EXPONENT)
    fig.update_traces(colorbar_exponentformat=EXPONENT, selector=dict(type="heatmap"))
    return fig


def esc(text: Any) -> str:
    """Run-supplied text for plotly: entity-escaped, so it shows as text and runs nothing."""
    return html.escape(fmt.text(text), quote=True)


def arm_marker(name: str, i: int) -> tuple[str, int, str, str]:
    """(plotly symbol, size, colour, glyph) of a control; ``i``: its place among the controls
    drawn (arms without a marker of their own take the spare ones in that order)."""
    return ARM_MARKERS.get(name) or SPARE_MARKERS[i % len(SPARE_MARKERS)]


def _control_marker(name: str, i: int) -> tuple[str, int, str]:
    symbol, size, _, glyph = arm_marker(name, i)
    return symbol, size, glyph


def _units_hover(p: Point) -> str:
    """The unit sparsity of a structured round or arm, for its hover text ("" otherwise)."""
    if p.heads is None and p.neurons is None:
        return ""
    return f"<br>heads pruned {fmt.pct(p.heads)}, neurons pruned {fmt.pct(p.neurons)}"


def _panels(runs: list[RunView], cols_max: int = 3) -> tuple[list[tuple[int, RunView]], int]:
    """Runs laid out one panel each, a task's runs in rows of up to ``cols_max`` (by seed),
    each task starting a new row: [(panel index, run)] and the number of columns."""
    by_task: dict[str, list[RunView]] = defaultdict(list)
    for r in runs:
        by_task[r.task].append(r)
    cols = max(1, min(cols_max, max((len(rs) for rs in by_task.values()), default=1)))
    placed, row = [], 0
    for task in sorted(by_task):
        rs = sorted(by_task[task], key=lambda r: (r.seed is None, r.seed, r.name))
        for i, r in enumerate(rs):
            placed.append((row * cols + i % cols + (i // cols) * cols, r))
        row += math.ceil(len(rs) / cols)
    return placed, cols


def _accuracy_panel(fig: Any, r: RunView, row: int, col: int, markers: dict[str, Any],
                    legend: Callable[[str], bool]) -> None:
    """One run's panel of :func:`accuracy_drawn`: dense, the rounds, the ticket ringed, the
    controls dodged right of it (``legend(key)``: whether this trace shows in the legend)."""
    label, metric = esc(r.label), esc(r.metric)
    xs = [p.sparsity for p in r.rounds]
    fig.add_trace(go.Scatter(
        x=fmt.sig([0.0, max(xs)]), y=fmt.sig([r.dense, r.dense], 6), mode="lines",
        name="dense model (round 0)", legendgroup="dense", showlegend=legend("dense"),
        line=dict(color=DENSE_COLOR, dash="dot", width=1.5),
        hovertemplate=f"{label}<br>dense {metric} %{{y:.4f}}<extra></extra>"),
        row=row, col=col)
    fig.add_trace(go.Scatter(
        x=fmt.sig(xs), y=fmt.sig([p.value for p in r.rounds], 6),
        mode="lines+markers", name="IMP rounds (rewound, pruned, retrained)",
        legendgroup="rounds", showlegend=legend("rounds"),
        line=dict(color=TICKET[2]), marker=dict(symbol=TICKET[0], size=TICKET[1]),
        customdata=[[p.round, _units_hover(p)] for p in r.rounds],
        hovertemplate=f"{label}<br>round %{{customdata[0]}}<br>sparsity %{{x:.1%}}"
                      f"%{{customdata[1]}}<br>{metric} %{{y:.4f}}<extra></extra>"),
        row=row, col=col)
    fig.add_trace(go.Scatter(
        x=fmt.sig([r.ticket.sparsity]), y=fmt.sig([r.ticket.value], 6), mode="markers",
        name="the ticket (round chosen)", legendgroup="ticket",
        showlegend=legend("ticket"), cliponaxis=False,
        marker=dict(symbol="circle-open", size=16, color=TICKET[2], line=dict(width=2)),
        hovertemplate=f"{label}<br>ticket: round {r.ticket.round}<br>sparsity "
                      f"%{{x:.1%}}<br>{metric} %{{y:.4f}}<extra></extra>"),
        row=row, col=col)
    for k, c in enumerate(r.controls):
        symbol, size, color, _ = markers[c.name]
        fig.add_trace(go.Scatter(  # dodged right of the ticket, side by side
            x=fmt.sig([c.point.sparsity + DODGE * (k + 1)]), y=fmt.sig([c.point.value], 6),
            customdata=fmt.sig([c.point.sparsity]),
            mode="markers", name=f"{esc(c.label)} control", legendgroup=c.name,
            showlegend=legend(c.name), cliponaxis=False,
            marker=dict(color=color, symbol=symbol, size=size,
                        line=dict(color=color, width=2)),
            hovertemplate=f"{label}<br>{esc(c.label)} control<br>sparsity "
                          "%{customdata:.1%}"
                          f"{_units_hover(c.point)}<br>{metric} %{{y:.4f}}"
                          "<extra></extra>"), row=row, col=col)


def accuracy_drawn(runs: list[RunView]) -> Drawn:
    """The canonical lottery-ticket plot as small multiples: one panel per run (a row per
    task, seeds across), the IMP rounds as a line, the ticket ringed, dense dotted and each
    control a marker of its own shape and colour at the ticket's sparsity."""
    runs = [r for r in runs if r.trained]
    placed, cols = _panels(runs)
    rows = max(1, math.ceil((max((i for i, _ in placed), default=0) + 1) / cols))
    titles = [""] * (rows * cols)
    for i, r in placed:
        verdict = f" ({r.verdict})" if r.verdict else ""
        titles[i] = esc(r.label) + esc(verdict)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=0.45 / rows)
    controls = list(dict.fromkeys(c.name for _, r in placed for c in r.controls))
    markers = {c: arm_marker(c, i) for i, c in enumerate(controls)}
    shown: set[str] = set()

    def legend(key: str) -> bool:
        first = key not in shown
        shown.add(key)
        return first

    for i, r in placed:
        row, col = i // cols + 1, i % cols + 1
        _accuracy_panel(fig, r, row, col, markers, legend)
        fig.update_xaxes(tickformat=".0%", row=row, col=col,
                         title_text="sparsity (share of prunable weights removed)"
                         if row == rows else None)
        fig.update_yaxes(title_text=esc(r.metric) if col == 1 else None, row=row, col=col)
    _finish(fig, "Metric vs sparsity, one panel per run", 130 + 250 * rows,
            legend=dict(orientation="h", y=-0.12 if rows > 1 else -0.3, x=0))
    labels = {c.name: c.label for _, r in placed for c in r.controls}
    glyphs = "; ".join(f"{markers[c][3]} {esc(labels[c])}" for c in controls)
    metrics = sorted({r.metric for _, r in placed})
    caption = (
        "<b>Each panel is one run</b> (rows: task; columns: seed; the run's verdict in its "
        "title). The blue line is the metric of each IMP round: the weights rewound to the "
        "rewind point, pruned to the round's sparsity (x axis: share of the prunable weights "
        "removed, linear) and retrained; the ringed point is the round chosen as the ticket. "
        "The dotted grey line is the dense model (round 0). At the ticket's sparsity, the "
        "controls were trained with the ticket's schedule"
        + (f" ({glyphs}), drawn side by side just right of it so that equal values stay "
           "visible (hover for the exact sparsity)" if glyphs else "")
        + ": the random mask keeps as many weights per tensor as the ticket, at random "
        "positions, from the same start; the random reinit keeps the ticket's mask on fresh "
        "random weights. A winning ticket stays at the dotted line while the controls fall "
        f"below it. Y axis: {esc(', '.join(metrics))} on the dev set, linear, shared by the "
        "panels of a row and scaled to their points (read the tick labels).")
    return Drawn(fig, caption)


@draws(list, "accuracy")
def _runs_accuracy(runs: list[Any]) -> Drawn:
    from ticketlens.report.runs import run_view

    return accuracy_drawn([run_view(r) for r in runs])


@draws(ProfileResult, "profile")
def sparsity_profile_drawn(profile: ProfileResult) -> Drawn:
    d = profile.to_dict()
    rows = [f"L{la} {role}" for la in d["layers"] for role in d["roles"]]
    z = [[d["sparsity"][ri][li][ro] for ri in range(len(d["rounds"]))]
         for li in range(len(d["layers"])) for ro in range(len(d["roles"]))]
    fig = go.Figure(go.Heatmap(
        z=fmt.sig(z), x=[f"round {r}" for r in d["rounds"]], y=rows, colorscale="Blues",
        zmin=0, zmax=1, colorbar=dict(title="pruned", tickformat=".0%"),
        hovertemplate="%{y}<br>%{x}<br>pruned %{z:.1%}<extra></extra>"))
    _finish(fig, "Sparsity per layer and weight matrix across IMP rounds",
            max(300, 16 * len(rows) + 150))
    fig.update_yaxes(autorange="reversed", title_text="layer and weight matrix", dtick=1)
    fig.update_xaxes(title_text="IMP round (0 = dense)")
    caption = ("<b>Where the pruning went.</b> Each row is one weight matrix (L: layer; Q, K, "
               "V, O: the attention projections; FFN in / out: the feed-forward layers), each "
               "column an IMP round; the colour is the share of that matrix's weights pruned "
               "(white 0%, dark blue 100%). Rows that darken faster than the others lose "
               "weights first (with global pruning the matrices compete for the kept "
               "weights; per-tensor pruning gives every row of a column the same colour).")
    return Drawn(fig, caption)


def _discrete_scale(colors: list[str]) -> list[list[Any]]:
    """A colorscale of equal bands, one per colour (z = 0, 1, ... with zmin -0.5)."""
    n = len(colors)
    return [[edge / n, c] for i, c in enumerate(colors) for edge in (i, i + 1)]


@draws(SurvivalResult, "heads")
def head_survival_drawn(s: SurvivalResult) -> Drawn:
    """Heads coloured by state (alive, blind, constant, dead), the kept fraction written in
    each cell; hover: the state, its meaning and the Q/K/V/O kept fractions."""
    hover, kept = [], []
    for la in range(s.num_layers):
        hrow, krow = [], []
        for h in range(s.num_heads):
            u = s.head(f"L{la}H{h}")
            hrow.append(f"{u.unit}: <b>{u.state}</b> ({STATE_MEANING[u.state]})<br>kept "
                        f"{fmt.pct(u.kept)}<br>Q {fmt.pct(u.q)} K {fmt.pct(u.k)} V "
                        f"{fmt.pct(u.v)} O {fmt.pct(u.o)}")
            krow.append(fmt.pct(u.kept, 0))
        hover.append(hrow)
        kept.append(krow)
    counts = s.state_counts()["head"]
    fig = go.Figure(go.Heatmap(
        z=s.state_grid().tolist(), x=[f"H{h}" for h in range(s.num_heads)],
        y=[f"L{la}" for la in range(s.num_layers)], customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", text=kept, texttemplate="%{text}",
        colorscale=_discrete_scale([STATE_COLORS[n] for n in STATE_NAMES]), zmin=-0.5,
        zmax=len(STATE_NAMES) - 0.5, xgap=1, ygap=1,
        colorbar=dict(title="state (heads)", tickvals=list(range(len(STATE_NAMES))),
                      ticktext=[f"{n} ({counts[n]})" for n in STATE_NAMES])))
    _finish(fig, "Attention heads in the ticket", 140 + 40 * s.num_layers,
            xaxis_title="head", yaxis_title="layer")
    fig.update_yaxes(autorange="reversed")
    caption = ("<b>Each cell is one attention head</b> (row: layer, column: head). Colour: "
               "its state in the ticket: alive (no projection fully pruned), blind (Q or K "
               "fully pruned: attends without looking), constant (V fully pruned: adds a "
               "fixed vector), dead (O fully pruned: adds nothing); the count of each in the "
               "legend. The number in a cell is the share of the head's Q, K, V and O "
               "weights kept; hover for each projection.")
    return Drawn(fig, caption)


def has_lost_neurons(s: SurvivalResult) -> bool:
    """Whether any FFN neuron is constant or dead (else the states figure is one colour)."""
    counts = s.state_counts()["neuron"]
    return bool(counts["constant"] or counts["dead"])


@draws(SurvivalResult, "neuron-states")
def neuron_states_drawn(s: SurvivalResult) -> Drawn:
    """FFN neurons per layer: alive, constant and dead counts as stacked bars."""
    layers = s.layer_states()
    y = [f"L{ls.layer}" for ls in layers]
    fig = go.Figure()
    for state in ("alive", "constant", "dead"):
        fig.add_trace(go.Bar(
            x=[ls.neurons[state] for ls in layers], y=y, orientation="h", name=state,
            marker_color=STATE_COLORS[state],
            hovertemplate=f"%{{y}}: %{{x}} {state} neurons ({NEURON_MEANING[state]})"
                          "<extra></extra>"))
    _finish(fig, "FFN neurons per layer by state", 160 + 30 * len(layers), barmode="stack",
            xaxis_title="neurons (count)", yaxis_title="layer",
            legend=dict(orientation="h", y=-0.35, traceorder="normal"))
    fig.update_yaxes(autorange="reversed")
    caption = ("<b>FFN neurons of each layer, counted by state</b> in the ticket: alive "
               "(neither its input row nor its output column fully pruned), constant (input "
               "row pruned: adds a fixed vector) and dead (output column pruned: adds "
               "nothing). Bars are stacked; their length is the layer's width.")
    return Drawn(fig, caption)


@draws(EarlyBirdResult, "early-bird")
def early_bird_drawn(bird: EarlyBirdResult) -> Drawn:
    """The dense run's mask draws: distance to the previous draw by step, the threshold ε,
    and the step where early-bird stopped dense training (a vertical line)."""
    draws_ = [d for d in bird.draws if d.distance is not None]
    fig = go.Figure(go.Scatter(
        x=[d.step for d in draws_], y=fmt.sig([d.distance for d in draws_]),
        mode="lines+markers", name="mask distance",
        hovertemplate="step %{x}<br>distance to the previous draw %{y:.3f}<extra></extra>"))
    fig.add_hline(y=bird.epsilon, line_dash="dot", line_color="grey",
                  annotation_text=f"ε = {fmt.num(bird.epsilon, 'g')}")
    if bird.settled:
        fig.add_vline(x=bird.stopped_at, line_color=STATE_COLORS["dead"], line_width=2,
                      annotation_text=f"early-bird: step {bird.stopped_at} "
                                      f"({bird.steps_saved} of {bird.dense_steps} dense steps "
                                      f"saved)", annotation_position="top left")
    fig.add_vline(x=bird.dense_steps, line_dash="dash", line_color="grey",
                  annotation_text=f"planned dense steps ({bird.dense_steps})",
                  annotation_position="bottom left")
    _finish(fig, "Early-bird: mask distance between draws during dense training", 360,
            xaxis_title="dense training step",
            yaxis_title="normalised Hamming distance (share of weights)", showlegend=False,
            xaxis_range=[0, bird.dense_steps * 1.02])
    caption = (f"<b>When the ticket's mask settled.</b> Every {bird.every} steps of dense "
               "training a mask was drawn as the pruning would draw it at that step; each "
               "point is the share of weights whose kept/pruned bit changed since the "
               "previous draw (linear scale). "
               f"Dense training stops once {bird.window} distances in a row are below ε "
               "(dotted); the red line marks that step, the dashed line the planned end.")
    return Drawn(fig, caption)


@draws(SurvivalResult, "neurons")
def neuron_survival_drawn(s: SurvivalResult, bins: int = 10) -> Drawn:
    z = [n.histogram(bins) for n in s.neurons]
    edges = [f"{fmt.pct(i / bins, 0)}–{fmt.pct((i + 1) / bins, 0)}" for i in range(bins)]
    fig = go.Figure(go.Heatmap(
        z=z, x=edges, y=[f"L{n.layer}" for n in s.neurons], text=z, texttemplate="%{text}",
        colorscale="Greens", colorbar=dict(title="neurons (count)"), xgap=1, ygap=1,
        hovertemplate="%{y}<br>kept %{x}: %{z} neurons<extra></extra>"))
    _finish(fig, "FFN neurons by kept fraction", 150 + 40 * len(s.neurons),
            xaxis_title="kept share of the neuron's weights (input row and output column)",
            yaxis_title="layer")
    fig.update_yaxes(autorange="reversed")
    counts = s.state_counts()["neuron"]
    total = sum(counts.values())
    caption = ("<b>How much of each FFN neuron the ticket keeps.</b> Each row is a layer; "
               "each column a 10-point bin of the share of the neuron's weights kept (the "
               "mean of its input row and output column); the number and the colour: how "
               f"many neurons fall in the bin. Of {total:,} neurons, {counts['alive']:,} are "
               f"alive, {counts['constant']:,} constant and {counts['dead']:,} dead (input "
               "row or output column fully pruned).")
    return Drawn(fig, caption)


@draws(OverlapResult, "matrix")
def overlap_matrix_drawn(o: OverlapResult) -> Drawn:
    j = o.matrix("jaccard")
    chance = o.matrix("jaccard_chance")
    p = o.matrix("p_value")
    names = [esc(n) for n in o.names]
    n = len(names)
    text = [[(f"{names[a]} vs {names[b]}<br>Jaccard {fmt.num(j[a, b])} (chance "
              f"{fmt.num(chance[a, b])})<br>p {_p_text(p[a, b])}") if a != b else
             f"{names[a]} (itself)" for b in range(n)] for a in range(n)]
    z = [[None if a == b else j[a, b] for b in range(n)] for a in range(n)]
    cells = [["" if a == b else fmt.num(j[a, b], ".2f") for b in range(n)] for a in range(n)]
    fig = go.Figure(go.Heatmap(z=fmt.sig(z), x=names, y=names, customdata=text,
                               hovertemplate="%{customdata}<extra></extra>", text=cells,
                               texttemplate="%{text}", colorscale="Magma",
                               reversescale=True, xgap=1, ygap=1,
                               colorbar=dict(title="Jaccard")))
    _finish(fig, f"Overlap of the tickets ({esc(o.by)} level)", 220 + 34 * n)
    fig.update_yaxes(autorange="reversed")
    off = [chance[a, b] for a in range(n) for b in range(n) if a != b]
    span = (f"{fmt.num(min(off))} to {fmt.num(max(off))}" if off else fmt.NA)
    what = {"weight": "weights", "head": "alive heads", "neuron": "alive FFN neurons",
            "ffn": "alive FFN blocks"}.get(o.by, esc(o.by))
    caption = (f"<b>How much two tickets keep the same {what}.</b> Each cell is a pair of "
               "runs: the Jaccard index |A ∩ B| / |A ∪ B| of their kept sets (0: nothing in "
               "common, 1: identical), written in the cell; the diagonal (a run with itself) "
               "is left blank. Two independent random masks with the same kept counts per "
               f"tensor would give {span} here (hover for each pair's chance level and the "
               "one-sided p-value of an overlap this large under independence, "
               "hypergeometric).")
    return Drawn(fig, caption)


def _p_text(p: float) -> str:
    s = fmt.p_value(p)
    return s if s.startswith("<") else f"= {s}"


@draws(OverlapResult, "layers")
def _one_level_layers(o: OverlapResult) -> Drawn:
    return per_layer_overlap_drawn({o.by: o})


def per_layer_overlap_drawn(results: dict[str, OverlapResult]) -> Drawn:
    """One panel per level (weight, head, neuron): the mean Jaccard over pairs of runs per
    layer, observed (solid) and under independence (dashed)."""
    levels = [(by, o) for by, o in results.items() if o.per_layer]
    fig = make_subplots(rows=1, cols=max(1, len(levels)), shared_yaxes=True,
                        subplot_titles=[f"{esc(by)}s" for by, _ in levels])
    identical = []
    for col, (by, o) in enumerate(levels, start=1):
        layers = [x.layer for x in o.per_layer]
        observed = [x.jaccard_mean for x in o.per_layer]
        chance = [x.jaccard_chance_mean for x in o.per_layer]
        fig.add_trace(go.Scatter(
            x=layers, y=fmt.sig(observed), name="observed: mean over pairs of runs",
            legendgroup="observed", showlegend=col == 1, mode="lines+markers",
            line=dict(color=TICKET[2]), marker=dict(size=9),
            hovertemplate=f"{esc(by)}s, layer %{{x}}<br>mean Jaccard %{{y:.3f}}"
                          "<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Scatter(
            x=layers, y=fmt.sig(chance), name="chance: independent masks, same counts",
            legendgroup="chance", showlegend=col == 1, mode="lines+markers",
            line=dict(color=DENSE_COLOR, dash="dash"),
            marker=dict(symbol="diamond-open", size=12, line=dict(width=2)),
            hovertemplate=f"{esc(by)}s, layer %{{x}}<br>chance %{{y:.3f}}<extra></extra>"),
            row=1, col=col)
        fig.update_xaxes(title_text="layer", dtick=1, row=1, col=col)
        if all(a == b for a, b in zip(observed, chance, strict=True)):
            identical.append(by)
    fig.update_yaxes(title_text="mean Jaccard over pairs (0 to 1)", row=1, col=1)
    _finish(fig, "Overlap per layer vs chance", 380,
            legend=dict(orientation="h", y=-0.3, x=0))
    same = ""
    if identical:
        same = (f" In the {' and '.join(esc(b) + 's' for b in identical)} panel"
                f"{'s' if len(identical) > 1 else ''} the two lines coincide: every run keeps "
                "the same units there (typically all of them), so overlap and chance are "
                "equal.")
    caption = ("<b>Is the overlap of the tickets spread over the layers or concentrated?</b> "
               "One panel per level: weights, attention heads alive, FFN neurons alive. "
               "Solid: the Jaccard index of the kept sets, averaged over every pair of runs, "
               "per layer; dashed: the same for independent random masks with the same kept "
               "counts. A layer where the solid line rises above the dashed one keeps the "
               "same units across runs more than chance would." + same)
    return Drawn(fig, caption)


@draws(AttributionResult, "tokens")
def attribution_tokens_drawn(attr: Any, max_texts: int = 4) -> Drawn:
    """Dense vs ticket token attributions (an ``AttributionResult``), one row pair per
    text, each row scaled to its own largest |attribution| (``TokenAttribution.scaled``)."""
    items = attr.items[:max_texts]
    width = max(len(i.tokens) for i in items)
    z, text, ylab = [], [], []
    for n, it in enumerate(items):
        for who in ("dense", "ticket"):
            vals = it.scaled(who)
            z.append([*vals, *[None] * (width - len(vals))])
            text.append([esc(t) for t in it.tokens] + [""] * (width - len(vals)))
            ylab.append(f"text {n + 1}, {who}")
    fig = go.Figure(go.Heatmap(z=fmt.sig(z, 3), text=text, texttemplate="%{text}", y=ylab,
                               x=[str(i) for i in range(width)], colorscale="RdYlGn",
                               zmid=0, zmin=-1, zmax=1,
                               colorbar=dict(title="relative<br>attribution"),
                               hovertemplate="%{y}<br>%{text}: %{z:.2f}<extra></extra>"))
    _finish(fig, "Token attribution, dense model vs ticket", 140 + 34 * len(ylab),
            xaxis_title="token position", yaxis_title="dev text, model")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(showticklabels=False)
    caption = (f"<b>Which words each model relies on</b>, for {len(items)} dev texts: the "
               "dense model's row above the ticket's. Integrated gradients on the input "
               "embeddings (captum) for the class given, each row divided by its own "
               "largest |attribution| (so rows compare by pattern, not by size): green "
               "pushes towards the class, red away from it, pale yellow near zero. Words the "
               "tokenizer does not know show as [UNK]; [CLS] and [SEP] are its markers.")
    return Drawn(fig, caption)


@draws(AttributionResult, "importance")
def importance_vs_kept_drawn(attr: Any) -> Drawn:
    """Dense-model unit importance against the ticket's kept fraction of the unit."""
    fig = go.Figure()
    for i, u in enumerate(attr.units):
        imp = u.importance.reshape(-1).tolist()
        kept = u.kept.reshape(-1).tolist()
        rho = fmt.num(u.spearman_importance_kept, "+.2f")
        fig.add_trace(go.Scatter(
            x=fmt.sig(kept, 3), y=fmt.sig(imp, 3), mode="markers",
            name=f"{esc(u.kind)}s (Spearman ρ = {rho})",
            marker=dict(color=PALETTE[i % len(PALETTE)], symbol="circle" if i == 0 else
                        "diamond", size=7 if u.kind == "head" else 4, opacity=0.6),
            hovertemplate="kept %{x:.1%}<br>importance %{y:.3g}<extra></extra>"))
    _finish(fig, "Unit importance in the dense model vs what the ticket keeps", 400,
            xaxis_title="share of the unit's weights kept in the ticket",
            xaxis_tickformat=".0%",
            yaxis_title="importance E|∂loss/∂gate| (nats, log scale)", yaxis_type="log")
    caption = ("<b>Does the ticket keep the units the dense model needs?</b> Each point is "
               "one attention head or FFN neuron. Y: its importance in the dense model "
               "(Michel et al. 2019): the mean over dev batches of |∂loss/∂g| for a gate g "
               "= 1 on the unit's output, in nats of cross-entropy per unit of gate, on a "
               "log scale. X: the share of its weights the ticket keeps (linear). A "
               "positive Spearman ρ (legend) says important units keep more weights.")
    return Drawn(fig, caption)
