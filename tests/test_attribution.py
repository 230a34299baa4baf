"""Attribution: IG completeness, gate importance vs finite differences, hooks removed,
ground truth on a trained tiny-bert."""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLE_MASKS

import ticketlens
from ticketlens.analysis.attribution import (
    compare_tokens,
    dev_sample,
    integrated_gradients,
    unit_gates,
    unit_importance,
)
from ticketlens.models.anatomy import anatomy_of
from ticketlens.testing import tiny_inputs, tiny_model


def test_ig_completeness_within_reported_delta():
    """Reference: IG's completeness axiom, sum(attr) = f(x) - f(baseline)."""
    model = tiny_model("bert").double()
    x = tiny_inputs(batch=4, length=9)
    special = torch.zeros_like(x["input_ids"], dtype=torch.bool)
    special[:, 0] = True
    target = torch.tensor([0, 1, 1, 0])
    attr, delta = integrated_gradients(model, dict(x), target, special, pad_id=0, n_steps=64)
    baseline = torch.where(special, x["input_ids"], torch.zeros_like(x["input_ids"]))
    with torch.no_grad():
        fx = model(**x).logits.gather(1, target[:, None]).squeeze(1)
        fb = model(input_ids=baseline, attention_mask=x["attention_mask"]).logits.gather(
            1, target[:, None]).squeeze(1)
    gap = attr.sum(1) - (fx - fb)
    assert torch.allclose(gap.abs(), delta.abs(), atol=1e-9)  # captum's delta is this gap
    assert delta.abs().max() < 0.05 * (fx - fb).abs().max()


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
@pytest.mark.parametrize("kind", ["head", "neuron"])
def test_gate_gradient_matches_finite_difference(family, kind):
    """Reference: a central finite difference of the loss in one gate."""
    model = tiny_model(family).double()
    a = anatomy_of(model)
    x = {**tiny_inputs(batch=4), "labels": torch.tensor([0, 1, 0, 1])}
    # eps 1e-3: Llama's RMSNorm computes in float32 even in a double model, so a smaller
    # step drowns in rounding; the O(eps^2) error of the central difference is ~1e-6
    layer, unit, eps = a.num_layers - 1, 1, 1e-3
    with unit_gates(model, a, kind) as gates:
        grad = torch.autograd.grad(model(**x).loss, gates)[layer][unit]
        with torch.no_grad():
            gates[layer][unit] += eps
            up = model(**x).loss
            gates[layer][unit] -= 2 * eps
            down = model(**x).loss
    fd = (up - down) / (2 * eps)
    # float32 RMSNorm (Llama) bounds the difference's accuracy at ~1e-5 of the loss
    tol = 1e-5 if family == "llama" else 1e-8
    assert abs(float(grad)) > 10 * tol
    assert float(grad) == pytest.approx(float(fd), rel=2e-3, abs=tol)
    imp = unit_importance(model, a, [x], kind)
    assert imp[layer, unit] == pytest.approx(abs(float(grad)))


def test_hooks_are_removed_even_on_error():
    model = tiny_model("bert")
    a = anatomy_of(model)
    x = tiny_inputs()
    with torch.no_grad():
        before = model(**x).logits.clone()
    with pytest.raises(RuntimeError), unit_gates(model, a, "head"):
        raise RuntimeError("boom")
    unit_importance(model, a, [{**x, "labels": torch.tensor([0, 1, 0])}], "neuron")
    assert all(not m._forward_pre_hooks for m in model.modules())
    with torch.no_grad():
        assert torch.equal(model(**x).logits, before)


RUN = SAMPLE_MASKS / "sentiment-s0"


@pytest.mark.skipif(not (RUN / "manifest.json").exists(), reason="sample_masks absent")
def test_ground_truth_share_above_chance_for_trained_model():
    from ticketlens.analysis.attribution import dev_sample, load_pair

    run = ticketlens.open_run(RUN)
    dense, ticket, tok = load_pair(run)
    texts, pairs, labels, evidence = dev_sample(run, 24)
    res = compare_tokens(dense, ticket, tok, texts, pairs, labels, evidence, n_steps=24)
    gt = res.evidence_means()
    assert gt is not None and gt["n"] == 24
    assert gt["dense"] > 2 * gt["chance"]  # polarity words and negators carry the decision
    deltas = sorted(abs(i.dense_delta) for i in res.items)
    assert deltas[len(deltas) // 2] < 0.01  # median convergence delta at 24 steps


@pytest.mark.skipif(not (SAMPLE_MASKS / "sentiment-s0").is_dir(), reason="sample_masks absent")
def test_attribute_command_json_with_units(capsys):
    """`ticketlens attribute RUN --units --json`: the dev sample (loaded once, shared by the
    token and the unit parts) gives --n items, and head and neuron importance for every
    unit of the run's anatomy."""
    import json

    from ticketlens.cli.main import main

    run = ticketlens.open_run(SAMPLE_MASKS / "sentiment-s0")
    assert main(["attribute", str(run.path), "--n", "4", "--units", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["items"]) == 4
    kinds = {u["kind"]: u for u in data["units"]}
    assert set(kinds) == {"head", "neuron"}
    a = run.anatomy
    assert [len(row) for row in kinds["head"]["importance"]] == [a.num_heads] * a.num_layers
    assert 0.0 <= kinds["head"]["share_surviving"] <= 1.0
    assert [i["text"] for i in data["items"]] == list(dev_sample(run, 4)[0])
