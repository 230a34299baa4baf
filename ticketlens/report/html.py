"""Assemble the report: one HTML file, plotly.js embedded once, no network request, fixed div
ids (two reports of the same runs are byte-identical), every run-supplied string escaped."""

from __future__ import annotations

import html
from typing import Any

from ticketlens import __version__
from ticketlens.analysis.overlap import overlap
from ticketlens.analysis.survival import sparsity_profile, survival
from ticketlens.report import figures as F

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222}
header{position:sticky;top:0;background:#1b2a41;color:#fff;padding:10px 24px;z-index:10}
header a{color:#cfe3ff;margin-right:16px;text-decoration:none;font-size:14px}
header b{margin-right:24px}
main{max-width:1200px;margin:0 auto;padding:12px 24px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}
.win{color:#1a7f37;font-weight:600}.lose{color:#b42318;font-weight:600}
details{margin:8px 0 24px}section{margin-bottom:32px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
"""


def e(x: Any) -> str:
    return html.escape(str(x), quote=True)


class _Doc:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0

    def fig(self, fig, name: str) -> None:
        self.n += 1
        self.parts.append(fig.to_html(full_html=False, include_plotlyjs=False,
                                      div_id=f"fig-{self.n:02d}-{name}",
                                      config={"displaylogo": False, "responsive": True}))

    def add(self, text: str) -> None:
        self.parts.append(text)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("–" if v is None else str(v))


def _summary_table(runs: list[Any]) -> str:
    rows = ["<table><tr><th>run</th><th>model</th><th>task</th><th>seed</th><th>sparsity</th>"
            "<th>metric</th><th>dense</th><th>ticket</th><th>random mask</th>"
            "<th>random re-init</th><th>verdict</th></tr>"]
    for r in runs:
        v = r.verdict or {}
        metric = r.metric
        ticket = r.ticket
        verdict = ("<span class='win'>winning</span>" if v.get("winning") else
                   "<span class='lose'>not winning</span>" if v else "–")
        rows.append(
            f"<tr><td>{e(r.path.name)}</td><td>{e(r.model_name)}</td><td>{e(r.task)}</td>"
            f"<td>{e(r.seed)}</td><td>{ticket.sparsity:.1%}</td><td>{e(metric)}</td>"
            f"<td>{_fmt(r.rounds[0].metrics.get(metric))}</td>"
            f"<td>{_fmt(ticket.metrics.get(metric))}</td>"
            f"<td>{_fmt(r.control_metric('random_mask'))}</td>"
            f"<td>{_fmt(r.control_metric('random_reinit'))}</td>"
            f"<td>{verdict}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}{k}.")
        return out
    return [(prefix.rstrip("."), d)]


def _settings(run: Any) -> str:
    m = run.manifest
    items = [("path", run.path), ("model", run.model_name),
             ("family", m.get("model", {}).get("family")), ("task", run.task),
             ("seed", run.seed), ("status", m.get("status")),
             ("rewind", (m.get("rewind") or {}).get("mode"))]
    items += _flatten(m.get("config", {}), "config.")
    items += _flatten(m.get("versions", {}), "versions.")
    if "import" in m:
        items += _flatten(m["import"], "import.")
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in items)
    v = run.verdict
    verdict = f"<p>{'<span class=win>Winning ticket</span>' if v and v['winning'] else ''}" \
              f"{'<span class=lose>No winning ticket</span>' if v and not v['winning'] else ''}" \
              f"{': ' + e(v['reason']) if v else 'No verdict (no training in this run).'}</p>"
    return verdict + f"<details><summary>settings</summary><table>{rows}</table></details>"


def _attribution(run: Any) -> dict | None:
    """Attribution results stored by `ticketlens attribute --save`, if any."""
    import json

    path = run.paths.attribution
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _groups(runs: list[Any]) -> list[list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for r in runs:
        key = tuple(sorted(r.anatomy.shapes.items()))
        groups.setdefault(key, []).append(r)
    return [g for g in groups.values() if len(g) >= 2]


def build_report(runs: list[Any]) -> str:
    doc = _Doc()
    doc.add("<section id='summary'><h2>Summary</h2>" + _summary_table(runs) + "</section>")
    trained = [r for r in runs if any(x.metrics for x in r.rounds)]
    if trained:
        doc.add("<section id='accuracy'><h2>Accuracy vs sparsity</h2>")
        doc.fig(F.accuracy_vs_sparsity(trained), "accuracy")
        doc.add("</section>")
    groups = _groups(runs)
    if groups:
        doc.add("<section id='overlap'><h2>Overlap across runs</h2>")
    for gi, group in enumerate(groups):
        results = {by: overlap(group, by=by) for by in ("weight", "head", "neuron")
                   if by == "weight" or group[0].anatomy.num_heads}
        doc.fig(F.overlap_matrix_figure(results["weight"], "Weight overlap (Jaccard; hover: "
                                        "chance and p-value)"), f"overlap-{gi}")
        doc.fig(F.per_layer_overlap_figure(results, "Per-layer overlap vs chance"),
                f"overlap-layers-{gi}")
        rows = "".join(
            f"<tr><td>{e(by)}</td><td>{o.fleiss_kappa:.3f}</td><td>{o.fleiss_kappa_chance:.3f}"
            f"</td><td>{o.super_survivors_observed:,}</td><td>{o.super_survivors_expected:,.1f}"
            f"</td></tr>" for by, o in results.items())
        doc.add("<table><tr><th>by</th><th>Fleiss' κ</th><th>κ if independent</th>"
                "<th>super-survivors</th><th>expected by chance</th></tr>" + rows + "</table>")
    if groups:
        doc.add("</section>")
    doc.add("<section id='runs'><h2>Runs</h2>")
    for i, r in enumerate(runs):
        label = e(f"{r.path.name}: {r.model_name} on {r.task}, seed {r.seed}")
        doc.add(f"<h3 id='run-{i}'>{label}</h3>" + _settings(r))
        s = survival(r)
        doc.add("<div class='grid'><div>")
        doc.fig(F.head_survival_figure(s, "Heads: kept fraction (× dead)"), f"heads-{i}")
        doc.add("</div><div>")
        doc.fig(F.neuron_survival_figure(s, "FFN neurons: kept fraction per layer"),
                f"neurons-{i}")
        doc.add("</div></div>")
        doc.fig(F.sparsity_profile_figure(sparsity_profile(r), "Sparsity per layer and "
                                          "weight type across rounds"), f"profile-{i}")
        attr = _attribution(r)
        if attr:
            doc.add(f"<p>Attribution: mean Spearman dense vs ticket {attr['mean_spearman']:.3f}"
                    f", top-{attr['k']} agreement {attr['mean_topk_agreement']:.3f}"
                    + (f"; share on the deciding tokens: dense "
                       f"{attr['ground_truth']['dense']:.1%}, ticket "
                       f"{attr['ground_truth']['ticket']:.1%} (chance "
                       f"{attr['ground_truth']['chance']:.1%})" if attr.get("ground_truth")
                       else "") + "</p>")
            doc.fig(F.attribution_tokens_figure(attr, "Token attribution, dense vs ticket"),
                    f"attribution-{i}")
            if attr.get("units"):
                doc.fig(F.importance_vs_kept_figure(attr, "Unit importance (dense) vs kept "
                                                    "fraction (ticket)"), f"importance-{i}")
    doc.add("</section>")
    return _page(doc, runs)


def _page(doc: _Doc, runs: list[Any]) -> str:
    from plotly.offline import get_plotlyjs

    nav = ("<a href='#summary'>Summary</a><a href='#accuracy'>Accuracy vs sparsity</a>"
           "<a href='#overlap'>Overlap</a><a href='#runs'>Runs</a>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>ticketlens report ({len(runs)} runs)</title><style>{CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<header><b>ticketlens report</b>{nav}</header><main>"
            f"<p>{len(runs)} run(s); ticketlens {e(__version__)}.</p>"
            + "".join(doc.parts) + "</main></body></html>\n")
