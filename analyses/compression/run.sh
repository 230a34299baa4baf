#!/usr/bin/env bash
# Tickets x quantization x distillation on a real pretrained LM: all-MiniLM-L6-v2 on SST-2
# (../shared/data/sst2; skips when absent), the sizes of analyses/minilm_sst2 (2,400 training
# sentences, the full 872-sentence dev set, 150 steps a round, batch 16, lr 5e-5, length 64).
# IMP at 30% a round towards 80% sparsity, stopping at the first round more than 1 point
# below dense (--stop-on-drop: the ticket is the sparsest round within 1 point); no controls
# (this study compares compressions, not tickets against random masks).
#   1. the plain search;  2. the same search with --distill (alpha 0.5, T 2);
#   3. ticketlens compress: the 8 cells, int4 in groups of 64, latency at batch 1 and 32.
set -euo pipefail
cd "$(dirname "$0")/../.."
. analyses/minilm.sh ../shared/data/sst2
OUT=${OUT:-runs/compression}
ARGS=(--model "$MODEL" --task "$DATA/train.tsv" --dev-file "$DATA/dev.tsv"
      --train-size 2400 --steps 150it --batch-size 16 --lr 5e-5 --max-length 64
      --rate 0.3 --target-sparsity 0.8 --stop-on-drop --no-controls)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/ticketlens find "${ARGS[@]}" --quiet --out "$OUT/plain"
.venv/bin/ticketlens find "${ARGS[@]}" --quiet --distill --out "$OUT/distilled"
.venv/bin/ticketlens compress "$OUT/plain" --distilled "$OUT/distilled" --group 64 \
  --keep "$OUT/files" --json > "$OUT/compress.json"
.venv/bin/ticketlens info "$OUT/plain"
