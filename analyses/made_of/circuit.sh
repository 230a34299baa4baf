#!/usr/bin/env bash
# The ticket as a circuit (#22 item 6): for each structured MiniLM ticket that roles.sh made
# (SST-2 and AG News, seeds 0-2), ablate in the trained dense model what the ticket removed
# (mean ablation, 512 dev examples; --layer-matched) beside attribution's selections and 20 random ones of the
# same size (over the model, and with the ticket's count in every layer); recorded in each run
# (--save) and printed as the README's tables. One torch thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/made-of-roles}
[ -d "$OUT/sst2/s0" ] || { echo "skipped: run analyses/made_of/roles.sh first"; exit 0; }
export OMP_NUM_THREADS=1
for task in sst2 agnews; do
  for seed in 0 1 2; do
    .venv/bin/ticketlens circuit "$OUT/$task/s$seed" --layer-matched --save --json \
      > "$OUT/$task/s$seed.circuit.json"
  done
  .venv/bin/python analyses/made_of/tables.py "$OUT/$task"
done
