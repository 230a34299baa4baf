#!/usr/bin/env bash
# A winning ticket for a 4-class task in a real pretrained LM? all-MiniLM-L6-v2 on AG News
# from ../shared/data/agnews, CPU-sized: 2,400 training snippets, 1,000 dev items, 150 steps
# a round.
set -euo pipefail
cd "$(dirname "$0")/../.."
. analyses/minilm.sh ../shared/data/agnews
.venv/bin/ticketlens find --model "$MODEL" --task "$DATA/train.tsv" --dev-file "$DATA/dev.tsv" \
  --train-size 2400 --dev-size 1000 --steps 150it --batch-size 16 --lr 5e-5 --max-length 64 \
  --rate 0.2 --target-sparsity 0.5 --out "${OUT:-runs/minilm-agnews}" "$@"
