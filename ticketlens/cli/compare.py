"""``ticketlens compare RUN...``: overlap of tickets with chance levels (``--json``).

An item may be ``RUN@ARM``: the mask of a control of the run (``RUN@method_wanda``, or
``RUN@wanda`` for short; ``RUN@ticket`` is the ticket). ``compare RUN --methods`` compares the
run's ticket with its one-shot method controls (``find --compare-methods``): how much of the
ticket Wanda / SparseGPT / magnitude keep, beside chance.
"""

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
    p.add_argument("runs", nargs="+", help="run directories or folders of runs; RUN@ARM for "
                   "a control's mask (e.g. RUN@method_wanda, RUN@oneshot)")
    p.add_argument("--by", default="weight", choices=("weight", "head", "neuron", "ffn",
                                                      "layer"),
                   help="compare weights, alive heads / neurons / FFN blocks, or weights "
                        "layer by layer (default: weight)")
    p.add_argument("--methods", action="store_true", help="one run: its ticket against the "
                   "one-shot methods it trained beside it (find --compare-methods)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(ns: argparse.Namespace) -> int:
    from ticketlens.analysis.overlap import group_summary, method_items, overlap
    from ticketlens.core.errors import ConfigError
    from ticketlens.core.run import Run

    by = "weight" if ns.by == "layer" else ns.by
    items, runs = _items(ns.runs)
    if ns.methods:
        if len(runs) != 1 or not isinstance(items[0], Run):
            raise ConfigError("compare --methods takes one run directory")
        items = method_items(runs[0])
        runs = runs * len(items)
    if len(items) < 2:
        raise ConfigError("compare needs at least two runs (or RUN@ARM items)")
    result = overlap(items, by=by)
    arms = not all(isinstance(i, Run) for i in items)
    tasks = {name: r.task for name, r in zip(result.names, runs, strict=True)}
    groups = group_summary(result, tasks) if len(set(tasks.values())) > 1 else None
    if ns.json:
        data = {**result.to_dict(), "runs": [str(r.path) for r in runs]}
        if result.by in UNIT_RULE:
            data["unit_rule"] = UNIT_RULE[result.by]
        if groups:
            data["by_task"] = groups.to_dict()
        sys.stdout.write(json.dumps(data, indent=2) + "\n")  # one write (dump makes ~10^4)
        return 0
    _print(result, groups, layer_view=ns.by == "layer", arms=arms)
    return 0


def _items(args: list[str]) -> tuple[list, list]:
    """The items to compare (runs, or the arm's masks for ``RUN@ARM``) and each one's run."""
    from pathlib import Path

    from ticketlens.analysis.inputs import arm_masks
    from ticketlens.core.config import ONESHOT_METHODS
    from ticketlens.core.run import find_runs, open_run

    items: list = []
    runs: list = []
    for arg in args:
        path, at, arm = arg.rpartition("@")
        if at and path and not Path(arg).exists():
            run = open_run(path)
            if arm in ONESHOT_METHODS and arm not in run.controls:
                arm = f"method_{arm}"
            items.append(arm_masks(run, arm))
            runs.append(run)
            continue
        for p in find_runs(arg):
            runs.append(open_run(p))
            items.append(runs[-1])
    return items, runs


def _print(result, groups, layer_view: bool, arms: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(highlight=False)
    unit = {"weight": "weights", "head": "heads", "neuron": "FFN neurons",
            "ffn": "FFN blocks"}[result.by]
    con.print(f"[bold]{len(result.names)} {'masks' if arms else 'tickets'}[/bold], "
              f"compared by {unit} "
              f"({result.total:,} per ticket)")
    if result.by in UNIT_RULE:
        con.print(f"[dim]{UNIT_RULE[result.by]}[/dim]")
    if not layer_view:
        t = Table(title="pairs (chance: independent masks with the same kept count per "
                        f"{'tensor' if result.by == 'weight' else 'layer'})")
        # masks of one run (RUN@ARM, --methods): how much of a b keeps, in place of the
        # overlap coefficient and Hamming distance
        mid = ("of a in b", "chance ") if arms else ("overlap coef.", "Hamming")
        for col in ("a", "b", "Jaccard", "chance", *mid, "p-value"):
            t.add_column(col, justify="right" if col not in ("a", "b") else "left")
        for p in result.pairs:
            cells = (f"{p.a_kept_by_b:.1%}", f"{p.a_kept_by_b_chance:.1%}") if arms else (
                f"{p.overlap_coefficient:.3f}", f"{p.hamming:.3f}")
            t.add_row(p.a, p.b, f"{p.jaccard:.3f}", f"{p.jaccard_chance:.3f}", *cells,
                      f"{p.p_value:.2g}")
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
              f"{result.fleiss_kappa_chance:.3f}); super-survivors (kept in every "
              f"{'mask' if arms else 'ticket'}): "
              f"{result.super_survivors_observed:,} observed, "
              f"{result.super_survivors_expected:,.1f} expected by chance")
    if groups:
        con.print(f"within a task: mean Jaccard {groups.within_jaccard:.3f} (chance "
                  f"{groups.within_chance:.3f}, {groups.within_pairs} pairs); across tasks: "
                  f"{groups.across_jaccard:.3f} (chance {groups.across_chance:.3f}, "
                  f"{groups.across_pairs} pairs)")
