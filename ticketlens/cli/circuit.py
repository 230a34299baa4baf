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
                      seed=ns.seed, threshold=ns.threshold)
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
    (``CircuitResult.to_dict()``)."""
    from rich.markup import escape
    from rich.table import Table

    m = res["metric"]
    t = Table(title=f"round {res['round']} as a circuit of the dense model: {res['ablation']}-"
              f"ablate the other units ({res['examples']} dev examples; a constant "
              f"prediction scores {res['chance']:.4f})")
    for col in ("units kept by", "heads off", "neurons off", m, "faithfulness",
                "normalised"):
        t.add_column(col, justify="right")
    def f(v: float | None, spec: str) -> str:
        return "–" if v is None else format(v, spec)

    for r in res["rows"]:
        sd = f" ± {r['metric_sd']:.4f}" if r["metric_sd"] is not None else ""
        t.add_row(escape(r["label"] + (f" ({r['draws']} draws)" if r["draws"] > 1 else "")),
                  str(r["heads_removed"]), str(r["neurons_removed"]),
                  f"{r['metric']:.4f}{sd}", f(r["faithfulness"], ".3f"),
                  f(r["normalised"], ".3f"))
    con.print(t)
    a = Table(title="the ticket's kept units against attribution's top units "
              f"({res['attribution_examples']} training examples)")
    for col in ("units", "attribution", "kept", "shared with top", "chance", "p",
                "Spearman(importance, survival)"):
        a.add_column(col, justify="right")
    for g in res["agreement"]:
        a.add_row(f"{g['kind']}s", escape(g["scorer"]), f"{g['kept']} / {g['units']}",
                  str(g["shared"]), f(g["expected"], ".1f"), f(g["p_value"], ".3g"),
                  f"{f(g['spearman'], '+.3f')} (p {f(g['spearman_p'], '.2g')})")
    con.print(a)
    con.print(f"removed units: {escape(res['removal_rule'])}")
