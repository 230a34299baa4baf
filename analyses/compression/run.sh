#!/usr/bin/env bash
# Tickets x quantization x distillation (x embeddings, vocabulary, slicing) on a real
# pretrained LM: all-MiniLM-L6-v2 on SST-2 (../shared/data/sst2; skips when absent), the sizes
# of analyses/minilm_sst2 (2,400 training sentences, the full 872-sentence dev set, 150 steps
# a round, batch 16, lr 5e-5, length 64), one seed (0).
#   1. plain IMP at 30% a round towards 80% sparsity, stopping at the first round more than
#      1 point below dense (--stop-on-drop: the ticket is the sparsest round within 1 point);
#      no controls (this study compares compressions, not tickets against random masks);
#   2. the same search with --distill (alpha 0.5, T 2);
#   3. a structured ticket: heads and FFN neurons, gradient importance, one round to 50%
#      (the run analyses/made_of uses), which `compress` also measures sliced;
#   4. ticketlens compress of 1+2 (the 8 cells and every variant: embeddings int8/int4,
#      vocabulary trimming, int4 in groups of 64, CPU latency of each Pareto variant) and of 3
#      (sliced, +int8/int4, +dynamic int8, latency of the sliced dynamic int8);
#   5. ticketlens export of both tickets in every format it writes (sizes, load checks),
#      and the ONNX folders' dev accuracy and latency under onnxruntime (onnx_eval.py).
# One torch thread (OMP_NUM_THREADS=1) unless set; about 30 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
. analyses/minilm.sh ../shared/data/sst2
OUT=${OUT:-runs/compression}
TL=.venv/bin/ticketlens
ARGS=(--model "$MODEL" --task "$DATA/train.tsv" --dev-file "$DATA/dev.tsv"
      --train-size 2400 --steps 150it --batch-size 16 --lr 5e-5 --max-length 64
      --rate 0.3 --target-sparsity 0.8 --stop-on-drop --no-controls)
STRUCT=(--model "$MODEL" --task "$DATA" --train-size 2400 --dev-size 1000 --steps 150it
        --batch-size 16 --lr 5e-5 --max-length 64 --granularity unit --importance gradient
        --rate 0.5 --target-sparsity 0.5 --no-controls)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
$TL find "${ARGS[@]}" --quiet --out "$OUT/plain"
$TL find "${ARGS[@]}" --quiet --distill --out "$OUT/distilled"
$TL find "${STRUCT[@]}" --quiet --out "$OUT/struct"
$TL compress "$OUT/plain" --distilled "$OUT/distilled" --group 64 \
  --keep "$OUT/files" --json > "$OUT/compress.json"
$TL compress "$OUT/struct" --group 64 --keep "$OUT/files-struct" --json \
  > "$OUT/compress-struct.json"
# the formats each variant ships in (needs the extras: pip install 'ticketlens[ct,onnx]')
for run in plain struct; do
  $TL export "$OUT/$run" -o "$OUT/export/$run-hf" --overwrite --json
  $TL export "$OUT/$run" -o "$OUT/export/$run-onnx" --format onnx --overwrite --json
  $TL export "$OUT/$run" -o "$OUT/export/$run-onnx-int8" --format onnx --quant int8 \
    --overwrite --json
  for q in int8 int4; do
    $TL export "$OUT/$run" -o "$OUT/export/$run-ct-$q" --format compressed-tensors \
      --quant "$q" --group 64 --overwrite --json
  done
done > "$OUT/export.jsonl"
# the ONNX folders under onnxruntime: dev accuracy (a sentence at a time) and latency
.venv/bin/python analyses/compression/onnx_eval.py "$OUT/plain" "$OUT/export/plain-onnx" \
  "$OUT/export/plain-onnx-int8" > "$OUT/onnx_eval.jsonl"
.venv/bin/python analyses/compression/onnx_eval.py "$OUT/struct" "$OUT/export/struct-onnx" \
  "$OUT/export/struct-onnx-int8" >> "$OUT/onnx_eval.jsonl"
$TL info "$OUT/plain"
$TL info "$OUT/struct"
