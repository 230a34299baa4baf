#!/usr/bin/env bash
# Does the embedded default always train? The default `find` (tiny-bert, every default flag)
# on the built-in sentiment and agreement tasks, seeds 0-9: 20 runs into runs/default-training/,
# then the table of dense accuracies and verdicts (summary.py). About 45 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/default-training}
for task in sentiment agreement; do
  for seed in 0 1 2 3 4 5 6 7 8 9; do
    .venv/bin/ticketlens find --quiet --task "$task" --seed "$seed" --out "$OUT/$task-s$seed"
  done
done
.venv/bin/python analyses/default_training/summary.py "$OUT"
