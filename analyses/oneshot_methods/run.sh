#!/usr/bin/env bash
# Is the IMP ticket what one-shot LLM pruners find? (#16) all-MiniLM-L6-v2 on SST-2 (the
# analyses/minilm_sst2 sizes): IMP tickets at 50%, 60% and 70% (20% a round) and a 2:4 IMP
# ticket (4 -> 3 -> 2 of every 4), each with magnitude (per matrix), Wanda and SparseGPT
# trained beside it at the ticket's sparsity / pattern (--compare-methods, 128 calibration
# examples; their metric before retraining is recorded too); no random controls (the
# question is the methods). A sweep of the three sparsities on 2 local workers (1 torch
# thread each), then the 2:4 run, then `compare --methods` on each ticket (by weight, head,
# neuron). Resumable: run it again.
set -euo pipefail
cd "$(dirname "$0")/../.."
. analyses/minilm.sh ../shared/data/sst2
OUT=${OUT:-runs/oneshot-methods}
COMMON=(--model "$MODEL" --task "$DATA/train.tsv" --dev-file "$DATA/dev.tsv" --train-size 2400
        --steps 150it --batch-size 16 --lr 5e-5 --max-length 64 --rate 0.2 --no-controls
        --compare-methods magnitude,wanda,sparsegpt --calibration 128)
.venv/bin/ticketlens sweep -o "$OUT/unstructured" --set prune.target_sparsity=0.5,0.6,0.7 \
  --workers 2 "${COMMON[@]}"
.venv/bin/ticketlens find -q -o "$OUT/2to4" --pattern 2:4 "${COMMON[@]}"
for run in $(find "$OUT" -name manifest.json -printf '%h\n' | sort); do
  .venv/bin/ticketlens info "$run"
  for by in weight head neuron; do .venv/bin/ticketlens compare "$run" --methods --by $by; done
done
