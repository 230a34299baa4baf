"""The report's one-shot methods part (``find --compare-methods``): each method's metric before
and after retraining beside the ticket, and how much of the ticket it keeps at weight, head and
neuron level against chance. No maths here: ``analysis.overlap.methods_overlap`` computes the
overlaps (``a_kept_by_b`` with its chance level), the run record holds the metrics."""

from __future__ import annotations

import html
from typing import Any

from ticketlens.analysis.overlap import ONESHOT_ARMS, methods_overlap
from ticketlens.core.record import control_label
from ticketlens.report import fmt

__all__ = ["methods_html", "methods_table"]

LEVELS = ("weight", "head", "neuron")


def methods_table(run: Any) -> str | None:
    """The table, or ``None`` when the run trained no one-shot method beside its ticket."""
    arms = [a for a in ONESHOT_ARMS if a in run.controls and run.controls[a].mask]
    if not arms:
        return None
    metric = run.metric
    kept = {by: {p.b: p for p in methods_overlap(run, by=by).pairs if p.a == "ticket"}
            for by in LEVELS}
    e = html.escape
    head = ("<tr><th>arm</th><th>before retraining</th><th>after retraining</th>"
            + "".join(f"<th>of the ticket kept, by {by} (chance)</th>" for by in LEVELS)
            + "</tr>")
    rows = [f"<tr><td>IMP ticket</td><td></td><td>{fmt.num(run.ticket.metrics.get(metric))}"
            "</td>" + "<td></td>" * len(LEVELS) + "</tr>"]
    for a in arms:
        rec = run.controls[a]
        before = (rec.extra.get("oneshot") or {}).get("metrics", {}).get(metric)
        label = control_label(a)
        cells = []
        for by in LEVELS:
            p = kept[by].get(label)
            cells.append("<td></td>" if p is None else
                         f"<td>{fmt.pct(p.a_kept_by_b)} ({fmt.pct(p.a_kept_by_b_chance)})</td>")
        rows.append(f"<tr><td>{e(label)}</td><td>{fmt.num(before)}</td>"
                    f"<td>{fmt.num(rec.metric(metric))}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def methods_html(run: Any, doc: Any) -> None:
    """Add the one-shot methods table of a run (nothing without ``--compare-methods``)."""
    table = methods_table(run)
    if table is not None:
        doc.add(f"<h4>One-shot methods beside the ticket ({html.escape(run.metric)})</h4>"
                + table)
