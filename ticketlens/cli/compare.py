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
    seeds = {name: r.seed for name, r in zip(result.names, runs, strict=True)}
    groups = group_summary(result, tasks, seeds) if len(set(tasks.values())) > 1 else None
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


def _num(v: float, fmt: str) -> str:
    return "n/a" if v != v else format(v, fmt)  # NaN: undefined (said once, below)


def _p(v: float) -> str:
    """A p-value: below what a double holds it prints as "<1e-300", never "0"."""
    return "n/a" if v != v else ("<1e-300" if v == 0 else f"{v:.2g}")


def _print(result, groups, layer_view: bool, arms: bool = False) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    con = Console(highlight=False)
    unit = {"weight": "weights", "head": "heads", "neuron": "FFN neurons",
            "ffn": "FFN blocks"}[result.by]
    what = "mask" if arms else "ticket"
    con.print(f"[bold]{len(result.names)} {what}s[/bold], compared by {unit} "
              f"({result.total:,} per {what})", soft_wrap=False)
    if result.by in UNIT_RULE:
        con.print(f"[dim]{UNIT_RULE[result.by]}[/dim]")
    notes: list[str] = []
    if not layer_view:
        t = Table(title="pairs (chance: independent masks with the same kept count per "
                        f"{'tensor' if result.by == 'weight' else 'layer'})",
                  box=box.SIMPLE_HEAD)
        # masks of one run (RUN@ARM, --methods): how much of a b keeps, in place of the
        # overlap coefficient and Hamming distance
        mid = ("of a in b", "chance ") if arms else ("overlap", "Hamming")
        # names whole, never cut to the same "agreement…": the numbers' headers wrap instead
        width = max((len(n) for n in result.names), default=1)
        for col in ("a", "b"):
            t.add_column(col, min_width=width, no_wrap=True, overflow="fold")
        for col in ("Jaccard", "chance", *mid, "p-value"):
            t.add_column(col, justify="right")
        for p in result.pairs:
            cells = (_num(p.a_kept_by_b, ".1%"), _num(p.a_kept_by_b_chance, ".1%")) if arms \
                else (_num(p.overlap_coefficient, ".3f"), _num(p.hamming, ".3f"))
            t.add_row(p.a, p.b, _num(p.jaccard, ".3f"), _num(p.jaccard_chance, ".3f"), *cells,
                      _p(p.p_value))
        con.print(t)
        notes.append("Jaccard: kept in both / kept in either; " + (
            "of a in b: the share of a's kept items that b keeps; " if arms else
            "overlap: kept in both / the smaller kept count; Hamming: the share of items "
            "kept by one only; ") + "p-value: the chance of an intersection at least this "
            "large between independent masks (hypergeometric per tensor or layer)")
    if result.per_layer:
        t = Table(title="per layer: mean Jaccard over pairs", box=box.SIMPLE_HEAD)
        for col in ("layer", "Jaccard", "chance", "ratio"):
            t.add_column(col, justify="right")
        for row in result.per_layer:
            ratio = row.jaccard_mean / row.jaccard_chance_mean if row.jaccard_chance_mean \
                else float("nan")
            t.add_row(str(row.layer), _num(row.jaccard_mean, ".3f"),
                      _num(row.jaccard_chance_mean, ".3f"), _num(ratio, ".2f"))
        con.print(t)
        notes.append("ratio: the layer's mean Jaccard over its chance level")
    kappa = (f"Fleiss' kappa {_num(result.fleiss_kappa, '.3f')} (independent masks: "
             f"{_num(result.fleiss_kappa_chance, '.3f')})")
    con.print(f"{kappa}; super-survivors (kept in every {what}): "
              f"{result.super_survivors_observed:,} observed, "
              f"{result.super_survivors_expected:,.1f} expected by chance")
    if result.fleiss_kappa != result.fleiss_kappa:
        notes.append(f"kappa n/a: every {what} keeps the same {unit} (all of them, or none), "
                     "so agreement by chance is certain and agreement beyond it undefined")
    if groups:
        con.print(f"within a task: mean Jaccard {_num(groups.within_jaccard, '.3f')} (chance "
                  f"{_num(groups.within_chance, '.3f')}, {groups.within_pairs} pairs)")
        if groups.same_seed_pairs or groups.cross_seed_pairs:
            con.print(
                f"across tasks, the seed held fixed: {_num(groups.same_seed_jaccard, '.3f')} "
                f"(chance {_num(groups.same_seed_chance, '.3f')}, {groups.same_seed_pairs} "
                f"pairs); across tasks and seeds: {_num(groups.cross_seed_jaccard, '.3f')} "
                f"(chance {_num(groups.cross_seed_chance, '.3f')}, "
                f"{groups.cross_seed_pairs} pairs)")
        else:
            con.print(f"across tasks: {_num(groups.across_jaccard, '.3f')} (chance "
                      f"{_num(groups.across_chance, '.3f')}, {groups.across_pairs} pairs)")
    for note in notes:
        con.print(f"[dim]{note}[/dim]")
