"""The figures of analyses/structured_minilm/README.md from the sweep's runs (public API only):
per task and seed the dense and per-round accuracy with head / neuron sparsity, the sparsest
round within the tolerance of dense; per task the share of heads a winning round prunes
(against Michel et al. 2019's ~40% of BERT's heads), which heads survive, and the seeds'
agreement on surviving heads (Fleiss' kappa against its chance value, as Prasanna et al.
2020 report it)."""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

import ticketlens as tl


def main(folder: str) -> None:
    by_task = defaultdict(list)
    for run in tl.runs(folder):
        by_task[run.task].append(run)
    for task, runs in sorted(by_task.items()):
        runs.sort(key=lambda r: r.seed)
        print(f"\n## {task} ({len(runs)} seeds)")
        tol = runs[0].manifest.config["prune"]["tolerance"]
        sparsest = []
        for run in runs:
            dense = run.rounds[0].metrics[run.metric]
            cells = [f"s{run.seed}: dense {dense:.4f}"]
            best = None
            for r in run.rounds[1:]:
                u = r.unit_sparsity or {}
                ok = r.metrics[run.metric] >= dense - tol
                cells.append(f"r{r.index} heads {u.get('head', 0):.0%} neurons "
                             f"{u.get('neuron', 0):.0%}: {r.metrics[run.metric]:.4f}"
                             f"{' ok' if ok else ''}")
                if ok:
                    best = r
            ctrl = {k: run.control_metric(k) for k in run.controls}
            cells.append("controls " + ", ".join(f"{k} {v:.4f}" for k, v in ctrl.items()
                                                 if v is not None))
            v = run.verdict
            cells.append(f"verdict {v.state if v else '-'}")
            print("; ".join(cells))
            sparsest.append(best)
        shares = [(b.unit_sparsity or {}).get("head", 0.0) if b else 0.0 for b in sparsest]
        print(f"sparsest winning round per seed: heads pruned "
              f"{', '.join(f'{s:.0%}' for s in shares)} (mean {np.mean(shares):.0%}; "
              "Michel et al.: ~40% of BERT's heads prunable)")
        rounds = sorted({r.index for r in runs[0].rounds[1:]})
        for rnd in rounds:
            if not all(any(x.index == rnd for x in r.rounds) for r in runs):
                continue
            o = tl.overlap(runs, by="head", round=rnd)
            surv = [tl.survival(r, round=rnd) for r in runs]
            total = surv[0].num_layers * surv[0].num_heads
            alive = np.mean([total - len(s.dead_heads) for s in surv])
            print(f"round {rnd}: heads alive {alive:.1f}/{total} per seed; seed kappa on "
                  f"surviving "
                  f"heads {o.fleiss_kappa:.3f} (chance {o.fleiss_kappa_chance:.3f}); mean "
                  f"Jaccard {np.mean([p.jaccard for p in o.pairs]):.3f} (chance "
                  f"{np.mean([p.jaccard_chance for p in o.pairs]):.3f})")
        s = tl.survival(runs[0])
        per_layer = (s.state_grid() <= 1).sum(axis=1)
        print(f"seed 0 ticket: heads alive per layer {per_layer.tolist()}; dead "
              f"{len(s.dead_heads)}, blind {len(s.blind_heads)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/structured-minilm")
