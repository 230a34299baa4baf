"""The tables of analyses/default_training: per run, dense against chance, the ticket, the
controls (random mask, random re-init, one-shot when run) and the run's verdict; per folder
(one candidate setting over seeds), the issue's criteria and the sweep verdict over seeds
(``tl.sweep_stats``: TOST at the tolerance and one-sided paired tests; public API only).

Usage: python analyses/default_training/summary.py [RUNS_DIR ...]  (default runs/default-training)
Each RUNS_DIR is summarised on its own (a folder per candidate).
"""

from __future__ import annotations

import json
import sys

import ticketlens as tl


def _row(run) -> dict:
    v = run.verdict
    metric = run.metric
    return {"task": run.task, "seed": run.seed, "chance": run.manifest.task.chance,
            "dense": run.rounds[0].metrics[metric], "ticket_sparsity": run.ticket.sparsity,
            "ticket": run.ticket.metrics[metric],
            "random_mask": run.control_metric("random_mask"),
            "random_reinit": run.control_metric("random_reinit"),
            "oneshot": run.control_metric("oneshot"),
            "verdict": v.state if v else None,
            "tolerance": v.tolerance if v else 0.01,
            "margin": v.control_margin if v and v.control_margin is not None else 0.01}


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def summarise(root: str) -> dict:
    runs = [r for r in tl.runs(root) if r.complete]
    rows = sorted((_row(r) for r in runs), key=lambda r: (r["task"], r["seed"]))
    print(f"\n## {root}\n")
    print("| task | seed | chance | dense | ticket (sparsity) | random mask | re-init | one-shot "
          "| verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['seed']} | {r['chance']:.3f} | {r['dense']:.3f} | "
              f"{r['ticket']:.3f} ({r['ticket_sparsity']:.1%}) | {_f(r['random_mask'])} | "
              f"{_f(r['random_reinit'])} | {_f(r['oneshot'])} | {r['verdict']} |")
    out = {}
    for task in sorted({r["task"] for r in rows}):
        sub = [r for r in rows if r["task"] == task]
        trained = sum(r["dense"] >= r["chance"] + 0.05 for r in sub)
        within = sum(r["ticket"] >= r["dense"] - r["tolerance"] - 1e-12 for r in sub)
        beats = sum(r["random_mask"] is not None and r["random_reinit"] is not None
                    and r["ticket"] > r["random_mask"] + r["margin"] + 1e-12
                    and r["ticket"] > r["random_reinit"] + r["margin"] + 1e-12 for r in sub)
        out[task] = {"runs": len(sub), "dense_trained": trained, "ticket_within_tol": within,
                     "beats_both_controls": beats,
                     "run_verdicts": {s: sum(r["verdict"] == s for r in sub)
                                      for s in ("winning", "not winning", "inconclusive")}}
    if len(runs) >= 2:
        for g in tl.sweep_stats(runs).groups:
            o = out[g.task]
            o.update(sweep_verdict=g.verdict, headline=g.headline,
                     seeds_needed=g.seeds_needed,
                     dense=[g.dense.mean, g.dense.half_width],
                     ticket=[g.ticket.mean, g.ticket.half_width],
                     controls={c: [e.mean, e.half_width] for c, e in g.controls.items()})
    print(json.dumps(out, indent=2))
    return {"rows": rows, "summary": out}


if __name__ == "__main__":
    for root in sys.argv[1:] or ["runs/default-training"]:
        summarise(root)
