"""A 1.1B-parameter Llama on this machine (issue #24, item 5): one-shot Wanda and SparseGPT
layer by layer, then ``compress`` int4 of the pruned model, each step's wall time and peak
resident memory against the budget *fp32 size of the model + 2 GiB*.

The model has TinyLlama-1.1B's shape (hidden 2048, FFN 5632, 22 layers, 32 query / 4
key-value heads, vocabulary 32000, untied LM head: 1,100,048,384 parameters, 4.40 GB in
fp32) with random weights, seeded: every matrix ``N(0, 0.02)`` (HF's ``initializer_range``),
norms 1. It is built without ever holding it whole: the tensor names and shapes come from
the model built on the meta device, each layer's tensors are drawn from their own seeded
generator and written as their own safetensors shard.

Each step runs in its own process (``python tests/benchmarks/test_bigmodel_bench.py STEP
...``), so its peak resident size (``ru_maxrss``, and ``VmHWM`` of ``/proc/self/status``)
is its own:

- ``build``: the random model folder;
- ``prune METHOD PATTERN``: :func:`ticketlens.pruning.stream.oneshot_prune_folder` at 50%
  (unstructured or 2:4) on seeded random calibration tokens (``CAL_SEQS`` x ``CAL_TOKENS``),
  writing the pruned folder;
- ``compress SRC EMB``: :func:`ticketlens.compress.stream.compress_folder` int4, groups of
  64, with the pruning masks (embeddings float32, or int4 too).

``python tests/benchmarks/test_bigmodel_bench.py all OUTDIR [STEPS]`` runs the steps one
after the other and prints one JSON summary; the pytest test does the same in a temporary
folder and records it in results.json (it takes tens of minutes and ~14 GB of disk).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

TINYLLAMA = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                 num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                 max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-5,
                 tie_word_embeddings=False, initializer_range=0.02)
CAL_SEQS, CAL_TOKENS, CAL_BATCH, SEED, SPARSITY = 16, 128, 8, 0, 0.5
GIB = 2**30
DEFAULT_STEPS = ("build", "prune:wanda:unstructured", "prune:sparsegpt:unstructured",
                 "compress:sparsegpt-unstructured:none", "compress:sparsegpt-unstructured:int4",
                 "inmemory:wanda", "prune:wanda:2:4", "prune:sparsegpt:2:4")


def _peaks() -> dict[str, float]:
    """This process's peak resident size: ``ru_maxrss`` (KiB on Linux) and ``VmHWM``."""
    out = {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                                 / GIB, 3)}
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["vm_hwm_gib"] = round(int(line.split()[1]) * 1024 / GIB, 3)
    return out


def llama_config(layers: int | None = None):
    import transformers as tf

    cfg = dict(TINYLLAMA)
    if layers is not None:
        cfg["num_hidden_layers"] = layers
    return tf.LlamaConfig(**cfg)


def build_random_llama(folder: Path, layers: int | None = None) -> dict:
    """The random model written layer by layer; returns its size."""
    import torch
    import transformers as tf

    from ticketlens.models.shards import ShardWriter, layer_names, layer_prefix

    cfg = llama_config(layers)
    with torch.device("meta"):
        meta = tf.LlamaForCausalLM(cfg)
    shapes = {n: tuple(t.shape) for n, t in meta.state_dict().items()}
    prefix = layer_prefix(list(shapes))
    by_layer = layer_names(list(shapes), prefix)
    inside = {n for names in by_layer.values() for n in names}
    writer = ShardWriter(folder, len(by_layer) + 1)
    cfg.save_pretrained(folder)

    def draw(names: list[str], seed: int) -> dict:
        g = torch.Generator().manual_seed(seed)
        return {n: torch.ones(shapes[n]) if n.endswith("norm.weight") else
                torch.empty(shapes[n]).normal_(0.0, cfg.initializer_range, generator=g)
                for n in names}

    writer.write(draw(sorted(n for n in shapes if n not in inside), SEED))
    for i, names in by_layer.items():
        writer.write(draw(sorted(names), SEED + 1 + i))
    writer.close()
    params = sum(torch.Size(s).numel() for s in shapes.values())
    return {"params": params, "fp32_bytes": 4 * params, "layers": len(by_layer)}


def calibration(vocab: int) -> list[dict]:
    """``CAL_SEQS`` sequences of ``CAL_TOKENS`` uniform random token ids (seeded), in
    batches of ``CAL_BATCH``; no padding (``prune --calibration random``)."""
    from ticketlens.pruning.stream import random_calibration

    return random_calibration(vocab, CAL_SEQS, CAL_TOKENS, SEED, CAL_BATCH)[0]


def step_prune(src: Path, out: Path, method: str, pattern: str) -> dict:
    from ticketlens.models.shards import read_config
    from ticketlens.pruning.patterns import parse_pattern
    from ticketlens.pruning.stream import oneshot_prune_folder

    pat = parse_pattern(pattern)
    batches = calibration(read_config(src).vocab_size)
    rec = {"calibration": {"sequences": CAL_SEQS, "tokens": CAL_TOKENS, "seed": SEED,
                           "how": "torch.randint(0, vocab, (sequences, tokens), generator="
                                  "torch.Generator().manual_seed(seed))"}}
    res = oneshot_prune_folder(src, out, batches, method, None if pat else SPARSITY, pat,
                               measure_error=False, record=rec)
    dens = [s.density for s in res.stats]
    return {"seconds": round(res.seconds, 1), "matrices": len(dens),
            "density": [min(dens), max(dens)], "calibration_tokens": res.calibration_tokens}


def step_compress(src: Path, out: Path, emb: str) -> dict:
    from ticketlens.compress.stream import compress_folder

    res = compress_folder(src, out, "int4", 64, embeddings=None if emb == "none" else emb)
    d = res.to_dict()
    return {k: d[k] for k in ("bytes", "dense_fp32_bytes", "ratio", "prunable_bytes",
                              "prunable_ratio", "masked")} | {"seconds": round(res.seconds, 1)}


def step_inmemory(src: Path, method: str) -> dict:
    """For comparison, the in-memory path (``oneshot_prune`` on the model loaded whole with
    ``from_pretrained``, as ``find --method`` does) on one calibration sequence only (it
    re-runs all earlier layers for every layer): the peak after loading and after pruning."""
    import torch
    import transformers as tf

    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.pruning.oneshot import oneshot_prune

    model = tf.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    loaded = _peaks()
    batch = {k: v[:1] for k, v in calibration(model.config.vocab_size)[0].items()}
    res = oneshot_prune(model, anatomy_of(model), None, [batch], method, SPARSITY,
                        measure_error=False)
    return {"seconds": round(res.seconds, 1), "calibration_tokens": CAL_TOKENS,
            "after_load": loaded, "matrices": len(res.stats)}


def child(argv: list[str]) -> dict:
    """One step in this process: its figures, wall time and peak memory."""
    import torch

    t0 = time.perf_counter()
    step, root = argv[0], Path(argv[1])
    layers = int(os.environ.get("BIGLLAMA_LAYERS", "0")) or None
    if step == "build":
        figures = build_random_llama(root / "dense", layers)
    elif step == "prune":
        method, pattern = argv[2], argv[3]
        figures = step_prune(root / "dense", root / f"{method}-{pattern.replace(':', 'of')}",
                             method, pattern)
    elif step == "compress":
        figures = step_compress(root / argv[2], root / f"{argv[2]}+int4-g64+emb-{argv[3]}"
                                ".safetensors", argv[3])
    elif step == "inmemory":
        figures = step_inmemory(root / "dense", argv[2])
    else:
        raise SystemExit(f"unknown step {step!r}")
    return {**figures, "wall_s": round(time.perf_counter() - t0, 1),
            "torch_threads": torch.get_num_threads(), **_peaks()}


def run_all(root: Path, steps: tuple[str, ...] = DEFAULT_STEPS) -> dict:
    """Every step in its own process; the summary with the budget check."""
    summary: dict = {"calibration": f"{CAL_SEQS} x {CAL_TOKENS} random tokens, seed {SEED}",
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "steps": {}}
    for step in steps:
        args = step.split(":", 2)
        proc = subprocess.run([sys.executable, __file__, args[0], str(root), *args[1:]],
                              capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[2])
        if proc.returncode:
            raise RuntimeError(f"{step} failed:\n{proc.stderr[-3000:]}")
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        if args[0] == "build":
            summary["model"] = {k: figures[k] for k in ("params", "fp32_bytes", "layers")}
            summary["budget_gib"] = round(figures["fp32_bytes"] / GIB + 2, 3)
        summary["steps"][step] = figures
        print(step, json.dumps(figures), file=sys.stderr, flush=True)
    budget = summary.get("budget_gib")
    if budget is not None:
        summary["within_budget"] = {s: f["peak_rss_gib"] <= budget
                                    for s, f in summary["steps"].items()}
    return summary


def test_bigmodel_oneshot_and_compress(record, tmp_path):
    summary = run_all(tmp_path)
    record("bigmodel[tinyllama-1.1b-random]", summary)
    assert summary["model"]["params"] > 1.0e9
    assert all(summary["within_budget"].values()), summary["within_budget"]


if __name__ == "__main__":
    if sys.argv[1] == "all":
        steps = tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else DEFAULT_STEPS
        print(json.dumps(run_all(Path(sys.argv[2]), steps), indent=2))
    else:
        print(json.dumps(child(sys.argv[1:])))
