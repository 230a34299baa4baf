"""Anatomy on tiny configs of every family: slices checked by hand and against the modules."""

from __future__ import annotations

import pytest
import torch

from ticketlens.core.anatomy import Anatomy, Slice
from ticketlens.models.anatomy import anatomy_of
from ticketlens.testing import tiny_model

FAMILIES = ["bert", "distilbert", "gpt2", "llama"]


@pytest.fixture(scope="module", params=FAMILIES)
def fam_model(request):
    return request.param, tiny_model(request.param)


def test_default_prunable_set(fam_model):
    family, model = fam_model
    a = anatomy_of(model)
    assert a.family == family
    roles = {"bert": 6, "distilbert": 6, "gpt2": 4, "llama": 7}[family]
    assert len(a.tensors) == roles * a.num_layers
    for t in a.tensors:
        assert t.name.endswith(".weight") and "embed" not in t.name and "norm" not in t.name
        assert "classifier" not in t.name and "score" not in t.name and "lm_head" not in t.name
    assert Anatomy.from_dict(a.to_dict()) == a


def test_hand_computed_slices():
    """Expected rows/columns written out by hand for head 1 and 3, neuron 5."""
    bert = anatomy_of(tiny_model("bert"))  # 4 heads x 16 dims, FFN 256, nn.Linear (out, in)
    s = bert.head_slices(2, 1)
    p = "bert.encoder.layer.2."
    assert s["q"] == Slice(p + "attention.self.query.weight", 0, 16, 32)
    assert s["k"] == Slice(p + "attention.self.key.weight", 0, 16, 32)
    assert s["v"] == Slice(p + "attention.self.value.weight", 0, 16, 32)
    assert s["o"] == Slice(p + "attention.output.dense.weight", 1, 16, 32)
    n = bert.neuron_slices(2, 5)
    assert n["in"] == Slice(p + "intermediate.dense.weight", 0, 5, 6)
    assert n["out"] == Slice(p + "output.dense.weight", 1, 5, 6)

    gpt = anatomy_of(tiny_model("gpt2"))  # Conv1D (in, out); c_attn out = [Q | K | V] x 64
    s = gpt.head_slices(1, 3)
    assert s["q"] == Slice("transformer.h.1.attn.c_attn.weight", 1, 48, 64)
    assert s["k"] == Slice("transformer.h.1.attn.c_attn.weight", 1, 64 + 48, 64 + 64)
    assert s["v"] == Slice("transformer.h.1.attn.c_attn.weight", 1, 128 + 48, 128 + 64)
    assert s["o"] == Slice("transformer.h.1.attn.c_proj.weight", 0, 48, 64)
    n = gpt.neuron_slices(0, 5)
    assert n["in"] == Slice("transformer.h.0.mlp.c_fc.weight", 1, 5, 6)
    assert n["out"] == Slice("transformer.h.0.mlp.c_proj.weight", 0, 5, 6)

    llama = anatomy_of(tiny_model("llama"))  # 4 query heads, 2 kv heads: heads 2, 3 -> kv 1
    assert (llama.num_heads, llama.num_kv_heads, llama.head_dim) == (4, 2, 16)
    s = llama.head_slices(0, 3)
    assert s["q"] == Slice("model.layers.0.self_attn.q_proj.weight", 0, 48, 64)
    assert s["k"] == Slice("model.layers.0.self_attn.k_proj.weight", 0, 16, 32)
    assert s["v"] == Slice("model.layers.0.self_attn.v_proj.weight", 0, 16, 32)
    assert s["o"] == Slice("model.layers.0.self_attn.o_proj.weight", 1, 48, 64)
    assert llama.head_slices(0, 2)["k"] == s["k"]  # shared within the group
    assert llama.head_slices(0, 1)["k"].start == 0
    n = llama.neuron_slices(1, 5)
    assert set(n) == {"in", "gate", "out"}
    assert n["gate"] == Slice("model.layers.1.mlp.gate_proj.weight", 0, 5, 6)


def _module_for(model, tensor_name):
    return model.get_submodule(tensor_name.rsplit(".", 1)[0])


def test_output_side_slices_own_their_outputs(fam_model):
    """Zeroing a unit's output-side slice (and bias) zeroes exactly that unit's output
    features of the module and leaves every other feature unchanged (Q, K, V rows or GPT-2
    columns; FFN input and gate rows)."""
    _, model = fam_model
    a = anatomy_of(model)
    layer = a.num_layers - 1
    slices = {**a.head_slices(layer, 1), **a.neuron_slices(layer, 1)}
    for part in ("q", "k", "v", "in", "gate"):
        if part not in slices:
            continue
        s = slices[part]
        mod = _module_for(model, s.name)
        x = torch.randn(2, 3, mod.weight.shape[1] if s.dim == 0 else mod.weight.shape[0])
        with torch.no_grad():
            before = mod(x)
            w0, b0 = mod.weight.clone(), None if mod.bias is None else mod.bias.clone()
            mod.weight[s.index()] = 0
            if mod.bias is not None:
                mod.bias[s.start:s.stop] = 0
            after = mod(x)
            mod.weight.copy_(w0)
            if b0 is not None:
                mod.bias.copy_(b0)
        assert torch.all(after[..., s.start:s.stop] == 0), part
        keep = torch.ones(before.shape[-1], dtype=torch.bool)
        keep[s.start:s.stop] = False
        assert torch.allclose(after[..., keep], before[..., keep]), part


@pytest.mark.parametrize("part", ["o", "out"])
def test_input_side_slices_own_their_inputs(fam_model, part):
    """With a unit's input-side slice zeroed, the module ignores that unit's input dims."""
    _, model = fam_model
    a = anatomy_of(model)
    slices = a.head_slices(0, 2) if part == "o" else a.neuron_slices(0, 7)
    s = slices[part]
    mod = _module_for(model, s.name)
    n_in = mod.weight.shape[1] if s.dim == 1 else mod.weight.shape[0]
    x = torch.randn(2, 3, n_in)
    x2 = x.clone()
    x2[..., s.start:s.stop] += 5.0
    with torch.no_grad():
        w0 = mod.weight.clone()
        assert not torch.allclose(mod(x), mod(x2))
        mod.weight[s.index()] = 0
        same = torch.allclose(mod(x), mod(x2))
        mod.weight.copy_(w0)
    assert same


def test_include_exclude():
    model = tiny_model("bert")
    a = anatomy_of(model, exclude=["*attention*"])
    assert {t.role for t in a.tensors} == {"ffn_in", "ffn_out"}
    b = anatomy_of(model, include=["*.layer.0.*", "*word_embeddings.weight"])
    assert {t.layer for t in b.tensors} == {0, -1}
    assert any(t.role == "other" for t in b.tensors)
