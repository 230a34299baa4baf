"""Assemble the report: one HTML file, plotly.js embedded once, no network request, fixed div
ids (two reports of the same runs are byte-identical), every run-supplied string escaped, every
number written by :mod:`ticketlens.report.fmt`."""

from __future__ import annotations

import html
from typing import Any

from ticketlens.analysis.overlap import overlap
from ticketlens.analysis.results import stored_attribution
from ticketlens.analysis.survival import sparsity_profile, survival
from ticketlens.core.version import __version__
from ticketlens.report import figures as F
from ticketlens.report import fmt
from ticketlens.report.compress import compress_html
from ticketlens.report.methods import methods_html
from ticketlens.report.page import figure_html, page
from ticketlens.report.runs import RunView, architecture_groups, has_heads, run_view
from ticketlens.report.structured import structured_html


def e(x: Any) -> str:
    return html.escape(fmt.text(x), quote=True)


class _Doc:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0

    def fig(self, fig, name: str) -> None:
        self.n += 1
        self.parts.append(figure_html(fig, f"fig-{self.n:02d}-{name}"))

    def add(self, text: str) -> None:
        self.parts.append(text)


VERDICT_CLASS = {"winning": "win", "not winning": "lose"}


def _verdict(v: RunView) -> str:
    if v.verdict is None:
        return fmt.NA
    return f"<span class='{VERDICT_CLASS.get(v.verdict, 'unsure')}'>{e(v.verdict)}</span>"


def _summary_table(views: list[RunView]) -> str:
    controls = list(dict.fromkeys((c.name, c.label) for v in views for c in v.controls))
    rows = ["<table><tr><th>run</th><th>model</th><th>task</th><th>seed</th><th>sparsity</th>"
            "<th>metric</th><th>dense</th><th>ticket</th>"
            + "".join(f"<th>{e(label)}</th>" for _, label in controls)
            + "<th>verdict</th></tr>"]
    for v in views:
        rows.append(
            f"<tr><td>{e(v.name)}</td><td>{e(v.model)}</td><td>{e(v.task)}</td>"
            f"<td>{e(v.seed)}</td><td>{fmt.pct(v.ticket.sparsity)}</td><td>{e(v.metric)}</td>"
            f"<td>{fmt.num(v.dense, '.4f')}</td><td>{fmt.num(v.ticket.value, '.4f')}</td>"
            + "".join(f"<td>{fmt.num(v.control(name), '.4f')}</td>" for name, _ in controls)
            + f"<td>{_verdict(v)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _settings(v: RunView) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(x)}</td></tr>" for k, x in v.settings)
    verdict = {"winning": "<span class=win>Winning ticket</span>",
               "not winning": "<span class=lose>No winning ticket</span>"}
    if v.verdict is None:
        line = "No verdict (no training in this run)."
    else:
        line = (verdict.get(v.verdict, f"<span class=unsure>{e(v.verdict.capitalize())}"
                                       "</span>")
                + (f": {e(v.reason)}" if v.reason else ""))
    return f"<p>{line}</p><details><summary>settings</summary><table>{rows}</table></details>"


def _overlap_table(results: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{e(by)}</td><td>{fmt.num(o.fleiss_kappa)}</td>"
        f"<td>{fmt.num(o.fleiss_kappa_chance)}</td><td>{fmt.num(o.super_survivors_observed, ',')}"
        f"</td><td>{fmt.num(o.super_survivors_expected, ',.1f')}</td></tr>"
        for by, o in results.items())
    return ("<table><tr><th>by</th><th>Fleiss' κ</th><th>κ if independent</th>"
            "<th>super-survivors</th><th>expected by chance</th></tr>" + rows + "</table>")


def _attribution_line(attr: Any) -> str:
    gt = attr.evidence_means()
    return (f"<p>Attribution: mean Spearman dense vs ticket {fmt.num(attr.mean_spearman)}"
            f", top-{e(attr.k)} agreement {fmt.num(attr.mean_topk_agreement)}"
            + (f"; share on the deciding tokens: dense {fmt.pct(gt['dense'])}, ticket "
               f"{fmt.pct(gt['ticket'])} (chance {fmt.pct(gt['chance'])})" if gt else "")
            + "</p>")


def _seed_statistics(runs: list[Any]) -> Any:
    """Statistics over seeds when some task has two or more seeds of complete runs."""
    from ticketlens.analysis.sweep import sweep_stats

    done = [r for r in runs if r.complete and r.rounds and r.rounds[0].metrics]
    seeds: dict[Any, set] = {}
    for r in done:
        seeds.setdefault((r.task, r.model_name), set()).add(r.seed)
    if not any(len(s) >= 2 for s in seeds.values()):
        return None
    return sweep_stats(done)


def _seed_table(stats: Any) -> str:
    def est(x: Any) -> str:
        return fmt.num(x.mean, ".4f") + ("" if x.n < 2 else
                                         f" ± {fmt.num(x.half_width, '.4f')}")

    names = sorted({c for g in stats.groups for c in g.controls})
    head = "".join(f"<th>{e(c.replace('_', ' '))}</th>" for c in names)
    rows = []
    for g in stats.groups:
        tests = {t.control: t for t in g.tests}
        cells = "".join(
            f"<td>{est(g.controls[c])}" + (f"<br><small>p {fmt.p_value(tests[c].p_value)}"
                                           "</small>" if c in tests else "") + "</td>"
            if c in g.controls else "<td>n/a</td>" for c in names)
        rows.append(f"<tr><td>{e(g.task)}</td><td>{e(g.settings)}</td><td>{len(g.seeds)}</td>"
                    f"<td>{fmt.pct(g.sparsity.mean)}</td><td>{est(g.dense)}</td>"
                    f"<td>{est(g.ticket)}</td>{cells}<td>{e(g.verdict)}</td>"
                    f"<td>{fmt.num(g.seed_kappa)} ({fmt.num(g.seed_kappa_chance)})</td></tr>")
    cross = "".join(
        f"<p>Across tasks: mean Jaccard with the seed held fixed {fmt.num(c.same_seed_jaccard)}"
        f" (chance {fmt.num(c.same_seed_chance)}, {c.same_seed_pairs} pairs); across seeds "
        f"{fmt.num(c.cross_seed_jaccard)} (chance {fmt.num(c.cross_seed_chance)}, "
        f"{c.cross_seed_pairs} pairs).</p>" for c in stats.cross_task)
    why = "".join(f"<p class='verdict-why'><b>{e(g.task)}</b> {e(g.settings)}: "
                  f"<b>{e(g.verdict)}</b>: {e(g.headline or g.reason)}</p>"
                  for g in stats.groups)
    reasons = "".join(f"<li><b>{e(g.task)}</b> {e(g.settings)}: {e(g.reason)}</li>"
                      for g in stats.groups)
    return (f"<table><tr><th>task</th><th>settings</th><th>seeds</th><th>sparsity</th>"
            f"<th>dense</th><th>ticket</th>{head}<th>verdict</th><th>seed κ (chance)</th>"
            f"</tr>{''.join(rows)}</table>{why}{cross}<details><summary>every test"
            f"</summary><ul>{reasons}</ul></details>")


def build_report(runs: list[Any], exports: Any = None) -> str:
    """``exports``: :func:`ticketlens.report.structured.read_exports` of ``report --export``."""
    views = [run_view(r) for r in runs]
    doc = _Doc()
    doc.add("<section id='summary'><h2>Summary</h2>" + _summary_table(views) + "</section>")
    trained = [v for v in views if v.trained]
    if trained:
        doc.add("<section id='accuracy'><h2>Accuracy vs sparsity</h2>")
        doc.fig(F.accuracy_vs_sparsity(trained), "accuracy")
        doc.add("</section>")
    stats = _seed_statistics(runs)
    if stats is not None:
        doc.add("<section id='seeds'><h2>Over seeds</h2>")
        doc.fig(F.seed_statistics_figure(stats, f"Mean over seeds with {stats.confidence:.0%} "
                                         "intervals"), "seeds")
        from ticketlens.report.sweep import sweep_figures

        for fig, name in sweep_figures(stats):  # rounds with bands, seed x task overlap
            doc.fig(fig, name)
        doc.add(_seed_table(stats) + "</section>")
    groups = architecture_groups(runs)
    if groups:
        doc.add("<section id='overlap'><h2>Overlap across runs</h2>")
    for gi, group in enumerate(groups):
        results = {by: overlap(group, by=by) for by in ("weight", "head", "neuron")
                   if by == "weight" or has_heads(group[0])}
        doc.fig(F.overlap_matrix_figure(results["weight"], "Weight overlap (Jaccard; hover: "
                                        "chance and p-value)"), f"overlap-{gi}")
        doc.fig(F.per_layer_overlap_figure(results, "Per-layer overlap vs chance"),
                f"overlap-layers-{gi}")
        doc.add(_overlap_table(results))
    if groups:
        doc.add("</section>")
    doc.add("<section id='runs'><h2>Runs</h2>")
    for i, (r, v) in enumerate(zip(runs, views)):
        label = e(f"{v.name}: {v.model} on {v.task}, seed {fmt.text(v.seed)}")
        doc.add(f"<h3 id='run-{i}'>{label}</h3>" + _settings(v))
        s = survival(r)
        doc.add("<div class='grid'><div>")
        doc.fig(F.head_survival_figure(s, "Heads: alive, blind, constant, dead (cells: kept "
                                       "fraction)"), f"heads-{i}")
        doc.add("</div><div>")
        doc.fig(F.neuron_survival_figure(s, "FFN neurons: kept fraction per layer"),
                f"neurons-{i}")
        doc.add("</div></div>")
        structured_html(r, s, doc, i, exports)
        doc.fig(F.sparsity_profile_figure(sparsity_profile(r), "Sparsity per layer and "
                                          "weight type across rounds"), f"profile-{i}")
        attr = stored_attribution(r)
        if attr and attr.items:
            doc.add(_attribution_line(attr))
            doc.fig(F.attribution_tokens_figure(attr, "Token attribution, dense vs ticket"),
                    f"attribution-{i}")
            if attr.units:
                doc.fig(F.importance_vs_kept_figure(attr, "Unit importance (dense) vs kept "
                                                    "fraction (ticket)"), f"importance-{i}")
        compress_html(r, doc, i)
        methods_html(r, doc)
    doc.add("</section>")
    nav = ("<b>ticketlens report</b><a href='#summary'>Summary</a>"
           "<a href='#accuracy'>Accuracy vs sparsity</a><a href='#seeds'>Over seeds</a>"
           "<a href='#overlap'>Overlap</a>"
           "<a href='#runs'>Runs</a>")
    body = f"<p>{len(runs)} run(s); ticketlens {e(__version__)}.</p>" + "".join(doc.parts)
    return page(f"ticketlens report ({len(runs)} runs)", nav, body)
