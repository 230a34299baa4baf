"""Mask enforcement: parity with the HF model, exact zeros under AdamW + weight decay."""

from __future__ import annotations

import pytest
import torch

from ticketlens.models.anatomy import anatomy_of
from ticketlens.pruning import ops as P
from ticketlens.pruning.masking import MaskEnforcer, prunable_weights
from ticketlens.pruning.train import lr_factor
from ticketlens.testing import tiny_inputs, tiny_model


@pytest.mark.parametrize("family", ["bert", "distilbert", "gpt2", "llama"])
def test_all_ones_mask_leaves_outputs_unchanged(family):
    """Reference: the unmodified HF model's own logits, compared bit for bit."""
    model = tiny_model(family)
    x = tiny_inputs()
    with torch.no_grad():
        before = model(**x).logits.clone()
    a = anatomy_of(model)
    enforcer = MaskEnforcer(model, P.ones_like(prunable_weights(model, a.names)))
    enforcer.apply_to_weights()
    with torch.no_grad():
        after = model(**x).logits
    assert torch.equal(before, after)


def test_pruned_weights_stay_exactly_zero_under_adamw():
    model = tiny_model("bert").train()
    a = anatomy_of(model)
    weights = {k: v.clone() for k, v in prunable_weights(model, a.names).items()}
    masks = P.magnitude_prune(weights, P.ones_like(weights), 0.7, "global")
    enforcer = MaskEnforcer(model, masks)
    enforcer.apply_to_weights()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    x = tiny_inputs(batch=8)
    labels = torch.randint(0, 2, (8,))
    for _ in range(5):
        model(**x, labels=labels).loss.backward()
        enforcer.apply_to_grads()
        opt.step()
        enforcer.apply_to_weights()
        opt.zero_grad()
    params = dict(model.named_parameters())
    changed = 0
    for name, m in masks.items():
        assert torch.all(params[name][~m] == 0), name  # exactly zero, not just small
        assert torch.all(opt.state[params[name]]["exp_avg"][~m] == 0)
        changed += int((params[name][m] != weights[name][m]).sum())
    assert changed > 0  # the surviving weights did train


def test_without_enforcement_weights_would_regrow():
    """The control for the test above: AdamW alone moves pruned weights off zero."""
    model = tiny_model("bert").train()
    a = anatomy_of(model)
    name = a.names[0]
    p = dict(model.named_parameters())[name]
    with torch.no_grad():
        p[:4] = 0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    model(**tiny_inputs(batch=8), labels=torch.zeros(8, dtype=torch.long)).loss.backward()
    opt.step()
    assert torch.any(p[:4] != 0)


def test_lr_schedule():
    total, warm = 100, 0.1
    assert lr_factor(0, total, warm) == pytest.approx(0.1)
    assert lr_factor(9, total, warm) == pytest.approx(1.0)
    assert lr_factor(10, total, warm) == pytest.approx(1.0)
    assert lr_factor(55, total, warm) == pytest.approx(0.5)
    assert lr_factor(99, total, warm) == pytest.approx(1 / 90)


def test_gradient_accumulation_equals_the_full_batch_step():
    """Reference: the same optimizer steps on whole batches. With dropout off, 3 unequal
    micro-batches (weighted by their share of the batch, each padded to its own longest) must
    give the weights of the full-batch steps, up to float rounding."""
    import dataclasses

    from ticketlens.core.config import TrainConfig
    from ticketlens.data.batching import TensorData
    from ticketlens.data.tokenizer import Encoded
    from ticketlens.pruning.train import make_accelerator, train_phase

    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(1, 100, (int(n),), generator=g).tolist()
            for n in torch.randint(3, 12, (64,), generator=g)]
    data = TensorData(Encoded(seqs, [[0] * len(s) for s in seqs]),
                      torch.randint(0, 2, (64,), generator=g).tolist())
    base = TrainConfig(steps="6it", batch_size=16, device="cpu", precision="fp32")
    finals = []
    for accum in (1, 3):  # micro-batches of 6, 6 and 4 examples
        model = tiny_model("bert")
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        a = anatomy_of(model)
        masks = P.magnitude_prune(prunable_weights(model, a.names),
                                  P.ones_like(prunable_weights(model, a.names)), 0.5, "global")
        tcfg = dataclasses.replace(base, grad_accum=accum)
        acc = make_accelerator(tcfg)
        train_phase(acc, model, MaskEnforcer(model, masks), data, tcfg=tcfg, lr=1e-3, start=0,
                    end=6, total=6, seed=3, pad_id=0)
        finals.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    for k in finals[0]:
        torch.testing.assert_close(finals[1][k], finals[0][k], atol=2e-5, rtol=1e-4, msg=k)
    assert not torch.equal(finals[0]["classifier.weight"], tiny_model("bert").classifier.weight)


def test_one_process_can_switch_precision_between_searches():
    """accelerate's process-wide state refuses a second precision; a notebook (or this test
    session) running searches with other settings gets a new state each time."""
    from ticketlens.core.config import TrainConfig
    from ticketlens.pruning.train import make_accelerator

    for precision, expected in (("fp32", "no"), ("bf16", "bf16"), ("fp32", "no")):
        acc = make_accelerator(TrainConfig(device="cpu", precision=precision))
        assert acc.mixed_precision == expected


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_phase_keeps_fp32_weights_and_exact_zeros(precision):
    """bf16 / fp16 autocast (fp16 with a GradScaler) without accelerate's process-wide
    mixed-precision state: weights stay fp32, pruned ones exactly zero, training moves the
    rest; the accelerator's own state stays at "no" whatever the precision."""
    from accelerate.state import AcceleratorState

    from ticketlens.core.config import TrainConfig
    from ticketlens.data.batching import TensorData
    from ticketlens.data.tokenizer import Encoded
    from ticketlens.pruning.train import make_accelerator, train_phase

    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(1, 100, (8,), generator=g).tolist() for _ in range(32)]
    data = TensorData(Encoded(seqs, [[0] * 8 for _ in seqs]),
                      torch.randint(0, 2, (32,), generator=g).tolist())
    model = tiny_model("bert")
    a = anatomy_of(model)
    masks = P.magnitude_prune(prunable_weights(model, a.names),
                              P.ones_like(prunable_weights(model, a.names)), 0.5, "global")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tcfg = TrainConfig(steps="4it", batch_size=16, device="cpu", precision=precision)
    acc = make_accelerator(tcfg)
    assert acc.mixed_precision == precision and (acc.scaler is not None) == (precision == "fp16")
    train_phase(acc, model, MaskEnforcer(model, masks), data, tcfg=tcfg, lr=1e-3, start=0,
                end=4, total=4, seed=1, pad_id=0)
    assert AcceleratorState().mixed_precision == "no"
    params = dict(model.named_parameters())
    for name, keep in masks.items():
        assert params[name].dtype == torch.float32
        assert torch.all(params[name][~keep] == 0), name
    assert not torch.equal(params["classifier.weight"], before["classifier.weight"])
