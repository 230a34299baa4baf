#!/usr/bin/env bash
# Instability analysis of the structured MiniLM tickets (#22 item 6): from the pretrained
# weights (init: these runs' own rewind point), from step 15 of dense training (10% of the
# 150-step schedule, replayed) and from a fresh random initialisation (reinit), two copies of
# the ticket's arm trained with different data orders and dropout, 11 points on the path
# between them; recorded in the run. Seeds 0-2 of each task (SEEDS=0 for one). One
# torch thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/made-of-roles}
[ -d "$OUT/sst2/s0" ] || { echo "skipped: run analyses/made_of/roles.sh first"; exit 0; }
export OMP_NUM_THREADS=1
for task in sst2 agnews; do
  for seed in ${SEEDS:-0 1 2}; do
    .venv/bin/ticketlens stability "$OUT/$task/s$seed" --rewind init 15it reinit --points 11 \
      --json > "$OUT/$task/s$seed.stability.json"
  done
  .venv/bin/python analyses/made_of/tables.py "$OUT/$task"
done
