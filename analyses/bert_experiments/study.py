"""Seed agreement of the structured BERT masks released by Prasanna et al. 2020.

Usage: python analyses/bert_experiments/study.py [HEADS_MLPS_DIR]
       (default: ../shared/data/external/bert-experiments/heads_mlps; skipped when absent)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import ticketlens as tl


def main(src: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        runs = tl.import_masks(src, tmp, fmt="bert-experiments")
        out = {}
        for task in sorted({r.task for r in runs}):
            sub = [r for r in runs if r.task == task]
            row = {"seeds": len(sub),
                   "heads_kept_mean": sum(float(r.units().head.mean())
                                          for r in sub) / len(sub),
                   "ffn_kept_mean": sum(float(r.units().ffn.mean())
                                        for r in sub) / len(sub)}
            for by in ("head", "ffn"):
                res = tl.overlap(sub, by=by)
                row[by] = {
                    "jaccard_mean": sum(p.jaccard for p in res.pairs) / len(res.pairs),
                    "jaccard_chance_mean": sum(p.jaccard_chance for p in res.pairs)
                    / len(res.pairs),
                    "pairs_p_below_0.05": sum(p.p_value < 0.05 for p in res.pairs),
                    "pairs": len(res.pairs),
                    "fleiss_kappa": res.fleiss_kappa,
                    "fleiss_kappa_chance": res.fleiss_kappa_chance,
                    "super_survivors": res.super_survivors_observed,
                    "super_survivors_expected": res.super_survivors_expected,
                }
            out[task] = row
        return out


if __name__ == "__main__":
    default = Path(__file__).parents[3] / "shared/data/external/bert-experiments/heads_mlps"
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if not src.is_dir():
        print(f"skipped: {src} is absent (the released masks are not part of this repo)")
        sys.exit(0)
    print(json.dumps(main(src), indent=2))
