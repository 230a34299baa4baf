"""The table of analyses/default_training: dense accuracy against chance, the ticket, the
controls and the verdict of every run under a folder (public API only).

Usage: python analyses/default_training/summary.py [RUNS_DIR]  (default runs/default-training)
"""

from __future__ import annotations

import json
import statistics
import sys

import ticketlens as tl


def main(root: str) -> dict:
    rows = []
    for run in sorted(tl.runs(root), key=lambda r: (r.task, r.seed)):
        if not run.complete:
            print(f"(skipped: {run.path} is not complete)", file=sys.stderr)
            continue
        v = run.verdict
        rows.append({"task": run.task, "seed": run.seed,
                     "chance": run.manifest.task.chance, "dense": run.rounds[0].metrics["accuracy"],
                     "ticket_sparsity": run.ticket.sparsity,
                     "ticket": run.ticket.metrics["accuracy"],
                     "random_mask": run.control_metric("random_mask"),
                     "random_reinit": run.control_metric("random_reinit"),
                     "verdict": v.state if v else None})
    print("| task | seed | chance | dense | ticket (sparsity) | random mask | re-init | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['seed']} | {r['chance']:.3f} | {r['dense']:.3f} | "
              f"{r['ticket']:.3f} ({r['ticket_sparsity']:.0%}) | {r['random_mask']:.3f} | "
              f"{r['random_reinit']:.3f} | {r['verdict']} |")
    summary = {}
    for task in sorted({r["task"] for r in rows}):
        sub = [r for r in rows if r["task"] == task]
        summary[task] = {"runs": len(sub), "dense_min": min(r["dense"] for r in sub),
                         "dense_mean": statistics.mean(r["dense"] for r in sub),
                         "verdicts": {s: sum(r["verdict"] == s for r in sub)
                                      for s in ("winning", "not winning", "inconclusive")}}
    print(json.dumps(summary, indent=2))
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/default-training")
