#!/usr/bin/env bash
# Structured tickets of a real pretrained LM (#13): all-MiniLM-L6-v2 (6 layers x 12 heads,
# 1,536 FFN neurons a layer) on SST-2 and AG News, 3 seeds each, heads and FFN neurons
# pruned together by Michel et al.'s gradient importance, 30% of the remaining units a round
# to 70% (rounds at 30%, 51%, 66%, 70% of heads and of neurons); the analyses/minilm_* sizes;
# 2 local workers of 1 torch thread each.
# One sweep (6 runs, resumable: run it again to continue), then the figures of the README.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/data}
. analyses/minilm.sh "$SHARED/sst2" "$SHARED/agnews"
OUT=${OUT:-runs/structured-minilm}
.venv/bin/ticketlens sweep -o "$OUT" --tasks "$SHARED/sst2,$SHARED/agnews" --seeds 0-2 \
  --model "$MODEL" --train-size 2400 --dev-size 1000 --steps 150it --batch-size 16 --lr 5e-5 \
  --max-length 64 --granularity unit --importance gradient --rate 0.3 --target-sparsity 0.7 \
  --workers 2 "$@"
.venv/bin/python analyses/structured_minilm/analyze.py "$OUT"
