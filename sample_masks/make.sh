#!/usr/bin/env bash
# Regenerates sample_masks/: `ticketlens find` on the embedded default (tiny-bert), 2 built-in
# tasks x 3 seeds (sentiment is the default task), default settings (95% target sparsity, 40%
# a round, late rewinding; analyses/default_training chose them), then
# token and unit attribution, head roles and the circuit table stored in each run (analysis/),
# and the stability record of sentiment-s0, for the report and the terminal UI.
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
    "$TL" roles "$task-s$seed" --save --json > /dev/null      # head roles (analysis/roles.json)
    "$TL" circuit "$task-s$seed" --save --json > /dev/null    # the ticket as a circuit
  done
done
# linear mode connectivity from init, the rewind point and a re-init (one run: 6 trainings)
"$TL" stability sentiment-s0 > /dev/null
