"""Engine benchmarks (issue: `ticketlens find`). Run with `make bench`.

- masked training step / dense step (goal <= 1.02), and / the torch.nn.utils.prune
  forward-hook approach, alternating in one process on the same model and data;
- bits stored per prunable weight per round (goal <= 1.01).
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
from torch.nn.utils import prune

from ticketlens.core import masks as M
from ticketlens.models.anatomy import anatomy_of
from ticketlens.pruning import ops as P
from ticketlens.pruning.masking import MaskEnforcer, prunable_weights
from ticketlens.pruning.train import adamw

pytestmark = pytest.mark.benchmark

CONFIGS = {
    # name: (hidden, layers, heads, ffn, batch, seq)
    "tiny-bert": (64, 4, 4, 256, 32, 16),
    "small-bert": (256, 4, 4, 1024, 16, 64),
}


def _model(hidden, layers, heads, ffn):
    import transformers as tf

    cfg = tf.BertConfig(vocab_size=1000, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=ffn,
                        max_position_embeddings=128, num_labels=2)
    torch.manual_seed(0)
    return tf.BertForSequenceClassification(cfg).train()


def _step(model, opt, batch, enforcer=None):
    model(**batch).loss.backward()
    if enforcer is not None:
        enforcer.apply_to_grads()
    opt.step()
    if enforcer is not None:
        enforcer.apply_to_weights()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_masked_step_overhead(name, record):
    figures = masked_step_overhead(name)
    record(f"masked_step_{name}", figures)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def masked_step_overhead(name: str, device: str = "cpu", steps: int = 160) -> dict:
    """Median ms per step of dense, ticketlens-masked and torch-prune-hooked training of
    the same model, round-robin; the figures ``make bench`` and ``make gpu-check`` record."""
    hidden, layers, heads, ffn, bs, seq = CONFIGS[name]
    # three identically built models (same seed), so memory layout favours none of them
    dense, ours, hooked = (_model(hidden, layers, heads, ffn).to(device) for _ in range(3))
    names = anatomy_of(dense).names
    weights = prunable_weights(dense, names)
    masks = {n: m.to(device) for n, m in
             P.magnitude_prune(weights, P.ones_like(weights), 0.8, "global").items()}
    enforcer = MaskEnforcer(ours, masks)
    enforcer.apply_to_weights()
    for n in names:  # torch's own approach: weight = weight_orig * mask in a forward pre-hook
        prune.custom_from_mask(hooked.get_submodule(n.rsplit(".", 1)[0]), "weight", masks[n])

    g = torch.Generator().manual_seed(0)
    batches = [{"input_ids": torch.randint(5, 1000, (bs, seq), generator=g).to(device),
                "attention_mask": torch.ones(bs, seq, dtype=torch.long, device=device),
                "labels": torch.randint(0, 2, (bs,), generator=g).to(device)}
               for _ in range(8)]
    variants = {
        # the engine's optimizer (fused AdamW) for all three
        "dense": (dense, adamw([{"params": list(dense.parameters())}], 1e-4), None),
        "ticketlens": (ours, adamw([{"params": list(ours.parameters())}], 1e-4), enforcer),
        "torch_prune_hooks": (hooked, adamw([{"params": list(hooked.parameters())}], 1e-4),
                              None),
    }
    for model, opt, enf in variants.values():  # warm-up
        for b in batches[:3]:
            _step(model, opt, b, enf)
    times: dict[str, list[float]] = {k: [] for k in variants}
    keys = list(variants)
    for i in range(steps):  # round-robin, one step at a time, rotating who goes first
        b = batches[i % len(batches)]
        for k in keys[i % 3:] + keys[: i % 3]:
            model, opt, enf = variants[k]
            _sync(device)
            t0 = time.perf_counter()
            _step(model, opt, b, enf)
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    # the enforcement's own cost, timed alone: the overhead's floor-to-ceiling explanation
    for p in ours.parameters():
        p.grad = torch.randn_like(p)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(100):
        enforcer.apply_to_grads()
        enforcer.apply_to_weights()
    _sync(device)
    enforce = (time.perf_counter() - t0) / 100
    figures = {
        "ms_per_step_median": {k: round(v * 1000, 3) for k, v in med.items()},
        "masked_over_dense": round(med["ticketlens"] / med["dense"], 4),
        "masked_over_torch_prune_hooks": round(med["ticketlens"] / med["torch_prune_hooks"], 4),
        "enforcement_ms_per_step": round(enforce * 1000, 3),
        "enforcement_over_dense_step": round(1 + enforce / med["dense"], 4),
        "config": dict(zip(("hidden", "layers", "heads", "ffn", "batch", "seq"),
                           CONFIGS[name])),
        "device": device,
    }
    p = dict(ours.named_parameters())
    assert all(torch.all(p[n][~m] == 0) for n, m in masks.items())
    return figures


def test_bits_per_weight(tmp_path, record):
    """Mask file size per round: tiny-bert, and BERT-base's 85M prunable weights."""
    out = {}
    bert_base = {}
    for layer in range(12):
        p = f"bert.encoder.layer.{layer}."
        bert_base.update({p + "attention.self.query.weight": (768, 768),
                          p + "attention.self.key.weight": (768, 768),
                          p + "attention.self.value.weight": (768, 768),
                          p + "attention.output.dense.weight": (768, 768),
                          p + "intermediate.dense.weight": (3072, 768),
                          p + "output.dense.weight": (768, 3072)})
    from ticketlens.testing import tiny_model

    tiny = {n: tuple(s) for n, s in anatomy_of(tiny_model("bert")).shapes.items()}
    g = torch.Generator().manual_seed(0)
    for name, shapes in (("tiny-bert", tiny), ("bert-base", bert_base)):
        masks = {n: torch.rand(s, generator=g) > 0.5 for n, s in shapes.items()}
        size = M.save_masks(tmp_path / f"{name}.safetensors", masks, round="1")
        n = sum(m.numel() for m in masks.values())
        out[name] = {"prunable_weights": n, "file_bytes": size,
                     "bits_per_weight": round(size * 8 / n, 5)}
    record("bits_per_weight", out)
    assert out["bert-base"]["bits_per_weight"] <= 1.01
