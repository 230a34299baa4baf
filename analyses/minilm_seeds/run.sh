#!/usr/bin/env bash
# The one-seed MiniLM answers (analyses/minilm_sst2, analyses/minilm_agnews) over 3 seeds
# (#14): all-MiniLM-L6-v2 on SST-2 and AG News, the same sizes (2,400 training examples, dev
# up to 1,000, 150 steps a round at batch 16, lr 5e-5, IMP at 20% a round to 50%), seeds
# 0-2, as one sweep on 2 local workers (1 torch thread each). Resumable: run it again.
# Then `ticketlens info` prints the statistics over seeds: means and 95% CIs, the paired
# tests of the ticket against each control, the sweep verdicts, seed agreement and the
# cross-task overlap with the seed held fixed vs across seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/data}
. analyses/minilm.sh "$SHARED/sst2" "$SHARED/agnews"
OUT=${OUT:-runs/minilm-seeds}
.venv/bin/ticketlens sweep -o "$OUT" --tasks "$SHARED/sst2,$SHARED/agnews" --seeds 0-2 \
  --model "$MODEL" --train-size 2400 --dev-size 1000 --steps 150it --batch-size 16 --lr 5e-5 \
  --max-length 64 --rate 0.2 --target-sparsity 0.5 --workers 2 "$@"
.venv/bin/ticketlens info "$OUT"
