"""The report's circuit part: the ticket's removed units ablated in the dense model beside the
same numbers chosen by attribution, at random and least important, and the agreement of the
ticket's units with attribution, from a run's ``analysis/circuit.json``
(:class:`~ticketlens.analysis.circuit.CircuitResult`, written by ``circuit --save``). No
maths here: every number was computed (and tested) by ``analysis.circuit``."""

from __future__ import annotations

import html
from typing import Any

from ticketlens.analysis.circuit import CircuitResult, read_circuit
from ticketlens.report import fmt

__all__ = ["circuit_html", "circuit_tables"]


def circuit_tables(res: CircuitResult) -> str:
    e = lambda x: html.escape(fmt.text(x), quote=True)  # noqa: E731
    rows = []
    for r in res.rows:
        sd = f" (sd {fmt.num(r.metric_sd, '.4f')})" if r.metric_sd is not None else ""
        draws = f" ({r.draws} draws)" if r.draws > 1 else ""
        rows.append(f"<tr><td>{e(r.label)}{draws}</td><td>{r.heads_removed}</td>"
                    f"<td>{r.neurons_removed}</td><td>{fmt.num(r.metric, '.4f')}{sd}</td>"
                    f"<td>{fmt.num(r.faithfulness, '.3f')}</td>"
                    f"<td>{fmt.num(r.normalised, '.3f')}</td></tr>")
    ablation = (f"<table><tr><th>units kept by</th><th>heads off</th><th>neurons off</th>"
                f"<th>{e(res.metric)} (mean and sd over the draws for random)</th><th>faithfulness</th><th>normalised</th></tr>"
                f"{''.join(rows)}</table>")
    agree = "".join(
        f"<tr><td>{e(a.kind)}s</td><td>{e(a.scorer)}</td><td>{a.kept} / {a.units}</td>"
        f"<td>{a.shared}</td><td>{fmt.num(a.expected, '.1f')}</td>"
        f"<td>{fmt.p_value(a.p_value)}</td><td>{fmt.num(a.spearman, '+.3f')} "
        f"(p {fmt.p_value(a.spearman_p)})</td></tr>" for a in res.agreement)
    agreement = ("<table><tr><th>units</th><th>attribution</th><th>kept</th>"
                 "<th>shared with top</th><th>chance</th><th>p</th>"
                 f"<th>Spearman (importance, survival)</th></tr>{agree}</table>")
    return ablation + agreement


def circuit_html(run: Any, doc: Any, i: int) -> None:
    """Add a run's circuit tables to the report (nothing without ``circuit --save``)."""
    res = read_circuit(run)
    if res is None:
        return
    doc.add(f"<h4>Round {res.round} as a circuit of the dense model ({html.escape(res.ablation)}"
            f" ablation, {res.examples} dev examples; a constant prediction scores "
            f"{fmt.num(res.chance, '.4f')}; removed units: {html.escape(res.removal_rule)})</h4>")
    from ticketlens.report.roles import findings_html

    doc.add("<p class='note'>Findings (α = 0.05):</p>" + findings_html(res.findings()))
    doc.add(circuit_tables(res))
