#!/usr/bin/env bash
# Regenerates sample_masks/: `ticketlens find` on the embedded default (tiny-bert), 2 built-in
# tasks x 3 seeds (sentiment is the default task), default settings (95% target sparsity, 40%
# a round, late rewinding; analyses/default_training chose them), then
# token and unit attribution stored in each run (analysis/attribution.json) for the report
# and the terminal UI.
set -euo pipefail
cd "$(dirname "$0")"
# one torch thread: CPU float results depend on the thread count, so the files are the same
# on any machine (and the same as analyses/default_training's seeds 0-2)
export OMP_NUM_THREADS=1
TL=${TICKETLENS:-../.venv/bin/ticketlens}
for task in sentiment agreement; do
  for seed in 0 1 2; do
    "$TL" find --quiet --overwrite --task "$task" --seed "$seed" --out "$task-s$seed"
    "$TL" attribute "$task-s$seed" --n 6 --units --save --json > /dev/null
  done
done
