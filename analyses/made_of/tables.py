"""The circuit and stability tables of analyses/made_of/README.md, read from what
``ticketlens circuit --save`` and ``ticketlens stability`` recorded in each run of a folder
(one task's seeds): per run, then the mean and range over the runs.

    python analyses/made_of/tables.py runs/made-of-roles/sst2
"""

from __future__ import annotations

import sys

import numpy as np

import ticketlens as tl
from ticketlens.analysis.circuit import read_circuit
from ticketlens.pruning.stability import read_stability


def circuit_tables(runs: list) -> None:
    results = [(r, read_circuit(r)) for r in runs]
    results = [(r, c) for r, c in results if c is not None]
    if not results:
        print("no circuit recorded (ticketlens circuit RUN --save)")
        return
    labels = [row.label for row in results[0][1].rows]
    names = [r.path.name for r, _ in results]
    print(f"\n### circuit ({results[0][1].ablation} ablation, {results[0][1].examples} dev "
          f"examples; chance = the best constant prediction)\n")
    print("| selection | " + " | ".join(names) + " | mean faithfulness | mean normalised |")
    print("|---|" + "---|" * (len(names) + 2))
    for lab in labels:
        rows = [c.row(lab) for _, c in results]
        cells = []
        for row in rows:
            cell = f"{row.metric:.4f}"
            if row.draws > 1:
                lo, hi = row.metric_range
                cell += f" (sd {row.metric_sd:.4f}; {lo:.3f}–{hi:.3f})"
            cells.append(cell)
        f = np.mean([row.faithfulness for row in rows])
        nz = np.mean([row.normalised for row in rows])
        print(f"| {lab} | " + " | ".join(cells) + f" | {f:.3f} | {nz:.3f} |")
    print("\nunits removed (heads, neurons): " + ", ".join(
        f"{n} {c.row('ticket').heads_removed}, {c.row('ticket').neurons_removed}"
        for n, (_, c) in zip(names, results, strict=True)))
    print("chance: " + ", ".join(f"{n} {c.chance:.4f}"
                                  for n, (_, c) in zip(names, results, strict=True)))
    print("\n| overlap with | kind | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for i, a in enumerate(results[0][1].agreement):
        cells = []
        for _, c in results:
            g = c.agreement[i]
            cells.append(f"{g.shared}/{g.kept} (exp. {g.expected:.1f}, p {g.p_value:.2g}; "
                         f"ρ {g.spearman:+.2f})")
        print(f"| {a.scorer} | {a.kind} | " + " | ".join(cells) + " |")


def bump(c) -> float:
    """The largest error on the path above the straight line between its ends' errors (0 for
    a path that never rises above its chord; Frankle et al.'s barrier counts half the ends'
    gap too when the path is monotone)."""
    e, a = np.asarray(c.error), np.asarray(c.alphas)
    return float(max(0.0, np.max(e - ((1 - a) * e[0] + a * e[-1]))))


def stability_tables(runs: list) -> None:
    found = [(r, read_stability(r)) for r in runs]
    found = [(r, s) for r, s in found if s]
    if not found:
        print("\nno stability recorded (ticketlens stability RUN)")
        return
    print("\n### stability (error = 1 - accuracy; barrier = worst error on the path minus the "
          "mean of the ends')\n")
    print("| run | arm | start | start step | ends' accuracy | worst accuracy on the path | "
          "error barrier | bump above the chord | loss barrier | stable (< 2 points) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r, by_round in found:
        for res in by_round.values():
            for c in res.curves:
                ends = f"{c.metric[0]:.4f} / {c.metric[-1]:.4f}"
                print(f"| {r.path.name} | {res.arm} ({res.sparsity:.0%}) | {c.start} | "
                      f"{c.start_step} | {ends} | {min(c.metric):.4f} | "
                      f"{100 * c.error_barrier:+.2f} pts | {100 * bump(c):+.2f} pts | "
                      f"{c.loss_barrier:+.4f} | "
                      f"{'yes' if c.stable else 'no'} |")


def main(folder: str) -> None:
    runs = tl.runs(folder)
    circuit_tables(runs)
    stability_tables(runs)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/made-of-roles/sst2")
