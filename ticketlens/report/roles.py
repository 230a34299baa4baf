"""The report's head roles (what ``ticketlens roles --save`` stored in a run): the findings
first, then the heads as a grid coloured by pattern type with their roles written in, and
survival by role against chance; over seeds when several runs hold roles. The numbers are
:mod:`ticketlens.analysis.roles`'; nothing is computed here."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from ticketlens.analysis.roles import (
    PATTERNS,
    HeadRolesResult,
    RolesOverSeedsResult,
    role_label,
    roles_by_group,
    stored_roles,
)
from ticketlens.report import fmt
from ticketlens.report.draw import Drawn, draws
from ticketlens.report.figures import _discrete_scale, _finish

PATTERN_COLORS = ("#4c78a8", "#f58518", "#b279a2", "#54a24b", "#bab0ac")  # PATTERNS order
SHORT = {"first": "F", "sep": "S", "punct": "P", "same": "=", "prev": "<", "next": ">",
         "broad": "B", "induction": "I", "previous_token": "p"}


def _e(x: Any) -> str:
    return html.escape(fmt.text(x), quote=True)


@draws(HeadRolesResult, "patterns")
def roles_grid_drawn(r: HeadRolesResult) -> Drawn:
    """Heads coloured by the dense model's pattern type; the letters of their other roles
    written in, dead heads (in the tested round) crossed out; hover: every measurement."""
    z, text, hover = [], [], []
    for layer in range(r.num_layers):
        zr, tr, hr = [], [], []
        for h in range(r.num_heads):
            u = r.head(f"L{layer}H{h}")
            alive = bool(r.alive[layer, h])
            zr.append(PATTERNS.index(u.pattern) if u.pattern in PATTERNS else None)
            letters = "".join(SHORT[x] for x in u.roles if x in SHORT)
            tr.append((letters or "·") + ("" if alive else " ✕"))
            lines = [f"{u.unit}: <b>{u.pattern}</b> ({'alive' if alive else 'dead'} in round "
                     f"{r.round})"]
            lines += [f"{k}: {fmt.num(getattr(u, k), '.2f')}" for k in
                      ("first", "sep", "punct", "same", "prev", "next")]
            lines.append(f"entropy {fmt.num(u.entropy, '.2f')} nats "
                         f"({fmt.num(u.entropy_norm, '.2f')} of log n)")
            if u.induction is not None:
                lines.append(f"induction {fmt.num(u.induction, '.2f')}, previous-token "
                             f"{fmt.num(u.previous_token, '.2f')}")
            lines.append("roles: " + (", ".join(u.roles) or "none"))
            hr.append("<br>".join(lines))
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"H{h}" for h in range(r.num_heads)], y=[f"L{la}" for la in range(r.num_layers)],
        text=text, texttemplate="%{text}", customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", xgap=1, ygap=1,
        colorscale=_discrete_scale(list(PATTERN_COLORS)), zmin=-0.5,
        zmax=len(PATTERNS) - 0.5,
        colorbar=dict(title="pattern", tickvals=list(range(len(PATTERNS))),
                      ticktext=list(PATTERNS))))
    _finish(fig, "Head roles (dense model)", 140 + 40 * r.num_layers, xaxis_title="head",
            yaxis_title="layer")
    fig.update_yaxes(autorange="reversed")
    caption = ("<b>Each cell is one attention head of the dense model</b>, coloured by its "
               "pattern type (Kovaleva et al. 2019, by the rule in ticketlens/analysis/"
               "roles.py). Letters: the head attends mostly (≥ "
               f"{r.rules.mostly:g}) to the first token (F), [SEP] (S), punctuation (P), "
               "itself (=), the previous (&lt;) or next (&gt;) token; B broad (normalised "
               f"entropy ≥ {r.rules.broad:g}); I induction, p previous-token head (causal "
               f"models). ✕: dead in round {r.round}. Measured on {r.examples} dev inputs "
               f"(seed {r.seed}); hover for every number.")
    return Drawn(fig, caption)


@draws(HeadRolesResult, "survival")
def role_survival_drawn(r: HeadRolesResult) -> Drawn:
    """Per role: surviving heads with the role against the count expected by chance."""
    roles = [s for s in r.survival]
    names = [s.role for s in roles]
    fig = go.Figure([
        go.Bar(name="surviving heads with the role", x=names, y=[s.kept for s in roles],
               marker=dict(color="#1f77b4"),
               customdata=[[s.heads, s.total_kept, fmt.p_value(s.p_value),
                            fmt.p_value(s.p_adjusted)] for s in roles],
               hovertemplate="%{x}: %{y} of %{customdata[1]} surviving heads (%{customdata[0]}"
                             " in the dense model)<br>p %{customdata[2]}, Holm "
                             "%{customdata[3]}<extra></extra>"),
        go.Bar(name="expected by chance", x=names, y=[s.expected for s in roles],
               marker=dict(color="#bbbbbb", pattern=dict(shape="/")),
               hovertemplate="%{x}: %{y:.1f} expected<extra></extra>")])
    _finish(fig, "Survival by role", 360, barmode="group", yaxis_title="heads",
            xaxis_title="role (dense model)")
    caption = (f"<b>For each role, the heads that survive in round {r.round}</b> (alive in its "
               "mask) against the count expected if survival ignored roles (the "
               "hypergeometric mean: surviving heads × heads with the role / all heads). "
               "Hover for Fisher's exact p-value and its Holm adjustment over the roles.")
    return Drawn(fig, caption)


def findings_html(findings: Sequence[str]) -> str:
    return "<ul class='note'>" + "".join(f"<li>{_e(f)}</li>" for f in findings) + "</ul>"


def roles_html(run: Any, doc: Any, i: int) -> HeadRolesResult | None:
    """The run's stored head roles: findings, the grid, survival by role (nothing when the
    run holds none)."""
    r = stored_roles(run)
    if r is None:
        return None
    doc.add(f"<h4>Head roles</h4><p class='note'>Findings (α = {r.alpha:g}):</p>"
            + findings_html(r.findings()))
    doc.fig(roles_grid_drawn(r), f"roles-{i}")
    if r.survival and not bool(r.alive.all()):
        doc.fig(role_survival_drawn(r), f"roles-survival-{i}")
    elif r.survival:  # every head alive: each role's bars would equal its chance count
        doc.add(f"<p class='note'>Every head is alive in round {r.round} (an unstructured "
                "ticket keeps weights in every head), so survival by role equals chance by "
                "construction and is not drawn; the findings above compare the heads' kept "
                "fractions instead.</p>")
    return r


def roles_over_seeds_html(results: Sequence[HeadRolesResult], doc: Any) -> None:
    """Survival by role over the runs that hold roles, per task and model with two or more
    runs."""
    for task, model, s in roles_by_group(list(results)):
        _group_html(s, f"{task}, {model}", doc)


def _interval(d: Any, runs: int) -> str:
    """A difference's CI, or why there is none (undefined when every run gives the same)."""
    if d.low == d.low:
        return f"{fmt.pct(d.low)} to {fmt.pct(d.high)}"
    return "n/a: the same in every run" if runs > 1 else "n/a: one run"


def _group_html(s: RolesOverSeedsResult, label: str, doc: Any) -> None:
    rows = "".join(
        f"<tr><td>{_e(r.role)}</td><td>{r.runs}</td><td>{r.kept} of {r.heads}</td>"
        f"<td>{fmt.num(r.expected, '.1f')}</td><td>{fmt.p_value(r.p_value)} (Holm "
        f"{fmt.p_value(r.p_adjusted)})</td><td>{fmt.pct(r.rate.mean)}</td>"
        f"<td>{fmt.pct(r.chance.mean)}</td><td>{fmt.pct(r.difference.mean)} "
        f"({_interval(r.difference, r.runs)})</td>"
        f"<td>{_e(role_label(r.role, s.causal))}</td></tr>"
        for r in s.roles)
    doc.add(f"<section class='roles'><h2>Head roles over {len(s.results)} runs: {_e(label)}"
            "</h2>"
            + findings_html(s.findings())
            + "<table><tr><th>role</th><th>runs</th><th>surviving role heads</th>"
              "<th>expected by chance</th><th>p (pooled exact test)</th><th>share kept per "
              f"run</th><th>all heads kept</th><th>difference ({s.confidence:.0%} CI, cut to ±100%)</th>"
              "<th>meaning</th></tr>" + rows + "</table></section>")
