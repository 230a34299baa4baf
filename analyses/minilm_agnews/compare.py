"""Is the AG News ticket the SST-2 ticket, and is either more than pretrained magnitudes?

Compares (weight level, with chance levels) the ticket of runs/minilm-agnews, the ticket of
runs/minilm-sst2, and the mask one-shot global magnitude pruning of the pretrained (rewind)
weights gives at the same sparsity. Run after both run.sh scripts:

    .venv/bin/python analyses/minilm_agnews/compare.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import ticketlens as tl


def main() -> int:
    paths = [Path("runs/minilm-agnews"), Path("runs/minilm-sst2")]
    missing = [p for p in paths if not (p / "manifest.json").is_file()]
    if missing:
        print(f"skipped: run the run.sh scripts first ({', '.join(map(str, missing))} absent)")
        return 0
    runs = [tl.open_run(p) for p in paths]
    items: list = list(runs)
    for run in runs:  # one-shot magnitude pruning of the pretrained weights, same sparsity
        rewind = run.weights("rewind")
        weights = {n: rewind[n] for n in run.anatomy.names}
        oneshot = tl.magnitude_mask(weights, run.ticket.sparsity, scope="global")
        items.append((f"one-shot@{run.task}", run.anatomy, oneshot))
    res = tl.overlap(items)
    print(f"{'a':<18} {'b':<18} {'Jaccard':>8} {'chance':>8} {'overlap':>8}")
    for p in res.pairs:
        print(f"{p.a:<18} {p.b:<18} {p.jaccard:8.3f} {p.jaccard_chance:8.3f} "
              f"{p.overlap_coefficient:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
