"""Plotly figures from analysis results. No maths here: every number drawn comes from a run's
record (read once, :mod:`ticketlens.report.runs`) or an analysis result (``ticketlens.analysis``).
Numbers go into a figure through :func:`fmt.sig` (fewer digits, no NaN) and into text through
:mod:`ticketlens.report.fmt`; every axis writes small numbers as ``1e-6``, never ``1µ``."""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ticketlens.analysis.earlybird import EarlyBirdResult
from ticketlens.analysis.overlap import OverlapResult
from ticketlens.analysis.survival import ProfileResult, SurvivalResult
from ticketlens.core.structure import STATE_NAMES
from ticketlens.report import fmt
from ticketlens.report.runs import Point, RunView

# 34 distinct colours: one per run, so six runs (or twenty) never share one.
PALETTE = tuple(dict.fromkeys(qualitative.D3 + qualitative.Dark24))
# A marker per control, open where it could cover another, so coinciding points stay visible;
# the glyph names it in the figure title. Arms without their own shape take the spare ones.
CONTROL_MARKERS = {"random_mask": ("x-thin", 10, "✕"),
                   "random_reinit": ("triangle-up-open", 16, "△"),
                   "oneshot": ("diamond-open", 16, "◇")}
SPARE_MARKERS = (("square-open", 14, "□"), ("star-open", 15, "☆"), ("hexagon-open", 14, "⬡"),
                 ("pentagon-open", 14, "⬠"))
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


def _control_marker(name: str, i: int) -> tuple[str, int, str]:
    """(plotly symbol, size, glyph) of a control; ``i``: its place among the controls drawn."""
    return CONTROL_MARKERS.get(name) or SPARE_MARKERS[i % len(SPARE_MARKERS)]


def _units_hover(p: Point) -> str:
    """The unit sparsity of a structured round or arm, for its hover text ("" otherwise)."""
    if p.heads is None and p.neurons is None:
        return ""
    return f"<br>heads pruned {fmt.pct(p.heads)}, neurons pruned {fmt.pct(p.neurons)}"


def accuracy_vs_sparsity(runs: list[RunView]) -> go.Figure:
    """The canonical lottery-ticket plot: one panel per task, one line (colour) per run, a
    marker per control."""
    by_task: dict[str, list[tuple[int, RunView]]] = defaultdict(list)
    for i, r in enumerate(runs):
        if r.trained:
            by_task[r.task].append((i, r))
    tasks = sorted(by_task)
    controls = list(dict.fromkeys(c.name for rs in by_task.values() for _, r in rs
                                  for c in r.controls))
    markers = {c: _control_marker(c, i) for i, c in enumerate(controls)}
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=[esc(t) for t in tasks],
                        shared_yaxes=False)
    for col, task in enumerate(tasks, start=1):
        for i, r in by_task[task]:
            color = PALETTE[i % len(PALETTE)]
            label, metric, group = esc(r.label), esc(r.metric), f"run-{i}"
            xs = [p.sparsity for p in r.rounds]
            fig.add_trace(go.Scatter(
                x=fmt.sig(xs), y=fmt.sig([p.value for p in r.rounds], 6),
                mode="lines+markers", name=f"ticket · {label}", legendgroup=group,
                line=dict(color=color),
                customdata=[[p.round, _units_hover(p)] for p in r.rounds],
                hovertemplate=f"{label}<br>round %{{customdata[0]}}<br>sparsity %{{x:.1%}}"
                              f"%{{customdata[1]}}<br>{metric} %{{y:.4f}}<extra>ticket</extra>"),
                row=1, col=col)
            fig.add_trace(go.Scatter(
                x=fmt.sig([0.0, max(xs)]), y=fmt.sig([r.dense, r.dense], 6), mode="lines",
                name=f"dense · {label}", legendgroup=group, showlegend=False,
                line=dict(color=color, dash="dot", width=1),
                hovertemplate=f"dense {metric} %{{y:.4f}}<extra>{label}</extra>"),
                row=1, col=col)
            for c in r.controls:
                symbol, size, _ = markers[c.name]
                fig.add_trace(go.Scatter(
                    x=fmt.sig([c.point.sparsity]), y=fmt.sig([c.point.value], 6),
                    mode="markers", name=f"{esc(c.label)} · {label}", legendgroup=group,
                    showlegend=False, cliponaxis=False,
                    marker=dict(color=color, symbol=symbol, size=size,
                                line=dict(color=color, width=2)),
                    hovertemplate=f"{esc(c.label)} control<br>sparsity %{{x:.1%}}"
                                  f"{_units_hover(c.point)}<br>{metric}"
                                  f" %{{y:.4f}}<extra>{label}</extra>"), row=1, col=col)
        fig.update_xaxes(title_text="sparsity", tickformat=".0%", row=1, col=col)
        fig.update_yaxes(title_text=esc(by_task[task][0][1].metric), row=1, col=col)
    labels = {c.name: c.label for rs in by_task.values() for _, r in rs for c in r.controls}
    key = ", ".join(f"{markers[c][2]} {esc(labels[c])}" for c in controls)
    return _finish(fig, "Ticket vs dense (dotted)" + (f" and controls ({key})" if key else ""),
                   420)


def sparsity_profile_figure(profile: ProfileResult, title: str) -> go.Figure:
    d = profile.to_dict()
    rows = [f"L{la} {role}" for la in d["layers"] for role in d["roles"]]
    z = [[d["sparsity"][ri][li][ro] for ri in range(len(d["rounds"]))]
         for li in range(len(d["layers"])) for ro in range(len(d["roles"]))]
    fig = go.Figure(go.Heatmap(
        z=fmt.sig(z), x=[f"round {r}" for r in d["rounds"]], y=rows, colorscale="Blues",
        zmin=0, zmax=1, colorbar=dict(title="sparsity", tickformat=".0%"),
        hovertemplate="%{y}<br>%{x}<br>sparsity %{z:.1%}<extra></extra>"))
    _finish(fig, title, max(300, 14 * len(rows) + 120))
    fig.update_yaxes(autorange="reversed")
    return fig


def _discrete_scale(colors: list[str]) -> list[list[Any]]:
    """A colorscale of equal bands, one per colour (z = 0, 1, ... with zmin -0.5)."""
    n = len(colors)
    return [[edge / n, c] for i, c in enumerate(colors) for edge in (i, i + 1)]


def head_survival_figure(s: SurvivalResult, title: str) -> go.Figure:
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
        colorbar=dict(title="state", tickvals=list(range(len(STATE_NAMES))),
                      ticktext=[f"{n} ({counts[n]})" for n in STATE_NAMES])))
    _finish(fig, title, 140 + 40 * s.num_layers)
    fig.update_yaxes(autorange="reversed")
    return fig


def neuron_states_figure(s: SurvivalResult, title: str) -> go.Figure:
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
    _finish(fig, title, 140 + 30 * len(layers), barmode="stack", xaxis_title="neurons",
            legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(autorange="reversed")
    return fig


def early_bird_figure(bird: EarlyBirdResult, title: str) -> go.Figure:
    """The dense run's mask draws: distance to the previous draw by step, the threshold ε,
    and the step where early-bird stopped dense training (a vertical line)."""
    draws = [d for d in bird.draws if d.distance is not None]
    fig = go.Figure(go.Scatter(
        x=[d.step for d in draws], y=fmt.sig([d.distance for d in draws]),
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
    return _finish(fig, title, 360, xaxis_title="dense training step",
                   yaxis_title="normalised Hamming distance", showlegend=False,
                   xaxis_range=[0, bird.dense_steps * 1.02])


def neuron_survival_figure(s: SurvivalResult, title: str, bins: int = 10) -> go.Figure:
    z = [n.histogram(bins) for n in s.neurons]
    edges = [f"{fmt.pct(i / bins, 0)}–{fmt.pct((i + 1) / bins, 0)}" for i in range(bins)]
    fig = go.Figure(go.Heatmap(
        z=z, x=edges, y=[f"L{n.layer} ({n.dead} dead)" for n in s.neurons],
        colorscale="Greens", colorbar=dict(title="neurons"),
        hovertemplate="%{y}<br>kept %{x}: %{z} neurons<extra></extra>"))
    _finish(fig, title, 120 + 40 * len(s.neurons),
            xaxis_title="kept fraction of the neuron's weights")
    fig.update_yaxes(autorange="reversed")
    return fig


def overlap_matrix_figure(o: OverlapResult, title: str) -> go.Figure:
    j = o.matrix("jaccard")
    chance = o.matrix("jaccard_chance")
    p = o.matrix("p_value")
    names = [esc(n) for n in o.names]
    text = [[(f"{names[a]} vs {names[b]}<br>Jaccard {fmt.num(j[a, b])} (chance "
              f"{fmt.num(chance[a, b])})<br>p {_p_text(p[a, b])}") if a != b else names[a]
             for b in range(len(names))] for a in range(len(names))]
    fig = go.Figure(go.Heatmap(z=fmt.sig(j), x=names, y=names, text=text, hoverinfo="text",
                               colorscale="Magma", reversescale=True,
                               colorbar=dict(title="Jaccard")))
    _finish(fig, title, 200 + 30 * len(names))
    fig.update_yaxes(autorange="reversed")
    return fig


def _p_text(p: float) -> str:
    s = fmt.p_value(p)
    return s if s.startswith("<") else f"= {s}"


def per_layer_overlap_figure(results: dict[str, OverlapResult], title: str) -> go.Figure:
    fig = go.Figure()
    for i, (by, o) in enumerate(results.items()):
        if not o.per_layer:
            continue
        color = PALETTE[i % len(PALETTE)]
        layers = [x.layer for x in o.per_layer]
        fig.add_trace(go.Scatter(x=layers, y=fmt.sig([x.jaccard_mean for x in o.per_layer]),
                                 name=f"{by}: observed", line=dict(color=color),
                                 hovertemplate="layer %{x}<br>mean Jaccard %{y:.3f}"))
        fig.add_trace(go.Scatter(x=layers,
                                 y=fmt.sig([x.jaccard_chance_mean for x in o.per_layer]),
                                 name=f"{by}: chance", line=dict(color=color, dash="dot"),
                                 hovertemplate="layer %{x}<br>chance %{y:.3f}"))
    return _finish(fig, title, 380, xaxis_title="layer", xaxis_dtick=1,
                   yaxis_title="mean Jaccard over pairs")


def attribution_tokens_figure(attr: Any, title: str, max_texts: int = 4) -> go.Figure:
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
            ylab.append(f"#{n} {who}")
    fig = go.Figure(go.Heatmap(z=fmt.sig(z, 3), text=text, texttemplate="%{text}", y=ylab,
                               x=[str(i) for i in range(width)], colorscale="RdYlGn",
                               zmid=0, zmin=-1, zmax=1, colorbar=dict(title="attr / max"),
                               hovertemplate="%{y}<br>%{text}: %{z:.2f}<extra></extra>"))
    _finish(fig, title, 120 + 34 * len(ylab))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(showticklabels=False)
    return fig


def importance_vs_kept_figure(attr: Any, title: str) -> go.Figure:
    """Dense-model unit importance against the ticket's kept fraction of the unit."""
    fig = go.Figure()
    for i, u in enumerate(attr.units):
        imp = u.importance.reshape(-1).tolist()
        kept = u.kept.reshape(-1).tolist()
        rho = fmt.num(u.spearman_importance_kept, "+.2f")
        fig.add_trace(go.Scatter(
            x=fmt.sig(kept), y=fmt.sig(imp, 3), mode="markers",
            name=f"{esc(u.kind)}s (ρ = {rho})",
            marker=dict(color=PALETTE[i % len(PALETTE)],
                        size=6 if u.kind == "head" else 3, opacity=0.6),
            hovertemplate="kept %{x:.1%}<br>importance %{y:.3g}<extra></extra>"))
    return _finish(fig, title, 380, xaxis_title="kept fraction in the ticket",
                   xaxis_tickformat=".0%", yaxis_title="importance in the dense model",
                   yaxis_type="log")


def seed_statistics_figure(stats: Any, title: str) -> go.Figure:
    """Per group of seeds (``analysis.sweep.SweepStats``): dense at 0% and the ticket and
    each control at the ticket's mean sparsity, mean with the confidence interval as error
    bars (computed by ``sweep_stats``; drawn here, not computed)."""
    fig = go.Figure()
    for gi, g in enumerate(stats.groups):
        color = PALETTE[gi % len(PALETTE)]
        name = esc(f"{g.task} {g.settings}".strip())

        def add(label: str, x: float, est: Any, symbol: str, g=g, name=name,
                color=color) -> None:
            half = [] if est.n < 2 else [est.half_width]
            fig.add_trace(go.Scatter(
                x=fmt.sig([x]), y=fmt.sig([est.mean], 6), mode="markers",
                name=f"{name}: {esc(label)}", legendgroup=name,
                marker=dict(color=color, symbol=symbol, size=10, line=dict(width=2)),
                error_y=dict(type="data", array=fmt.sig(half, 4), visible=bool(half)),
                hovertemplate=f"{name} {esc(label)}<br>mean %{{y:.4f}} over {est.n} seeds"
                              "<extra></extra>"))

        add("dense", 0.0, g.dense, "diamond-open")
        add("ticket", g.sparsity.mean, g.ticket, "circle")
        for ci, (c, est) in enumerate(g.controls.items()):
            add(c.replace("_", " "), g.sparsity.mean, est, _control_marker(c, ci)[0])
    return _finish(fig, title, 420, xaxis_title="sparsity", xaxis_tickformat=".0%",
                   yaxis_title="metric (mean over seeds, CI)")
