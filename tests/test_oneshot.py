"""One-shot pruners (magnitude, Wanda, SparseGPT) and N:M patterns.

References: Sun et al. 2023 (Wanda; code locuslab/wanda lib/prune.py), Frantar & Alistarh 2023
(SparseGPT; code IST-DASLab/sparsegpt sparsegpt.py), Hassibi & Stork 1993 (OBS), Mishra et
al. 2021 (2:4 sparsity).
"""

from __future__ import annotations

import copy

import pytest
import torch

from ticketlens.core.anatomy import Anatomy, TensorInfo
from ticketlens.core.errors import ConfigError
from ticketlens.data.batching import TensorData
from ticketlens.data.tokenizer import Encoded
from ticketlens.models.anatomy import anatomy_of
from ticketlens.pruning.oneshot import (
    calibration_batches,
    layer_error,
    magnitude_mask,
    oneshot_prune,
    pick_calibration,
    sparsegpt_prune,
    wanda_mask,
    wanda_scores,
)
from ticketlens.pruning.patterns import (
    Pattern,
    is_nm,
    nm_magnitude_masks,
    nm_mask,
    parse_pattern,
)
from ticketlens.testing import tiny_model

FAMILIES = ("bert", "distilbert", "gpt2", "llama")


# ---------------------------------------------------------------------------- N:M patterns
def test_parse_pattern():
    assert parse_pattern("unstructured") is None
    assert parse_pattern(" Unstructured ") is None
    assert parse_pattern("2:4") == Pattern(2, 4)
    assert parse_pattern("4:8") == Pattern(4, 8)
    assert parse_pattern("1:1").sparsity == 0.0
    assert parse_pattern("2:4").sparsity == 0.5 and str(parse_pattern("2:4")) == "2:4"
    for bad in ("5:4", "0:4", "2-4", "abc", "2:4:8", "-1:4", "", "2:"):
        with pytest.raises(ConfigError) as exc:
            parse_pattern(bad)
        assert "\n" not in str(exc.value)


def _groups_by_hand(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """(out, in) keep mask: in each row, each run of m columns keeps its n largest."""
    keep = torch.zeros(scores.shape, dtype=torch.bool)
    for r in range(scores.shape[0]):
        for g in range(0, scores.shape[1], m):
            order = sorted(range(g, g + m), key=lambda j: -float(scores[r, j]))
            keep[r, order[:n]] = True
    return keep


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4)])
def test_nm_mask_linear_and_conv1d(n, m):
    """Mishra et al. 2021: N kept of every M consecutive weights of one output's inputs."""
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 16, generator=g)  # linear: (out 6, in 16)
    keep = nm_mask(scores, n, m, "linear")
    assert torch.equal(keep, _groups_by_hand(scores, n, m))
    assert is_nm(keep, n, m, "linear")
    assert keep.sum() == 6 * 16 * n // m
    # conv1d (GPT-2): (in 16, out 6); groups run down the columns (dim 0)
    conv = scores.t().contiguous()
    keep_c = nm_mask(conv, n, m, "conv1d")
    assert keep_c.shape == (16, 6)
    assert torch.equal(keep_c, _groups_by_hand(scores, n, m).t())
    assert is_nm(keep_c, n, m, "conv1d")
    # the same mask read along the wrong axis is not N:M (rows of 6 are not groups of m)
    assert not is_nm(keep_c, n, m, "linear")


def test_is_nm_is_exact():
    keep = nm_mask(torch.arange(16.0).reshape(2, 8), 2, 4)
    assert torch.equal(keep[0], torch.tensor([False, False, True, True] * 2))
    assert is_nm(keep, 2, 4)
    one_more = keep.clone()
    one_more[0, 0] = True  # 3 of 4 in one group
    assert not is_nm(one_more, 2, 4)
    one_less = keep.clone()
    one_less[1, 7] = False
    assert not is_nm(one_less, 2, 4)
    assert not is_nm(torch.ones(2, 6, dtype=torch.bool), 2, 4)  # 6 is not a multiple of 4


def test_nm_rejects_bad_shapes_and_patterns():
    with pytest.raises(ConfigError, match="not a multiple of M=4"):
        nm_mask(torch.rand(3, 6), 2, 4, "linear")
    with pytest.raises(ConfigError, match="not a multiple of M=4"):
        nm_mask(torch.rand(6, 3), 2, 4, "conv1d")  # conv1d: in is dim 0 (6)
    with pytest.raises(ConfigError):
        nm_mask(torch.rand(4, 8), 5, 4)
    with pytest.raises(ConfigError):
        nm_mask(torch.rand(4, 8), 2, 4, "conv2d")


def test_nm_magnitude_masks_per_layout():
    g = torch.Generator().manual_seed(1)
    w_lin, w_conv = torch.randn(4, 8, generator=g), torch.randn(8, 4, generator=g)
    masks = nm_magnitude_masks({"a": w_lin, "b": w_conv}, {"a": "linear", "b": "conv1d"}, 2, 4)
    assert torch.equal(masks["a"], _groups_by_hand(w_lin.abs(), 2, 4))
    assert torch.equal(masks["b"], _groups_by_hand(w_conv.abs().t(), 2, 4).t())
    assert masks["a"].dtype == torch.bool and masks["a"].device.type == "cpu"


# ---------------------------------------------------------------------------- Wanda
# A 2x4 layer and 3 calibration tokens whose input columns have norms 5, 1, 2, 1.
W_HAND = torch.tensor([[1.1, -2.0, 3.0, 0.5],
                       [4.0, 1.5, -1.0, 3.0]])
X_HAND = torch.tensor([[3.0, 0.0, 0.0, 1.0],
                       [4.0, 1.0, 0.0, 0.0],
                       [0.0, 0.0, 2.0, 0.0]])  # (tokens, in)


def test_wanda_scores_by_hand():
    """Sun et al. 2023, Eq. 1: S_ij = |W_ij| * ||X_j||_2, compared within each output row."""
    sq = (X_HAND ** 2).sum(0)
    assert torch.equal(sq, torch.tensor([25.0, 1.0, 4.0, 1.0]))
    scores = wanda_scores(W_HAND, sq)
    assert torch.allclose(scores, torch.tensor([[5.5, 2.0, 6.0, 0.5],
                                                [20.0, 1.5, 2.0, 3.0]]))
    keep = wanda_mask(scores, 0.5)
    # row 0 drops 0.5 and 2.0 (columns 3, 1); row 1 drops 1.5 and 2.0 (columns 1, 2)
    assert keep.tolist() == [[True, False, True, False], [True, False, False, True]]
    # magnitude (one threshold for the layer) keeps another set: 0.5, 1.0, 1.1, 1.5 go
    assert magnitude_mask(W_HAND, 0.5).tolist() == [[False, True, True, False],
                                                    [True, False, False, True]]
    # 2:4 on the same scores keeps the 2 best of each run of 4: here the same as 50%
    assert torch.equal(wanda_mask(scores, 0.5, Pattern(2, 4)), keep)


def test_wanda_compares_per_output_row():
    """Per output (Wanda), not per layer: a row of large weights still loses half of them."""
    w = torch.cat([torch.full((1, 8), 10.0), torch.ones(1, 8)]) + torch.arange(8.0) / 100
    keep = wanda_mask(wanda_scores(w, torch.ones(8)), 0.5)
    assert keep.sum(1).tolist() == [4, 4]
    assert keep[:, 4:].all() and not keep[:, :4].any()
    assert magnitude_mask(w, 0.5)[0].all()  # the layer-wide threshold empties row 1 instead


class _Toy(torch.nn.Module):
    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.lin = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.lin.weight.copy_(weight)

    def forward(self, x):
        return self.lin(x)


def _toy_anatomy(shape) -> Anatomy:
    return Anatomy("toy", 1, 0, 0, 0, shape[1], shape[0],
                   tensors=(TensorInfo("lin.weight", 0, "other", tuple(shape)),))


def test_oneshot_wanda_collects_input_norms_by_hand():
    """The pipeline (hooks, padding left out) gives the hand-computed Wanda mask."""
    model = _Toy(W_HAND)
    pad = torch.full((1, 4), 100.0)  # a padding token: must not count
    batches = [{"x": torch.cat([X_HAND[:2], pad]).unsqueeze(0),
                "attention_mask": torch.tensor([[1, 1, 0]])},
               {"x": X_HAND[2:].unsqueeze(0), "attention_mask": torch.tensor([[1]])}]
    res = oneshot_prune(model, _toy_anatomy(W_HAND.shape), None, batches, "wanda", 0.5,
                        forward=lambda m, b: m(b["x"]))
    assert res.masks["lin.weight"].tolist() == [[True, False, True, False],
                                                [True, False, False, True]]
    assert res.stats[0].tokens == 3
    kept = W_HAND * res.masks["lin.weight"]
    assert torch.equal(res.weights["lin.weight"], kept)
    direct = float((((W_HAND - kept) @ X_HAND.t()) ** 2).sum())  # ||W X - W' X||^2
    assert res.stats[0].error == pytest.approx(direct, rel=1e-5)
    assert torch.equal(model.lin.weight, W_HAND)  # unchanged


# ---------------------------------------------------------------------------- SparseGPT
def test_sparsegpt_update_is_the_obs_formula_by_hand():
    """Frantar & Alistarh 2023, Eq. 3 (OBS, Hassibi & Stork 1993): pruning w_q moves the row
    by delta = -w_q / [H^-1]_qq * H^-1_{:,q}, with H^-1 of the columns not yet visited.

    H = blockdiag(A, A), A = [[2, 1], [1, 2]], so H^-1 = blockdiag(A^-1, A^-1) with
    A^-1 = 1/3 [[2, -1], [-1, 2]]. Row 0 prunes w_0 = 1 (all columns free): delta = -1 / (2/3)
    * (2/3, -1/3, 0, 0) = (-1, 1/2, 0, 0). Row 1 prunes w_2 = 7 once columns 0, 1 are fixed:
    F = {2, 3}, delta = -7 / (2/3) * (2/3, -1/3) = (-7, 7/2) on columns 2, 3.
    The OBS loss is w_q^2 / [H^-1]_qq: 1 / (2/3) + 49 / (2/3) = 75.
    """
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    h = torch.tensor([[2.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0],
                      [0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 2.0]])
    keep = torch.tensor([[False, True, True, True], [True, True, False, True]])
    new, mask = sparsegpt_prune(w, h, 0.0, mask=keep, percdamp=0.0)
    assert torch.equal(mask, keep)
    assert torch.allclose(new, torch.tensor([[0.0, 2.5, 3.0, 4.0], [5.0, 6.0, 0.0, 11.5]]),
                          atol=1e-5)
    assert layer_error(w, new, h) == pytest.approx(75.0, rel=1e-5)


def test_sparsegpt_first_column_matches_obs_on_a_random_hessian():
    """The same formula with an independent inverse (float64, torch.linalg.inv), dense H."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64) @ \
        torch.randn(6, 6, generator=g, dtype=torch.float64)
    h = x.t() @ x
    w = torch.randn(3, 6, generator=g, dtype=torch.float64)
    keep = torch.ones(3, 6, dtype=torch.bool)
    keep[:, 0] = False
    new, _ = sparsegpt_prune(w, h, 0.0, mask=keep, percdamp=0.0)
    hinv = torch.linalg.inv(h)
    delta = -(w[:, :1] / hinv[0, 0]) * hinv[:, 0].reshape(1, -1)
    assert torch.allclose(new.double(), w + delta, atol=1e-4)
    assert (new[:, 0] == 0).all()


def _correlated_layer(seed: int = 0):
    """A 32x128 layer fed 1,024 tokens whose 128 features are strongly correlated (rank-16
    mixture plus noise, scales spread over 30x): the setting where OBS updates pay."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1024, 16, generator=g)
    x = z @ torch.randn(16, 128, generator=g) + 0.1 * torch.randn(1024, 128, generator=g)
    x = x * torch.logspace(0, 1.5, 128)[torch.randperm(128, generator=g)]
    w = torch.randn(32, 128, generator=g)
    return w, x


@pytest.mark.parametrize("pattern", [None, Pattern(2, 4)], ids=["50%", "2:4"])
def test_sparsegpt_reconstructs_better_than_magnitude_and_wanda(pattern):
    """SparseGPT (Frantar & Alistarh 2023, Tables/Fig. 2-3 against magnitude; Sun et al. 2023
    Table 3 against Wanda): smaller ||W X - W' X||^2 at the same sparsity."""
    w, x = _correlated_layer()
    gram = x.t() @ x
    mag = w * magnitude_mask(w, 0.5, pattern)
    wan = w * wanda_mask(wanda_scores(w, (x ** 2).sum(0)), 0.5, pattern)
    sgpt, keep = sparsegpt_prune(w, gram, 0.5, pattern)
    assert (sgpt[~keep] == 0).all()
    if pattern is None:
        assert keep.float().mean() == 0.5
    else:
        assert is_nm(keep, 2, 4)
    errors = {name: layer_error(w, v, gram) for name, v in
              (("magnitude", mag), ("wanda", wan), ("sparsegpt", sgpt))}
    direct = float((((w - sgpt) @ x.t()) ** 2).sum())  # layer_error is ||(W - W')X||^2
    assert errors["sparsegpt"] == pytest.approx(direct, rel=1e-3)
    assert errors["sparsegpt"] < 0.5 * errors["wanda"]
    assert errors["wanda"] < errors["magnitude"]


# ---------------------------------------------------------------------------- calibration
def _data(n: int = 30) -> TensorData:
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(1, 100, (int(torch.randint(4, 12, (1,), generator=g)),),
                         generator=g).tolist() for _ in range(n)]
    return TensorData(Encoded(ids, [[0] * len(i) for i in ids]), [0] * n)


def test_calibration_is_seeded_and_recorded():
    data = _data()
    a = calibration_batches(data, 10, seed=4, pad_id=0, batch_size=4)
    b = calibration_batches(data, 10, seed=4, pad_id=0, batch_size=4)
    c = calibration_batches(data, 10, seed=5, pad_id=0, batch_size=4)
    assert a.indices == b.indices and a.indices != c.indices
    assert len(set(a.indices)) == 10 and all(0 <= i < 30 for i in a.indices)
    assert [len(x["input_ids"]) for x in a.batches] == [4, 4, 2]
    assert "labels" not in a.batches[0]
    assert a.tokens == sum(data.lengths[i] for i in a.indices)
    assert pick_calibration(30, 10, 4) == list(a.indices)
    with pytest.raises(ConfigError, match="asks for 31 examples but the training split has "
                                          "only 30") as exc:
        calibration_batches(data, 31, seed=0, pad_id=0)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError):
        pick_calibration(30, 0, 0)


# ---------------------------------------------------------------------------- whole models
def _batches(seed: int = 0, n: int = 3) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(1, 100, (4, 12), generator=g)
        attn = torch.ones_like(ids)
        attn[0, 8:] = 0  # one padded example per batch
        ids[0, 8:] = 0
        out.append({"input_ids": ids, "attention_mask": attn,
                    "token_type_ids": torch.zeros_like(ids)})
    return out


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_oneshot_prune_every_family(family, method):
    model = tiny_model(family, seed=1)
    anatomy = anatomy_of(model)
    before = copy.deepcopy(model.state_dict())
    layouts = {t.name: t.layout for t in anatomy.tensors}
    for pattern in (None, Pattern(2, 4)):
        res = oneshot_prune(model, anatomy, None, _batches(), method, 0.5, pattern)
        assert set(res.masks) == set(anatomy.names)
        for name, keep in res.masks.items():
            p = model.get_parameter(name)
            assert keep.shape == p.shape and keep.dtype == torch.bool
            assert keep.float().mean() == 0.5, name
            if pattern is not None:
                assert is_nm(keep, 2, 4, layouts[name]), name
            new = res.weights[name]
            assert new.shape == p.shape and new.dtype == p.dtype
            assert (new[~keep] == 0).all()
            if method == "sparsegpt":  # the survivors were updated
                assert not torch.equal(new[keep], p[keep])
            else:  # the survivors are the trained weights
                assert torch.equal(new[keep], p[keep])
        assert all(s.tokens == 3 * (4 * 12 - 4) for s in res.stats)  # padding left out
        assert all(0 < s.rel_error < 1 for s in res.stats)
        # the input model is untouched, in mode, weights and hooks
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
        assert not model.training
        assert not any(m._forward_pre_hooks for m in model.modules())
        again = oneshot_prune(model, anatomy, None, _batches(), method, 0.5, pattern)
        assert all(torch.equal(again.masks[n], res.masks[n]) for n in res.masks)
        assert all(torch.equal(again.weights[n], res.weights[n]) for n in res.weights)


def test_oneshot_layers_see_the_earlier_layers_pruned():
    """The statistics of layer 1 come from layer 0 already pruned (as the references' layer
    loop): recompute them by hand on a copy carrying layer 0's pruned weights."""
    model = tiny_model("bert", seed=2)
    anatomy = anatomy_of(model)
    batches = _batches(seed=1)
    layer01 = [t.name for t in anatomy.tensors if t.layer in (0, 1)]
    res = oneshot_prune(model, anatomy, layer01, batches, "sparsegpt", 0.5)
    q1 = next(t.name for t in anatomy.tensors if t.layer == 1 and t.role == "q")
    q1_module = q1.rsplit(".", 1)[0]

    def gram_of(m: torch.nn.Module) -> torch.Tensor:
        grams = []
        h = m.get_submodule(q1_module).register_forward_pre_hook(
            lambda _m, args: grams.append(args[0][batch["attention_mask"].bool()]))
        with torch.no_grad():
            for batch in batches:
                m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  token_type_ids=batch["token_type_ids"])
        h.remove()
        x = torch.cat(grams)
        return x.t() @ x

    pruned0 = copy.deepcopy(model)
    for name in layer01:
        if anatomy.tensor(name).layer == 0:
            pruned0.get_parameter(name).data = res.weights[name].clone()
    expected, _ = sparsegpt_prune(model.get_parameter(q1).detach(), gram_of(pruned0), 0.5)
    assert torch.allclose(res.weights[q1], expected, atol=1e-4)
    dense_inputs, _ = sparsegpt_prune(model.get_parameter(q1).detach(), gram_of(model), 0.5)
    assert not torch.allclose(res.weights[q1], dense_inputs, atol=1e-3)


def test_oneshot_stops_the_forward_after_the_layer():
    """Layer L's pass ends at its last prunable module: later layers never run for it."""
    model = tiny_model("gpt2", seed=0)  # 2 layers, Conv1D
    anatomy = anatomy_of(model)
    calls = {0: 0, 1: 0}
    hooks = [model.transformer.h[i].mlp.c_proj.register_forward_hook(
        lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1)) for i in (0, 1)]
    layer0 = [t.name for t in anatomy.tensors if t.layer == 0]
    oneshot_prune(model, anatomy, layer0, _batches(), "wanda", 0.5, measure_error=False)
    assert calls == {0: 0, 1: 0}  # the stop is raised before c_proj (layer 0's last) runs
    oneshot_prune(model, anatomy, None, _batches(), "wanda", 0.5, measure_error=False)
    assert calls == {0: 3, 1: 0}  # layer 1's pass: layer 0 ran once per batch
    for h in hooks:
        h.remove()


def test_oneshot_errors():
    model = tiny_model("llama", seed=0)
    anatomy = anatomy_of(model)
    with pytest.raises(ConfigError, match="unknown one-shot method"):
        oneshot_prune(model, anatomy, None, _batches(), "obs", 0.5)
    with pytest.raises(ConfigError, match=r"prunes 0\.5 of every matrix"):
        oneshot_prune(model, anatomy, None, _batches(), "wanda", 0.6, Pattern(2, 4))
    with pytest.raises(ConfigError, match=r"score\.weight: not a prunable tensor"):
        oneshot_prune(model, anatomy, ["score.weight"], _batches(), "wanda", 0.5)
    with pytest.raises(ConfigError, match="needs calibration"):
        oneshot_prune(model, anatomy, None, [], "sparsegpt", 0.5)
    with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\)"):
        oneshot_prune(model, anatomy, None, _batches(), "wanda", 1.0)
    toy = _Toy(torch.randn(4, 6))
    with pytest.raises(ConfigError, match="input dimension 6 is not a multiple of M=4"):
        oneshot_prune(toy, _toy_anatomy((4, 6)), None, [], "magnitude", None, Pattern(2, 4),
                      measure_error=False)
    # magnitude needs no data when no error is measured; the pattern fixes the sparsity
    res = oneshot_prune(model, anatomy, None, [], "magnitude", None, Pattern(2, 4),
                        measure_error=False)
    assert res.sparsity == 0.5 and all(s.error is None for s in res.stats)
    assert res.pattern == "2:4"
