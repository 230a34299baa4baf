"""Assemble the report: one HTML file, plotly.js embedded once, no network request, fixed div
ids (two reports of the same runs are byte-identical), every run-supplied string escaped, every
number written by :mod:`ticketlens.report.fmt`."""

from __future__ import annotations

import html
import math
import re
from typing import Any

from ticketlens.analysis.overlap import overlap
from ticketlens.analysis.results import stored_attribution
from ticketlens.analysis.survival import sparsity_profile, survival
from ticketlens.core.record import control_label
from ticketlens.core.version import __version__
from ticketlens.report import figures as F
from ticketlens.report import fmt
from ticketlens.report.circuit import circuit_html
from ticketlens.report.compress import compress_html
from ticketlens.report.draw import Drawn
from ticketlens.report.methods import methods_html
from ticketlens.report.page import figure_html, page
from ticketlens.report.roles import roles_html, roles_over_seeds_html
from ticketlens.report.runs import RunView, architecture_groups, has_heads, run_view
from ticketlens.report.stability import stability_html
from ticketlens.report.structured import structured_html
from ticketlens.report.sweep import curves_drawn, seed_arms_drawn


def e(x: Any) -> str:
    return html.escape(fmt.text(x), quote=True)


class _Doc:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0

    def fig(self, drawn: Drawn, name: str) -> None:
        """A figure with its caption (every figure of the report has one)."""
        self.n += 1
        self.parts.append(figure_html(drawn.figure, f"fig-{self.n:02d}-{name}", drawn.caption))

    def add(self, text: str) -> None:
        self.parts.append(text)


VERDICT_CLASS = {"winning": "win", "not winning": "lose"}

INTRO = """<section id='intro' class='intro'><h2>What this report shows</h2>
<p>A <b>lottery ticket</b> is a sparse subnetwork of a trained model that, trained again
from (nearly) the start, matches the full model. ticketlens finds one by <b>iterative
magnitude pruning (IMP)</b>: train the dense model, remove the smallest weights, <b>rewind</b>
the remaining weights to their values early in training (the rewind point) and retrain;
repeat until the target sparsity. The <b>ticket</b> is the sparsest round that stays within a
tolerance of the dense model.</p>
<p>A ticket only means something beside <b>controls</b>: subnetworks of the same size trained
the same way. The <i>random mask</i> keeps as many weights per matrix as the ticket, at
random positions; the <i>random reinit</i> keeps the ticket's mask but starts from fresh
random weights. The <b>verdict</b> of a run is <i>winning</i> when the ticket is within the
tolerance of dense and beats every control by more than a margin, <i>not winning</i> when it
does not, and <i>inconclusive</i> when the run cannot tell (for example the dense model did
not learn the task). One seed cannot separate a ticket from seed-to-seed noise; over several
seeds the verdict is statistical: the ticket matches dense when the 90% interval of ticket −
dense lies within ± the tolerance (two one-sided tests), and beats a control when a one-sided
paired t-test across the seeds shows it ahead by more than the margin. A sweep verdict is
<i>not winning</i> only on evidence; otherwise it is <i>inconclusive</i> and says how many
seeds would decide it.</p>
<p>Sections: <b>Summary</b> (one row per run), <b>Accuracy vs sparsity</b> (every run's IMP
curve and controls), <b>Over seeds</b> (means, intervals and tests when a task has two or more
seeds), <b>Overlap</b> (do the tickets keep the same weights?) and <b>Runs</b> (what each
ticket kept: heads, neurons, layers, and which words it relies on). Every figure has a
caption saying how to read it; hover a point for its exact values. A longer guide is
<code>docs/reading.md</code> in the ticketlens repository.</p></section>"""


def _verdict(v: RunView) -> str:
    if v.verdict is None:
        return fmt.NA
    return f"<span class='{VERDICT_CLASS.get(v.verdict, 'unsure')}'>{e(v.verdict)}</span>"


def _summary_table(views: list[RunView]) -> str:
    controls = list(dict.fromkeys((c.name, c.label) for v in views for c in v.controls))
    rows = ["<table><tr><th>run</th><th>model</th><th>task</th><th>seed</th>"
            "<th>ticket sparsity</th><th>metric</th><th>dense</th><th>ticket</th>"
            + "".join(f"<th>{e(label)} control</th>" for _, label in controls)
            + "<th>verdict</th></tr>"]
    for i, v in enumerate(views):
        rows.append(
            f"<tr><td><a href='#run-{i}'>{e(v.name)}</a></td><td>{e(v.model)}</td>"
            f"<td>{e(v.task)}</td><td>{e(v.seed)}</td><td>{fmt.pct(v.ticket.sparsity)}</td>"
            f"<td>{e(v.metric)}</td><td>{fmt.num(v.dense, '.4f')}</td>"
            f"<td>{fmt.num(v.ticket.value, '.4f')}</td>"
            + "".join(f"<td>{fmt.num(v.control(name), '.4f')}</td>" for name, _ in controls)
            + f"<td>{_verdict(v)}</td></tr>")
    rows.append("</table>")
    return ("".join(rows) + "<p class='note'>One row per run. <i>Ticket sparsity</i>: the "
            "share of prunable weights the ticket removes. <i>Dense</i>, <i>ticket</i> and "
            "each control: the metric on the dev set (one run, one seed: no interval). The "
            "verdict's reason is under the run's name in <a href='#runs'>Runs</a>.</p>")


def _setting_name(key: str) -> str:
    """``config.prune.target_sparsity`` -> ``prune · target sparsity``."""
    parts = key.split(".")
    if parts[0] == "config" and len(parts) > 1:
        parts = parts[1:]
    return " · ".join(p.replace("_", " ") for p in parts)


def _settings(v: RunView) -> str:
    rows = "".join(f"<tr><th>{e(_setting_name(k))}</th><td>{e(x)}</td></tr>"
                   for k, x in v.settings)
    verdict = {"winning": "<span class=win>Winning ticket</span>",
               "not winning": "<span class=lose>No winning ticket</span>"}
    if v.verdict is None:
        line = "No verdict (no training in this run)."
    else:
        line = (verdict.get(v.verdict, f"<span class=unsure>{e(v.verdict.capitalize())}"
                                       "</span>")
                + (f": {e(fmt.prose(v.reason))}" if v.reason else ""))
    return f"<p>{line}</p><details><summary>settings</summary><table>{rows}</table></details>"


def _overlap_table(results: dict[str, Any], n: int) -> str:
    rows = "".join(
        f"<tr><td>{e(by)}s</td><td>{fmt.num(o.fleiss_kappa)}</td>"
        f"<td>{fmt.num(o.fleiss_kappa_chance)}</td><td>{fmt.num(o.super_survivors_observed, ',')}"
        f"</td><td>{fmt.num(o.super_survivors_expected, ',.1f')}</td><td>{o.total:,}</td></tr>"
        for by, o in results.items())
    return ("<table><tr><th>level</th><th>Fleiss' κ</th><th>κ if independent</th>"
            "<th>kept by every run</th><th>expected by chance</th><th>units</th></tr>"
            + rows + "</table><p class='note'>Over the " + str(n) + " runs. <i>Fleiss' κ</i>: "
            "how much the runs agree on which units to keep, beyond what their kept shares "
            "alone give (1: identical masks; near the independent value: no more than "
            "chance); n/a where it is undefined (every run keeps every unit of that level, "
            "so there is nothing to agree on). <i>Kept by every run</i>: units kept in all "
            "the tickets, against the number expected if the masks were independent.</p>")


def _attribution_line(attr: Any) -> str:
    gt = attr.evidence_means()
    return (f"<p>Token attribution over {len(attr.items)} dev texts: mean Spearman "
            f"correlation of the dense and ticket attributions {fmt.num(attr.mean_spearman)} "
            f"(1: same ranking of the words); share of the top-{e(attr.k)} words in common "
            f"{fmt.pct(attr.mean_topk_agreement)}"
            + (f"; share of |attribution| on the words that decide the label: dense "
               f"{fmt.pct(gt['dense'])}, ticket {fmt.pct(gt['ticket'])} (their share of the "
               f"words: {fmt.pct(gt['chance'])})" if gt else "")
            + ".</p>")


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


def _estimate(metric: str, x: Any) -> str:
    """``mean (low to high)``: the interval clipped to the metric's range, marked † if cut."""
    if x.n < 2 or math.isnan(x.half_width):
        return fmt.num(x.mean, ".4f")
    low, high, cut = fmt.clip_interval(metric, x.low, x.high)
    return (f"{fmt.num(x.mean, '.4f')}<br><small>{fmt.num(low, '.4f')} to "
            f"{fmt.num(high, '.4f')}{'†' if cut else ''}</small>")


def _test_text(t: Any) -> str:
    """A paired test in words: its result, the statistic when defined, p and n."""
    said = "beaten" if t.beats else "not beaten"
    if t.n < 2:
        return f"{said}; no test with {t.n} seed"
    if not math.isfinite(t.statistic):
        return (f"{said}; no t-test: the {t.n} paired differences are all equal "
                f"({fmt.num(t.mean_difference, '+.4f')})")
    return (f"{said}; t = {fmt.num(t.statistic, '.2f')}, p = {fmt.p_value(t.p_value)}, "
            f"n = {t.n}")


def sweep_reason(g: Any) -> str:
    """The sweep verdict's reason in one line (``GroupStats.headline``: what decided it),
    then every number it rests on (``GroupStats.reason``), in the analysis layer's words with
    control names as users read them and commands set as code."""
    def words(x: str) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", e(fmt.prose(x)))

    if not g.headline:
        return words(g.reason) + "</p>"
    return (f"{words(g.headline)}</p><details><summary>all the numbers</summary>"
            f"{words(g.reason)}</details>")


def _seed_table(stats: Any) -> str:
    names = sorted({c for g in stats.groups for c in g.controls})
    ci = f"{stats.confidence:.0%}"
    head = "".join(f"<th>{e(control_label(c))} control</th>" for c in names)
    settings = any(g.settings for g in stats.groups)
    rows = []
    for g in stats.groups:
        tests = {t.control: t for t in g.tests}
        cells = "".join(
            f"<td>{_estimate(g.metric, g.controls[c])}"
            + (f"<br><small>{e(_test_text(tests[c]))}</small>" if c in tests else "")
            + "</td>" if c in g.controls else "<td>n/a (not run)</td>" for c in names)
        rows.append(f"<tr><td>{e(g.task)}</td>"
                    + (f"<td>{e(g.settings)}</td>" if settings else "")
                    + f"<td>{len(g.seeds)}</td><td>{fmt.pct(g.sparsity.mean)}</td>"
                    f"<td>{_estimate(g.metric, g.dense)}</td>"
                    f"<td>{_estimate(g.metric, g.ticket)}</td>{cells}"
                    f"<td><span class='{VERDICT_CLASS.get(g.verdict, 'unsure')}'>"
                    f"{e(g.verdict)}</span></td>"
                    f"<td>{fmt.num(g.seed_kappa)} ({fmt.num(g.seed_kappa_chance)})</td></tr>")
    alpha = fmt.num(stats.alpha, "g")
    table = (f"<table><tr><th>task</th>{'<th>settings</th>' if settings else ''}<th>seeds</th>"
             f"<th>ticket sparsity (mean)</th><th>dense</th><th>ticket</th>{head}"
             f"<th>verdict</th><th>seed agreement: Fleiss' κ (if independent)</th></tr>"
             f"{''.join(rows)}</table>")
    note = (f"<p class='note'>Each metric cell: the mean over the seeds, below it the {ci} "
            "confidence interval (Student's t with n − 1 degrees of freedom, n = the seeds); "
            "† marks an interval clipped to the metric's range. Under each control: whether "
            "the ticket beats it by more than the margin in a one-sided paired t-test across "
            f"the seeds (ticket − control − margin &gt; 0, at α = {alpha}), with t, its "
            "p-value and n. Seed agreement: Fleiss' κ of the tickets of the task's seeds "
            "(1: the same weights kept on every seed), beside its value for independent "
            "masks.</p>")
    reasons = "".join(f"<p class='verdict-why'><b>{e(g.task)}</b>"
                      f"{(' ' + e(g.settings)) if g.settings else ''}: <b>{e(g.verdict)}</b>: "
                      f"{sweep_reason(g)}" for g in stats.groups)
    cross = "".join(
        f"<p>Across tasks ({e(c.model)}): mean Jaccard of the kept weights of two tickets of "
        f"different tasks with the seed held fixed {fmt.num(c.same_seed_jaccard)} (chance "
        f"{fmt.num(c.same_seed_chance)}, {c.same_seed_pairs} pairs); with different seeds "
        f"{fmt.num(c.cross_seed_jaccard)} (chance {fmt.num(c.cross_seed_chance)}, "
        f"{c.cross_seed_pairs} pairs). Overlap of tasks measured across seeds mixes the task "
        "with the seed; the seed-fixed pairs isolate the task.</p>" for c in stats.cross_task)
    return table + note + f"<h4>Why each verdict</h4>{reasons}" + cross


def build_report(runs: list[Any], exports: Any = None) -> str:
    """``exports``: :func:`ticketlens.report.structured.read_exports` of ``report --export``."""
    views = [run_view(r) for r in runs]
    doc = _Doc()
    doc.add(INTRO)
    doc.add("<section id='summary'><h2>Summary</h2>" + _summary_table(views) + "</section>")
    trained = [v for v in views if v.trained]
    if trained:
        doc.add("<section id='accuracy'><h2>Accuracy vs sparsity</h2>")
        doc.fig(F.accuracy_drawn(trained), "accuracy")
        doc.add("</section>")
    groups = [sorted(g, key=lambda r: (r.task, r.seed is None, r.seed, r.name))
              for g in architecture_groups(runs)]
    stats = _seed_statistics(runs)
    if stats is not None:
        doc.add("<section id='seeds'><h2>Over seeds</h2>")
        doc.fig(seed_arms_drawn(stats), "seeds")
        doc.add(_seed_table(stats))
        doc.fig(curves_drawn(stats), "seeds-curves")
        from ticketlens.report.sweep import overlap_matrix_drawn

        for i, m in enumerate(stats.matrices):
            # the same runs' matrix is drawn in the Overlap section (with p-values): once
            if _same_runs(m, groups):
                continue
            doc.fig(overlap_matrix_drawn(m), f"seeds-overlap-{i}")
        doc.add("</section>")
    if groups:
        doc.add("<section id='overlap'><h2>Overlap across runs</h2>")
    for gi, group in enumerate(groups):
        results = {by: overlap(group, by=by) for by in ("weight", "head", "neuron")
                   if by == "weight" or has_heads(group[0])}
        doc.fig(F.overlap_matrix_drawn(results["weight"]), f"overlap-{gi}")
        doc.fig(F.per_layer_overlap_drawn(results), f"overlap-layers-{gi}")
        doc.add(_overlap_table(results, len(group)))
    if groups:
        doc.add("</section>")
    doc.add("<section id='runs'><h2>Runs</h2>")
    roles: list[Any] = []  # head roles stored in the runs (ticketlens roles --save)
    for i, (r, v) in enumerate(zip(runs, views)):
        label = e(f"{v.name}: {v.model} on {v.task}, seed {fmt.text(v.seed)}")
        doc.add(f"<h3 id='run-{i}'>{label}</h3>" + _settings(v))
        s = survival(r)
        doc.add("<div class='grid'><div>")
        doc.fig(F.head_survival_drawn(s), f"heads-{i}")
        doc.add("</div><div>")
        doc.fig(F.neuron_survival_drawn(s), f"neurons-{i}")
        doc.add("</div></div>")
        structured_html(r, s, doc, i, exports)
        doc.fig(F.sparsity_profile_drawn(sparsity_profile(r)), f"profile-{i}")
        attr = stored_attribution(r)
        if attr and attr.items:
            doc.add(_attribution_line(attr))
            doc.fig(F.attribution_tokens_drawn(attr), f"attribution-{i}")
            if attr.units:
                doc.fig(F.importance_vs_kept_drawn(attr), f"importance-{i}")
        compress_html(r, doc, i)
        stability_html(r, doc, i)
        circuit_html(r, doc, i)
        methods_html(r, doc)
        if (held := roles_html(r, doc, i)) is not None:
            roles.append(held)
    doc.add("</section>")
    roles_over_seeds_html(roles, doc)
    nav = ("<b>ticketlens report</b><a href='#intro'>About</a><a href='#summary'>Summary</a>"
           "<a href='#accuracy'>Accuracy vs sparsity</a><a href='#seeds'>Over seeds</a>"
           "<a href='#overlap'>Overlap</a><a href='#runs'>Runs</a>")
    body = (f"<p>{len(runs)} run(s); ticketlens {e(__version__)}.</p>" + "".join(doc.parts))
    return page(f"ticketlens report ({len(runs)} runs)", nav, body)


def _same_runs(m: Any, groups: list[list[Any]]) -> bool:
    """Whether the seed x task matrix ``m`` compares the same runs as an overlap group."""
    keys = sorted(zip(m.tasks, m.seeds, strict=True), key=repr)
    return any(sorted(((r.task, r.seed) for r in g), key=repr) == keys for g in groups)
