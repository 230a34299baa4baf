"""Seed stability of tickets on the embedded default (tiny-bert, built-in tasks).

Usage: python analyses/seed_stability/study.py [RUNS_DIR]   (default: sample_masks/)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ticketlens as tl


def main(root: str) -> dict:
    runs = tl.runs(root)
    out: dict = {"runs": [f"{r.task}/s{r.seed}" for r in runs],
                 "verdicts": {f"{r.task}/s{r.seed}": r.verdict.winning for r in runs}}
    for by in ("weight", "head", "neuron"):
        res = tl.overlap(runs, by=by)
        groups = tl.group_summary(res, {n: r.task for n, r in zip(res.names, runs, strict=True)},
                                  {n: r.seed for n, r in zip(res.names, runs, strict=True)})
        per_task = {}
        for task in sorted({r.task for r in runs}):
            sub = [r for r in runs if r.task == task]
            t = tl.overlap(sub, by=by)
            per_task[task] = {
                "jaccard_mean": sum(p.jaccard for p in t.pairs) / len(t.pairs),
                "jaccard_chance_mean": sum(p.jaccard_chance for p in t.pairs) / len(t.pairs),
                "max_p_value": max(p.p_value for p in t.pairs),
                "fleiss_kappa": t.fleiss_kappa, "fleiss_kappa_chance": t.fleiss_kappa_chance,
                "super_survivors": [t.super_survivors_observed,
                                    round(t.super_survivors_expected, 1)],
            }
        # pairs by what they share: the task, the seed (hence the initialisation), or neither
        by_kind: dict[str, list] = {}
        info = {n: r for n, r in zip(res.names, runs, strict=True)}
        for p in res.pairs:
            a, b = info[p.a], info[p.b]
            kind = ("same task, other seed" if a.task == b.task else
                    "other task, same seed" if a.seed == b.seed else "other task, other seed")
            by_kind.setdefault(kind, []).append(p)
        shared = {k: {"pairs": len(v),
                      "jaccard_mean": sum(p.jaccard for p in v) / len(v),
                      "jaccard_chance_mean": sum(p.jaccard_chance for p in v) / len(v),
                      "max_p_value": max(p.p_value for p in v)}
                  for k, v in sorted(by_kind.items())}
        out[by] = {"within_vs_across": groups.to_dict(), "per_task": per_task,
                   "by_what_pairs_share": shared}
    return out


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parents[2] / "sample_masks")
    from ticketlens.core.result import json_safe

    print(json.dumps(json_safe(main(root)), indent=2, allow_nan=False))  # null, never NaN
