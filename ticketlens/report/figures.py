"""Plotly figures from analysis results. No maths here: every number drawn comes from the run
manifest (what ``find`` measured) or an analysis result (``ticketlens.analysis``)."""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ticketlens.analysis.overlap import OverlapResult
from ticketlens.analysis.survival import ProfileResult, SurvivalResult
from ticketlens.core.run import control_label

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50),
              font=dict(size=12), hoverlabel=dict(namelength=-1))


def esc(text: Any) -> str:
    """Run-supplied text for plotly: entity-escaped, so it shows as text and runs nothing."""
    return html.escape(str(text), quote=True)


def _label(run: Any) -> str:
    return esc(f"{run.task} · seed {run.seed}" if run.seed is not None else run.name)


def accuracy_vs_sparsity(runs: list[Any]) -> go.Figure:
    """The canonical lottery-ticket plot: one panel per task, one line per run."""
    by_task: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        if any(x.metrics for x in r.rounds):
            by_task[r.task].append(r)
    tasks = sorted(by_task)
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=[esc(t) for t in tasks],
                        shared_yaxes=False)
    for col, task in enumerate(tasks, start=1):
        for i, r in enumerate(by_task[task]):
            color = PALETTE[i % len(PALETTE)]
            metric = r.metric
            xs = [x.sparsity * 100 for x in r.rounds]
            ys = [x.metrics.get(metric) for x in r.rounds]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers", name=f"ticket · {_label(r)}",
                legendgroup=_label(r), line=dict(color=color),
                hovertemplate=f"{_label(r)}<br>round %{{customdata}}<br>sparsity %{{x:.1f}}%"
                              f"<br>{metric} %{{y:.4f}}<extra>ticket</extra>",
                customdata=[x.index for x in r.rounds]), row=1, col=col)
            dense = r.rounds[0].metrics.get(metric)
            fig.add_trace(go.Scatter(
                x=[0, max(xs)], y=[dense, dense], mode="lines", name=f"dense · {_label(r)}",
                legendgroup=_label(r), showlegend=False,
                line=dict(color=color, dash="dot", width=1),
                hovertemplate=f"dense {metric} %{{y:.4f}}<extra>{_label(r)}</extra>"),
                row=1, col=col)
            for control, symbol in (("random_mask", "x"), ("random_reinit", "triangle-up"),
                                    ("oneshot", "diamond")):
                c = r.controls.get(control)
                if c:
                    fig.add_trace(go.Scatter(
                        x=[c["sparsity"] * 100], y=[c["metrics"].get(metric)], mode="markers",
                        name=f"{control_label(control)} · {_label(r)}",
                        legendgroup=_label(r), showlegend=False,
                        marker=dict(color=color, symbol=symbol, size=11),
                        hovertemplate=f"{control_label(control)} control<br>sparsity "
                                      f"%{{x:.1f}}%<br>{metric} %{{y:.4f}}"
                                      f"<extra>{_label(r)}</extra>"), row=1, col=col)
        fig.update_xaxes(title_text="sparsity (%)", row=1, col=col)
        fig.update_yaxes(title_text=by_task[task][0].metric, row=1, col=col)
    oneshot = any("oneshot" in r.controls for r in runs)
    fig.update_layout(**LAYOUT, height=420, title="Ticket vs dense (dotted) and controls "
                      "(× random mask, ▲ random re-init" + (", ◆ one-shot magnitude)"
                                                            if oneshot else ")"))
    return fig


def sparsity_profile_figure(profile: ProfileResult, title: str) -> go.Figure:
    d = profile.to_dict()
    rows = [f"L{la} {role}" for la in d["layers"] for role in d["roles"]]
    z = [[d["sparsity"][ri][li][ro] for ri in range(len(d["rounds"]))]
         for li in range(len(d["layers"])) for ro in range(len(d["roles"]))]
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"round {r}" for r in d["rounds"]], y=rows, colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title="sparsity"),
        hovertemplate="%{y}<br>%{x}<br>sparsity %{z:.1%}<extra></extra>"))
    fig.update_layout(**LAYOUT, title=title, height=max(300, 14 * len(rows) + 120))
    fig.update_yaxes(autorange="reversed")
    return fig


def head_survival_figure(s: SurvivalResult, title: str) -> go.Figure:
    kept = s.head_grid("kept")
    text = []
    for la in range(s.num_layers):
        row = []
        for h in range(s.num_heads):
            u = s.head(f"L{la}H{h}")
            row.append(f"{u.unit}: kept {u.kept:.1%}<br>Q {u.q:.1%} K {u.k:.1%} V {u.v:.1%} "
                       f"O {u.o:.1%}{'<br><b>dead</b>' if u.dead else ''}")
        text.append(row)
    fig = go.Figure(go.Heatmap(
        z=kept.tolist(), x=[f"H{h}" for h in range(s.num_heads)],
        y=[f"L{la}" for la in range(s.num_layers)], text=text, hoverinfo="text",
        colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="kept")))
    dead = [(h.head, h.layer) for h in s.heads if h.dead]
    if dead:
        fig.add_trace(go.Scatter(x=[f"H{h}" for h, _ in dead], y=[f"L{la}" for _, la in dead],
                                 mode="markers", marker=dict(symbol="x", color="red", size=14),
                                 name="dead head", hoverinfo="skip"))
    fig.update_layout(**LAYOUT, title=title, height=120 + 40 * s.num_layers)
    fig.update_yaxes(autorange="reversed")
    return fig


def neuron_survival_figure(s: SurvivalResult, title: str, bins: int = 10) -> go.Figure:
    z = [n.histogram(bins) for n in s.neurons]
    edges = [f"{i / bins:.0%}–{(i + 1) / bins:.0%}" for i in range(bins)]
    fig = go.Figure(go.Heatmap(
        z=z, x=edges, y=[f"L{n.layer} ({n.dead} dead)" for n in s.neurons],
        colorscale="Greens", colorbar=dict(title="neurons"),
        hovertemplate="%{y}<br>kept %{x}: %{z} neurons<extra></extra>"))
    fig.update_layout(**LAYOUT, title=title, height=120 + 40 * len(s.neurons),
                      xaxis_title="kept fraction of the neuron's weights")
    fig.update_yaxes(autorange="reversed")
    return fig


def overlap_matrix_figure(o: OverlapResult, title: str) -> go.Figure:
    j = o.matrix("jaccard")
    chance = o.matrix("jaccard_chance")
    p = o.matrix("p_value")
    names = [esc(n) for n in o.names]
    text = [[(f"{names[a]} vs {names[b]}<br>Jaccard {j[a, b]:.3f} (chance {chance[a, b]:.3f})"
              f"<br>p = {p[a, b]:.2g}") if a != b else names[a] for b in range(len(names))]
            for a in range(len(names))]
    fig = go.Figure(go.Heatmap(z=j.tolist(), x=names, y=names, text=text, hoverinfo="text",
                               colorscale="Magma", reversescale=True,
                               colorbar=dict(title="Jaccard")))
    fig.update_layout(**LAYOUT, title=title, height=200 + 30 * len(names))
    fig.update_yaxes(autorange="reversed")
    return fig


def per_layer_overlap_figure(results: dict[str, OverlapResult], title: str) -> go.Figure:
    fig = go.Figure()
    for i, (by, o) in enumerate(results.items()):
        if not o.per_layer:
            continue
        color = PALETTE[i % len(PALETTE)]
        layers = [x.layer for x in o.per_layer]
        fig.add_trace(go.Scatter(x=layers, y=[x.jaccard_mean for x in o.per_layer],
                                 name=f"{by}: observed", line=dict(color=color),
                                 hovertemplate="layer %{x}<br>mean Jaccard %{y:.3f}"))
        fig.add_trace(go.Scatter(x=layers, y=[x.jaccard_chance_mean for x in o.per_layer],
                                 name=f"{by}: chance", line=dict(color=color, dash="dot"),
                                 hovertemplate="layer %{x}<br>chance %{y:.3f}"))
    fig.update_layout(**LAYOUT, title=title, height=380, xaxis_title="layer",
                      yaxis_title="mean Jaccard over pairs")
    return fig


def attribution_tokens_figure(attr: dict, title: str, max_texts: int = 4) -> go.Figure:
    """Dense vs ticket token attributions (from ``AttributionResult.to_dict()``), one row
    pair per text, each row scaled to its own largest |attribution|."""
    items = attr["items"][:max_texts]
    width = max(len(i["tokens"]) for i in items)
    z, text, ylab = [], [], []
    for n, it in enumerate(items):
        for who in ("dense", "ticket"):
            vals = it[who]
            peak = max(abs(v) for v in vals) or 1.0
            z.append([v / peak for v in vals] + [None] * (width - len(vals)))
            text.append([esc(t) for t in it["tokens"]] + [""] * (width - len(vals)))
            ylab.append(f"#{n} {who}")
    fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", y=ylab,
                               x=[str(i) for i in range(width)], colorscale="RdYlGn",
                               zmid=0, zmin=-1, zmax=1, colorbar=dict(title="attr / max"),
                               hovertemplate="%{y}<br>%{text}: %{z:.2f}<extra></extra>"))
    fig.update_layout(**LAYOUT, title=title, height=120 + 34 * len(ylab))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(showticklabels=False)
    return fig


def importance_vs_kept_figure(attr: dict, title: str) -> go.Figure:
    """Dense-model unit importance against the ticket's kept fraction of the unit."""
    fig = go.Figure()
    for i, u in enumerate(attr.get("units", [])):
        imp = [x for row in u["importance"] for x in row]
        kept = [x for row in u["kept"] for x in row]
        fig.add_trace(go.Scatter(
            x=kept, y=imp, mode="markers", name=f"{u['kind']}s (ρ = "
            f"{u['spearman_importance_kept']:+.2f})",
            marker=dict(color=PALETTE[i], size=6 if u["kind"] == "head" else 3, opacity=0.6),
            hovertemplate="kept %{x:.1%}<br>importance %{y:.3g}<extra></extra>"))
    fig.update_layout(**LAYOUT, title=title, height=380, xaxis_title="kept fraction in the ticket",
                      yaxis_title="importance in the dense model", yaxis_type="log")
    return fig
