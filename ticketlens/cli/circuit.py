"""``ticketlens circuit RUN``: the ticket as a circuit of its dense model: ablate the heads and
neurons it removed (no retraining) and compare with the same numbers of units chosen by
attribution, at random, and the least important (``ticketlens.analysis.circuit``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run made by `ticketlens find` (it needs the dense weights)")
    p.add_argument("--round", type=int, default=None, help="the round (default: the ticket)")
    p.add_argument("--ablation", choices=("mean", "zero"), default="mean",
                   help="replace ablated units by their mean dev activation (default) or 0")
    p.add_argument("--examples", type=int, default=512,
                   help="dev examples the metric is measured on (default 512)")
    p.add_argument("--attribution-examples", type=int, default=256,
                   help="training examples attribution is computed on (default 256)")
    p.add_argument("--draws", type=int, default=20, help="random selections (default 20)")
    p.add_argument("--layer-matched", action="store_true", help="also --draws random "
                   "selections with the ticket's count in every layer (the control for a "
                   "ticket that prunes some layers more; doubles the random draws' time)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random selections")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="unstructured tickets: a unit keeping under this times the mean kept "
                   "fraction of its kind counts as removed (default 0.5)")
    p.add_argument("--save", action="store_true", help="store the result in the run "
                   "(analysis/circuit.json), for `ticketlens report` and `inspect`")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.analysis.circuit import circuit, save_circuit
    from ticketlens.core.run import open_run
    from ticketlens.pruning.train import plan_threads, torch_threads

    r = open_run(ns.run)
    with torch_threads(plan_threads()):
        res = circuit(r, round=ns.round, ablation=ns.ablation, examples=ns.examples,
                      attribution_examples=ns.attribution_examples, draws=ns.draws,
                      seed=ns.seed, threshold=ns.threshold, layer_matched=ns.layer_matched)
    data = res.to_dict()
    if ns.save:
        save_circuit(r, res)
    if ns.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    from rich.console import Console

    print_table(data, Console(highlight=False))
    return 0


def print_table(res: dict[str, Any], con: Any) -> None:
    """The ablation rows and the agreement of survival with attribution
    (``CircuitResult.to_dict()``). Undefined numbers print as ``n/a`` with the reason once,
    below the table; p-values as the report writes them (``< 1e-300`` where one underflowed)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from ticketlens.cli.tables import fitted
    from ticketlens.report.fmt import num, p_value

    look = dict(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)

    m = res["metric"]
    notes: list[str] = []
    t = Table(title=f"round {res['round']} as a circuit of the dense model: {res['ablation']}-"
              f"ablate the other units ({res['examples']} dev examples; a constant "
              f"prediction scores {res['chance']:.4f})", **look)
    rows = []
    for r in res["rows"]:
        sd = f" ± {r['metric_sd']:.4f}" if r["metric_sd"] is not None else ""
        rows.append([escape(r["label"] + (f" ({r['draws']} draws)" if r["draws"] > 1 else "")),
                     str(r["heads_removed"]), str(r["neurons_removed"]),
                     f"{r['metric']:.4f}{sd}", num(r["faithfulness"]), num(r["normalised"])])
    fitted(t, [("units kept by", "left"), ("heads off", "right"), ("neurons off", "right"),
                (m, "right"), ("faithfulness", "right"), ("normalised", "right")], rows)
    con.print(t)
    notes.append(f"faithfulness: {m} / dense's; normalised: ({m} - constant) / (dense - "
                 "constant); ± the standard deviation over the random draws")
    if any(r["faithfulness"] is None for r in res["rows"]):
        notes.append(f"faithfulness n/a: the dense model's {m} is 0")
    if any(r["normalised"] is None for r in res["rows"]):
        notes.append("normalised n/a: the dense model scores no more than a constant "
                     "prediction")
    a = Table(title="the ticket's kept units against attribution's top units "
              f"({res['attribution_examples']} training examples)", **look)
    rows = [[f"{g['kind']}s", escape(g["scorer"]), f"{g['kept']}/{g['units']}",
             str(g["shared"]), num(g["expected"], ".1f"), p_value(g["p_value"]),
             num(g["spearman"], "+.3f"), p_value(g["spearman_p"])] for g in res["agreement"]]
    fitted(a, [("units", "left"), ("attribution", "left"), ("kept", "right"),
                ("shared with top", "right"), ("chance", "right"), ("p", "right"),
                ("Spearman ρ", "right"), ("ρ's p", "right")], rows)
    con.print(a)
    notes.append("shared with top: the ticket's kept units among the same number of top units "
                 "by the attribution; chance: kept² / units; p: hypergeometric, P(shared >= "
                 "observed); Spearman ρ: the units' importance against their survival")
    if any(g["p_value"] is None for g in res["agreement"]):
        notes.append("p n/a: the ticket keeps every unit of that kind, or none (its top units "
                     "are then all the units or none, whatever the attribution)")
    if any(g["spearman"] is None for g in res["agreement"]):
        notes.append("ρ n/a: the importance or the survival is the same for every unit (no "
                     "ranking to correlate)")
    notes.append(f"removed units: {escape(res['removal_rule'])}")
    for n in notes:
        con.print(n)
    from ticketlens.analysis.circuit import CircuitResult

    con.print("[bold]Findings[/bold]")
    for f in CircuitResult.from_dict(res).findings():
        con.print(f" - {escape(f)}")
