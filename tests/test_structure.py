"""Structured tickets (#13): unit masks <-> weight masks (grouped-query attention included),
what a pruned slice does to a unit (checked by forward passes), unit importance (a hand
computation; Michel et al.'s gate gradient against a finite difference), unit selection,
``find --granularity`` end to end, and early-bird."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import QUICK_FIND
from ticketlens.cli.main import main
from ticketlens.core.anatomy import Anatomy, TensorInfo
from ticketlens.core.run import open_run
from ticketlens.core.structure import (
    ALIVE,
    BLIND,
    CONSTANT,
    DEAD,
    expand_units,
    unit_masks,
    unit_states,
)
from ticketlens.models.anatomy import anatomy_of
from ticketlens.models.load import build_preset
from ticketlens.pruning import structured
from ticketlens.pruning.earlybird import EarlyBird, resolve_every
from ticketlens.pruning.masking import MaskEnforcer


def _model(name: str, seed: int = 0):
    m = build_preset(name, vocab_size=50, num_labels=2, pad_id=0, seed=seed).model
    if name in ("tiny-bert", "tiny-llama"):
        m.config._attn_implementation = "eager"  # attention maps are read
    return m.eval()


def _batch(seed: int = 0, n: int = 3, length: int = 7) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(1, 50, (n, length), generator=g),
            "attention_mask": torch.ones(n, length, dtype=torch.long)}


def _randomise_biases(model, seed: int = 1) -> None:
    """Preset biases start at zero; real models' do not (the constant states need them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


# ----------------------------------------------------------------------------- GQA
def test_gqa_one_query_head_off_keeps_the_shared_kv_and_round_trips():
    """LlamaConfig(num_attention_heads=4, num_key_value_heads=2): query heads 0 and 1 share
    K/V head 0. Pruning head 0 alone must keep the shared K/V rows (head 1 still reads them),
    and reading the mask back must find head 0 dead and head 1 alive."""
    a = anatomy_of(_model("tiny-llama"))
    assert (a.num_heads, a.num_kv_heads) == (4, 2)
    head = np.ones((a.num_layers, a.num_heads), bool)
    head[0, 0] = False
    masks = expand_units(a, head=head)
    k = next(t for t in a.layer_tensors(0) if t.role == "k")
    q = next(t for t in a.layer_tensors(0) if t.role == "q")
    assert masks[k.name].all()  # the shared K/V slice stays
    assert not masks[q.name][: a.head_dim].any() and masks[q.name][a.head_dim:].all()
    u = unit_masks(a, masks)
    np.testing.assert_array_equal(u.head, head)
    # both heads of the group off: now K/V head 0 goes too, and still round-trips
    head[0, 1] = False
    masks = expand_units(a, head=head)
    assert not masks[k.name][: a.head_dim].any() and masks[k.name][a.head_dim:].all()
    np.testing.assert_array_equal(unit_masks(a, masks).head, head)


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-distilbert", "tiny-gpt2", "tiny-llama"])
def test_unit_masks_round_trip_every_family(name):
    a = anatomy_of(_model(name))
    rng = np.random.default_rng(0)
    head = rng.random((a.num_layers, a.num_heads)) < 0.6
    neuron = rng.random((a.num_layers, a.intermediate)) < 0.6
    u = unit_masks(a, expand_units(a, head=head, neuron=neuron))
    np.testing.assert_array_equal(u.head, head)
    np.testing.assert_array_equal(u.neuron, neuron)


# ----------------------------------------------------------------------------- dead vs blind
def _head_context(model, a: Anatomy, layer: int, head: int, batch) -> torch.Tensor:
    """The head's output before the output projection (the O module's input slice)."""
    o = next(t for t in a.layer_tensors(layer) if t.role == "o")
    got = {}
    mod = model.get_submodule(o.name.rsplit(".", 1)[0])
    h = mod.register_forward_pre_hook(lambda m, args: got.setdefault("x", args[0].detach()))
    with torch.no_grad():
        model(**batch)
    h.remove()
    d = a.head_dim
    return got["x"][..., head * d:(head + 1) * d]


def _prune_head_part(model, a: Anatomy, layer: int, head: int, part: str):
    masks = {t.name: torch.ones(t.shape, dtype=torch.bool) for t in a.tensors}
    s = a.head_slices(layer, head)[part]
    masks[s.name][s.index()] = False
    MaskEnforcer(model, masks).apply_to_weights()
    return {k: v.numpy() for k, v in masks.items()}


def test_head_states_by_forward_pass():
    """Reference: the forward pass itself (eager attention), not the definitions."""
    b1, b2 = _batch(0), _batch(1)
    # O pruned: DEAD, the head adds exactly nothing -- scrambling its Q, K, V changes nothing
    m = _model("tiny-bert")
    a = anatomy_of(m)
    _randomise_biases(m)
    masks = _prune_head_part(m, a, 1, 2, "o")
    assert unit_states(a, masks).head[1, 2] == DEAD
    with torch.no_grad():
        before = m(**b1).logits
        for part in "qkv":
            s = a.head_slices(1, 2)[part]
            m.get_parameter(s.name)[s.index()] += 3.0
        assert torch.equal(m(**b1).logits, before)
    # V pruned: CONSTANT, the head's output is the same vector (b_V) for every token and input
    m = _model("tiny-bert")
    _randomise_biases(m)
    masks = _prune_head_part(m, a, 1, 2, "v")
    assert unit_states(a, masks).head[1, 2] == CONSTANT
    c1, c2 = _head_context(m, a, 1, 2, b1), _head_context(m, a, 1, 2, b2)
    assert torch.allclose(c1, c1[0, 0].expand_as(c1), atol=1e-6)
    assert torch.allclose(c1[0, 0], c2[0, 0], atol=1e-6) and c1.abs().max() > 0
    # K pruned: BLIND, it attends uniformly but its output still depends on the input
    m = _model("tiny-bert")
    _randomise_biases(m)
    masks = _prune_head_part(m, a, 1, 2, "k")
    assert unit_states(a, masks).head[1, 2] == BLIND
    with torch.no_grad():
        att = m(**b1, output_attentions=True).attentions[1][:, 2]
    assert torch.allclose(att, torch.full_like(att, 1 / att.shape[-1]), atol=1e-6)
    c1 = _head_context(m, a, 1, 2, b1)
    assert not torch.allclose(c1, c1[0, 0].expand_as(c1), atol=1e-4)
    # Q pruned (with a Q bias): BLIND, the pattern no longer depends on the query
    m = _model("tiny-bert")
    _randomise_biases(m)
    masks = _prune_head_part(m, a, 1, 2, "q")
    assert unit_states(a, masks).head[1, 2] == BLIND
    with torch.no_grad():
        att = m(**b1, output_attentions=True).attentions[1][:, 2]  # (batch, query, key)
    assert torch.allclose(att, att[:, :1].expand_as(att), atol=1e-6)
    # untouched heads are ALIVE, and survival agrees with the states
    assert unit_states(a, masks).head[0, 0] == ALIVE


def test_neuron_states_by_forward_pass():
    """Input side pruned: the neuron's activation is act(b_in), the same for every input
    (CONSTANT); output side pruned: its input row does not matter (DEAD)."""
    m = _model("tiny-bert")
    a = anatomy_of(m)
    _randomise_biases(m)
    fin = next(t for t in a.layer_tensors(0) if t.role == "ffn_in")
    fout = next(t for t in a.layer_tensors(0) if t.role == "ffn_out")
    masks = {t.name: torch.ones(t.shape, dtype=torch.bool) for t in a.tensors}
    masks[fin.name][5] = False
    MaskEnforcer(m, masks).apply_to_weights()
    st = unit_states(a, {k: v.numpy() for k, v in masks.items()})
    assert st.neuron[0, 5] == CONSTANT and st.neuron[0, 6] == ALIVE
    got = []
    mod = m.get_submodule(fout.name.rsplit(".", 1)[0])
    h = mod.register_forward_pre_hook(lambda mm, args: got.append(args[0][..., 5].detach()))
    with torch.no_grad():
        m(**_batch(0))
        m(**_batch(1))
    h.remove()
    assert torch.allclose(got[0], got[0].reshape(-1)[0].expand_as(got[0]), atol=1e-6)
    assert torch.allclose(got[0].reshape(-1)[0], got[1].reshape(-1)[0])
    # output side pruned: DEAD
    m = _model("tiny-bert")
    _randomise_biases(m)
    masks = {t.name: torch.ones(t.shape, dtype=torch.bool) for t in a.tensors}
    masks[fout.name][:, 5] = False
    MaskEnforcer(m, masks).apply_to_weights()
    assert unit_states(a, {k: v.numpy() for k, v in masks.items()}).neuron[0, 5] == DEAD
    with torch.no_grad():
        before = m(**_batch(0)).logits
        m.get_parameter(fin.name)[5] += 2.0
        assert torch.equal(m(**_batch(0)).logits, before)


# ----------------------------------------------------------------------------- importance
def _small_anatomy() -> Anatomy:
    ts = (TensorInfo("q", 0, "q", (4, 3)), TensorInfo("k", 0, "k", (4, 3)),
          TensorInfo("v", 0, "v", (4, 3)), TensorInfo("o", 0, "o", (3, 4)),
          TensorInfo("fi", 0, "ffn_in", (2, 3)), TensorInfo("fo", 0, "ffn_out", (3, 2)))
    return Anatomy("bert", 1, 2, 2, 2, 3, 2, ts)


def test_magnitude_importance_hand_computation():
    a = _small_anatomy()
    w = {t.name: torch.zeros(t.shape) for t in a.tensors}
    w["q"][0, 0] = 3.0  # head 0's Q rows are 0:2
    w["o"][1, 1] = 4.0  # head 0's O columns are 0:2
    w["v"][2, 2] = 1.0  # head 1's V rows are 2:4
    w["fi"][1, 0] = 2.0  # neuron 1's input row
    w["fo"][0, 1] = 2.0  # neuron 1's output column
    s = structured.magnitude_importance(a, w, ("head", "neuron"))
    np.testing.assert_allclose(s["head"], [[5.0, 1.0]])  # sqrt(9 + 16), sqrt(1)
    np.testing.assert_allclose(s["neuron"], [[0.0, np.sqrt(8.0)]])


def test_gradient_importance_matches_a_finite_difference():
    """Michel et al.'s importance |dL/d gate| per head and neuron, normalised per layer by
    its L2 norm, against a central finite difference of the loss in each gate."""
    torch.manual_seed(0)
    m = _model("tiny-bert").double()
    a = anatomy_of(m)
    batch = {**_batch(2, n=4), "labels": torch.tensor([0, 1, 1, 0])}
    got = structured.gradient_importance(m, a, ("head", "neuron"), [batch])
    eps = 1e-5

    def loss_with(kind: str, layer: int, i: int, value: float) -> float:
        with structured.UnitGates(m, a, (kind,)) as g, torch.no_grad():
            gate = g.head if kind == "head" else g.neuron
            gate[layer, i] = value
            return float(m(**batch).loss)

    for kind, n in (("head", a.num_heads), ("neuron", 6)):
        for layer in (0, 3):
            fd = np.array([abs(loss_with(kind, layer, i, 1 + eps)
                               - loss_with(kind, layer, i, 1 - eps)) / (2 * eps)
                           for i in range(n)])
            ref = got[kind][layer, :n]
            if kind == "head":  # the whole layer is known: normalise it like the paper
                fd = fd / np.linalg.norm(fd)
                np.testing.assert_allclose(ref, fd, rtol=1e-5, atol=1e-9)
            else:  # a prefix of the neurons: compare the direction
                np.testing.assert_allclose(ref / np.linalg.norm(ref), fd / np.linalg.norm(fd),
                                           rtol=1e-5, atol=1e-9)
    assert all(p.requires_grad for p in m.parameters())  # left as it was


def test_prune_units_global_and_per_layer():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [0.2, 0.05, 0.7, 0.6]])
    alive = np.ones((2, 4), bool)
    alive[1, 1] = False  # already pruned: not counted, not chosen
    g = structured.prune_units(scores, alive, 0.5, "global")  # round(3.5) = 4 go: .1 .2 .3 .5
    np.testing.assert_array_equal(g, [[False, False, False, True], [False, False, True, True]])
    per = structured.prune_units(scores, alive, 0.5, "layer")  # 2 of 4, round(1.5) = 2 of 3
    np.testing.assert_array_equal(per, [[False, True, False, True], [False, False, True, False]])
    per = structured.prune_units(scores, alive, 0.25, "layer")  # 1 of 4; round(0.75) = 1
    np.testing.assert_array_equal(per, [[False, True, True, True], [False, False, True, True]])
    keep = structured.prune_units_to(scores, np.array([1, 2]), "layer")
    np.testing.assert_array_equal(keep, [[False, False, False, True],
                                         [False, False, True, True]])


def test_random_units_keep_per_layer_counts():
    rng = np.random.default_rng(0)
    u = structured.Units(rng.random((3, 8)) < 0.5, rng.random((3, 20)) < 0.3)
    r = structured.random_units_like(u, np.random.default_rng(1))
    np.testing.assert_array_equal(r.head.sum(1), u.head.sum(1))
    np.testing.assert_array_equal(r.neuron.sum(1), u.neuron.sum(1))
    assert not np.array_equal(r.neuron, u.neuron)


# ----------------------------------------------------------------------------- find
@pytest.mark.parametrize("model,granularity,importance,scope", [
    ("tiny-bert", "unit", "magnitude", "global"),
    ("tiny-llama", "head", "gradient", "layer"),
    ("tiny-gpt2", "unit", "gradient", "global"),  # fused c_attn, Conv1D layout
    ("tiny-distilbert", "neuron", "magnitude", "layer"),
])
def test_find_structured_end_to_end(tmp_path, model, granularity, importance, scope):
    out = tmp_path / "run"
    assert main(["find", "--quiet", "--model", model, *QUICK_FIND, "--steps", "20it",
                 "--granularity", granularity, "--importance", importance, "--scope", scope,
                 "--target-sparsity", "0.5", "--oneshot-control", "--out", str(out)]) == 0
    run = open_run(out)
    a = run.anatomy
    kinds = structured.KINDS[granularity]
    for rec in run.rounds[1:]:
        head, neuron = run.drawn_units(rec.index)
        # the weight masks are exactly the expansion of the recorded unit masks
        expected = expand_units(a, head=head, neuron=neuron)
        mask = run.mask(rec.index)
        assert all(np.array_equal(mask[n], expected[n]) for n in expected)
        assert set(rec.unit_sparsity) == set(kinds)
        if scope == "layer":  # the same count in every layer
            kept = head.sum(1) if "head" in kinds else neuron.sum(1)
            assert len({int(x) for x in kept}) == 1
    ticket = run.drawn_units(None)
    assert ticket is not None
    for i, kind in enumerate(("head", "neuron")):
        if kind in kinds:
            assert run.ticket.unit_sparsity[kind] == pytest.approx(1 - ticket[i].mean())
            assert run.ticket.unit_sparsity[kind] == pytest.approx(0.5)
        else:
            assert ticket[i].all()
    # the random-mask control: the ticket's per-layer counts of heads and neurons
    data = json.loads((out / "manifest.json").read_text())
    ctrl = data["controls"]["random_mask"]
    from ticketlens.core.masks import load_masks
    cu = load_masks(out / ctrl["units"])
    np.testing.assert_array_equal(cu["head"].sum(1), ticket[0].sum(1))
    np.testing.assert_array_equal(cu["neuron"].sum(1), ticket[1].sum(1))
    assert data["controls"]["oneshot"]["unit_sparsity"] == run.ticket.unit_sparsity
    # the views read the drawn units: dead heads are exactly the pruned ones
    from ticketlens.analysis.survival import survival
    s = survival(run)
    assert len(s.dead_heads) == int((~ticket[0]).sum())
    # verify reads the unit files and catches one that does not expand to the weight masks
    from ticketlens.core.errors import RunFormatError
    from ticketlens.core.masks import save_masks
    from ticketlens.core.verify import verify
    assert any(f.endswith(".units.safetensors") for f in verify(out).files)
    flipped = ticket[0].copy()
    flipped[0, 0] = not flipped[0, 0]
    save_masks(run.paths.units(run.ticket_round), {"head": flipped, "neuron": ticket[1]})
    with pytest.raises(RunFormatError, match="do not expand"):
        verify(out)


def test_a_structured_ticket_transfers_with_its_units(tmp_path):
    """transfer of a structured ticket: round 1 records the source ticket's units (not every
    unit kept), and the random-mask control keeps the ticket's per-layer counts of heads and
    neurons (it trained the dense model before)."""
    src = tmp_path / "src"
    assert main(["find", "--quiet", *QUICK_FIND, "--steps", "20it", "--granularity", "unit",
                 "--target-sparsity", "0.5", "--no-controls", "--out", str(src)]) == 0
    out = tmp_path / "to-agreement"
    assert main(["transfer", str(src), "--task", "agreement", "--train-size", "256",
                 "--dev-size", "128", "-o", str(out), "--quiet"]) == 0
    source, run = open_run(src), open_run(out)
    head, neuron = source.drawn_units(None)
    assert run.rounds[1].unit_sparsity == source.ticket.unit_sparsity
    assert run.rounds[1].unit_sparsity["head"] == pytest.approx(0.5)
    h1, n1 = run.drawn_units(1)
    np.testing.assert_array_equal(h1, head)
    np.testing.assert_array_equal(n1, neuron)
    data = json.loads((out / "manifest.json").read_text())
    from ticketlens.core.masks import load_masks
    cu = load_masks(out / data["controls"]["random_mask"]["units"])
    np.testing.assert_array_equal(cu["head"].sum(1), head.sum(1))
    np.testing.assert_array_equal(cu["neuron"].sum(1), neuron.sum(1))
    assert run.controls["random_mask"].sparsity == pytest.approx(run.rounds[1].sparsity,
                                                                 abs=0.02)
    from ticketlens.core.verify import verify
    verify(out)  # the unit files expand to the weight masks


def test_structured_bad_input_is_one_line(tmp_path, capsys):
    args = ["find", "--quiet", *QUICK_FIND, "--out", str(tmp_path / "r")]
    assert main([*args, "--granularity", "head", "--include", "*intermediate*"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no complete attention heads" in err
    assert main([*args, "--importance", "gradient"]) == 2
    assert "--granularity head, neuron or unit" in capsys.readouterr().err
    assert main([*args, "--granularity", "unit", "--scope", "tensor"]) == 2
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- early-bird
def test_early_bird_stops_when_the_window_settles():
    """You et al. 2020's rule: the largest of the last `window` distances below epsilon."""
    draws = iter([np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0]),
                  np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0])])
    eb = EarlyBird(lambda: next(draws), every=10, epsilon=0.1, window=2, not_before=0)
    stop = next(s for s in range(1, 51) if eb(s))  # as train_phase: the phase ends there
    assert [d["distance"] for d in eb.draws] == [None, 0.5, 0.0, 0.0]
    assert stop == 40 and eb.stopped_at == 40
    assert eb.record(100)["steps_saved"] == 60
    assert resolve_every("auto", 400, 10) == 20 and resolve_every("0.5ep", 400, 10) == 5


def test_find_early_bird_records_the_stop(tmp_path):
    out = tmp_path / "eb"
    assert main(["find", "--quiet", *QUICK_FIND, "--steps", "60it", "--early-bird",
                 "--early-bird-every", "4it", "--early-bird-epsilon", "0.5",
                 "--early-bird-window", "2", "--target-sparsity", "0.5", "--no-controls",
                 "--out", str(out)]) == 0
    run = open_run(out)
    eb = run.manifest.extra["early_bird"]
    assert eb["stopped_at"] is not None and eb["stopped_at"] % 4 == 0
    assert run.rounds[0].steps == eb["stopped_at"]  # dense training stopped there
    assert eb["steps_saved"] == 60 - eb["stopped_at"]
    assert [r.index for r in run.rounds] == [0, 1]  # one step to the target
    assert run.ticket.sparsity == pytest.approx(0.5, abs=1e-4)
