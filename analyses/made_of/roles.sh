#!/usr/bin/env bash
# Head roles of MiniLM's structured SST-2 and AG News tickets (#22 item 6, the roles part):
# all-MiniLM-L6-v2, heads and FFN neurons pruned together by gradient importance to 50% in one
# round (the analyses/minilm_* sizes: 2,400 training examples, 150 steps at batch 16, lr 5e-5,
# max length 64), seeds 0-2, one torch thread, no controls (roles need the ticket only); then
# `ticketlens roles` on each run (256 dev examples, seed 0) and over a task's three runs;
# then the circuit of each ticket (circuit.sh) and the stability of seed 0 (stability.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/data}
. analyses/minilm.sh "$SHARED/sst2" "$SHARED/agnews"
OUT=${OUT:-runs/made-of-roles}
export OMP_NUM_THREADS=1
for task in sst2 agnews; do
  for seed in 0 1 2; do
    .venv/bin/ticketlens find --quiet -o "$OUT/$task/s$seed" --seed "$seed" --model "$MODEL" \
      --task "$SHARED/$task" --train-size 2400 --dev-size 1000 --steps 150it --batch-size 16 \
      --lr 5e-5 --max-length 64 --granularity unit --importance gradient --rate 0.5 \
      --target-sparsity 0.5 --no-controls
  done
  .venv/bin/ticketlens roles "$OUT/$task" --examples 256 --seed 0 --save > "$OUT/$task/roles.txt"
  .venv/bin/ticketlens roles "$OUT/$task" --examples 256 --seed 0 --json > "$OUT/$task/roles.json"
  .venv/bin/python analyses/made_of/roles_by_layer.py "$OUT/$task"
done
