"""``ticketlens compare RUN...``: overlap of tickets with chance levels (``--json``)."""

from __future__ import annotations

import argparse
import json
import sys

# What "alive" means when units are compared (core.structure); printed under the header.
UNIT_RULE = {
    "head": "a head is dead when its V or O slice is fully pruned (it adds nothing, or a "
            "constant); attention-blind heads (Q or K pruned) still add a mix of V and count "
            "as alive; structured runs: the heads drawn",
    "neuron": "an FFN neuron is dead when its input or output side is fully pruned; "
              "structured runs: the neurons drawn",
    "ffn": "an FFN block is dead when all its neurons are",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories or folders of runs")
    p.add_argument("--by", default="weight", choices=("weight", "head", "neuron", "ffn",
                                                      "layer"),
                   help="compare weights, alive heads / neurons / FFN blocks, or weights "
                        "layer by layer (default: weight)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.analysis.overlap import group_summary, overlap
    from ticketlens.core.errors import TicketlensError
    from ticketlens.core.run import find_runs, open_run

    runs = [open_run(p) for arg in ns.runs for p in find_runs(arg)]
    if len(runs) < 2:
        raise TicketlensError("compare needs at least two runs")
    by = "weight" if ns.by == "layer" else ns.by
    try:
        result = overlap(runs, by=by)
    except ValueError as exc:
        raise TicketlensError(str(exc)) from None
    tasks = {name: r.task for name, r in zip(result.names, runs, strict=True)}
    groups = group_summary(result, tasks) if len(set(tasks.values())) > 1 else None
    if ns.json:
        data = {**result.to_dict(), "runs": [str(r.path) for r in runs]}
        if result.by in UNIT_RULE:
            data["unit_rule"] = UNIT_RULE[result.by]
        if groups:
            data["by_task"] = groups.to_dict()
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    _print(result, groups, layer_view=ns.by == "layer")
    return 0


def _print(result, groups, layer_view: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(highlight=False)
    unit = {"weight": "weights", "head": "heads", "neuron": "FFN neurons",
            "ffn": "FFN blocks"}[result.by]
    con.print(f"[bold]{len(result.names)} tickets[/bold], compared by {unit} "
              f"({result.total:,} per ticket)")
    if result.by in UNIT_RULE:
        con.print(f"[dim]{UNIT_RULE[result.by]}[/dim]")
    if not layer_view:
        t = Table(title="pairs (chance: independent masks with the same kept count per "
                        f"{'tensor' if result.by == 'weight' else 'layer'})")
        for col in ("a", "b", "Jaccard", "chance", "overlap coef.", "Hamming", "p-value"):
            t.add_column(col, justify="right" if col not in ("a", "b") else "left")
        for p in result.pairs:
            t.add_row(p.a, p.b, f"{p.jaccard:.3f}", f"{p.jaccard_chance:.3f}",
                      f"{p.overlap_coefficient:.3f}", f"{p.hamming:.3f}", f"{p.p_value:.2g}")
        con.print(t)
    if result.per_layer:
        t = Table(title="per layer: mean Jaccard over pairs")
        for col in ("layer", "Jaccard", "chance", "ratio"):
            t.add_column(col, justify="right")
        for row in result.per_layer:
            ratio = row.jaccard_mean / row.jaccard_chance_mean if row.jaccard_chance_mean else 0
            t.add_row(str(row.layer), f"{row.jaccard_mean:.3f}",
                      f"{row.jaccard_chance_mean:.3f}", f"{ratio:.2f}")
        con.print(t)
    con.print(f"Fleiss' kappa {result.fleiss_kappa:.3f} (independent masks: "
              f"{result.fleiss_kappa_chance:.3f}); super-survivors (kept in every ticket): "
              f"{result.super_survivors_observed:,} observed, "
              f"{result.super_survivors_expected:,.1f} expected by chance")
    if groups:
        con.print(f"within a task: mean Jaccard {groups.within_jaccard:.3f} (chance "
                  f"{groups.within_chance:.3f}, {groups.within_pairs} pairs); across tasks: "
                  f"{groups.across_jaccard:.3f} (chance {groups.across_chance:.3f}, "
                  f"{groups.across_pairs} pairs)")
