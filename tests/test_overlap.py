"""Overlap statistics against hand computations and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ticketlens.analysis.bits import from_bool
from ticketlens.analysis.overlap import (
    chance_intersection,
    fleiss_kappa_from_counts,
    group_summary,
    overlap,
    overlap_bits,
)
from ticketlens.core.anatomy import Anatomy, TensorInfo


def _bits(masks):
    return from_bool([{k: np.array(v, dtype=bool) for k, v in m.items()} for m in masks],
                     {"t0": 0, "t1": 1})


def test_pair_figures_by_hand():
    a = {"t0": [1, 1, 1, 0, 0, 0, 0, 0], "t1": [1, 0]}
    b = {"t0": [1, 1, 0, 1, 0, 0, 0, 0], "t1": [1, 1]}
    r = overlap_bits(["a", "b"], _bits([a, b]), "weight")
    (p,) = r.pairs
    # kept a = 4, kept b = 5, both = 3 (t0: 2, t1: 1), union = 6, total 10
    assert (p.kept_a, p.kept_b, p.intersection, p.union, p.total) == (4, 5, 3, 6, 10)
    assert p.jaccard == pytest.approx(3 / 6)
    assert p.overlap_coefficient == pytest.approx(3 / 4)
    assert p.hamming == pytest.approx(3 / 10)  # positions that differ: t0[2], t0[3], t1[1]
    # chance, per stratum: t0 3*3/8, t1 1*2/2 (t1 of b is full: a certain overlap)
    expected = 3 * 3 / 8 + 1 * 2 / 2
    assert p.expected_intersection == pytest.approx(expected)
    assert p.jaccard_chance == pytest.approx(expected / (4 + 5 - expected))
    assert r.super_survivors_observed == 3
    assert r.super_survivors_expected == pytest.approx(8 * (3 / 8) * (3 / 8) + 2 * 0.5 * 1.0)


@pytest.mark.parametrize("sizes", [(130, 0, 64, 1), (0, 7), (5, 0)])
def test_bit_counts_match_boolean_arrays_with_empty_and_ragged_strata(sizes):
    """The packed counts (per stratum: kept, every pair's intersection, kept by all) equal
    numpy's on the boolean arrays, for strata of 0 items and of sizes off the 64-bit words."""
    rng = np.random.default_rng(len(sizes))
    names = [f"t{i}" for i in range(len(sizes))]
    masks = [{n: rng.random(k) < 0.6 for n, k in zip(names, sizes)} for _ in range(5)]
    bits = from_bool(masks, dict.fromkeys(names, 0))
    kept = [[int(m[n].sum()) for n in names] for m in masks]
    assert bits.kept().tolist() == kept
    inter = bits.intersections()
    for a in range(5):
        for b in range(5):
            assert inter[a, b].tolist() == [int((masks[a][n] & masks[b][n]).sum())
                                            for n in names]
    assert bits.all_kept().tolist() == [int(np.logical_and.reduce([m[n] for m in masks]).sum())
                                        for n in names]


def test_chance_moments_match_scipy_hypergeom():
    ka, kb, n = np.array([30, 5, 0]), np.array([20, 7, 3]), np.array([100, 10, 4])
    mean, var = chance_intersection(ka, kb, n)
    want = [stats.hypergeom.stats(int(N), int(K), int(k), moments="mv")
            for N, K, k in zip(n, ka, kb)]
    assert mean == pytest.approx(sum(float(m) for m, _ in want))
    assert var == pytest.approx(sum(float(v) for _, v in want))


def test_p_value_single_stratum_is_exact_hypergeom():
    rng = np.random.default_rng(0)
    a = {"t0": rng.random(200) < 0.5}
    b = {"t0": a["t0"] | (rng.random(200) < 0.2)}
    bits = from_bool([a, b], {"t0": 0})
    (p,) = overlap_bits(["a", "b"], bits, "weight").pairs
    want = stats.hypergeom.sf(p.intersection - 1, 200, p.kept_a, p.kept_b)
    assert p.p_value == pytest.approx(want)
    assert p.p_value < 0.01  # b is built from a: far above chance


def test_independent_masks_are_at_chance():
    rng = np.random.default_rng(1)
    masks = [{"t0": rng.random(20000) < 0.3, "t1": rng.random(5000) < 0.8} for _ in range(4)]
    r = overlap_bits(list("abcd"), from_bool(masks, {"t0": 0, "t1": 1}), "weight")
    for p in r.pairs:
        assert p.jaccard == pytest.approx(p.jaccard_chance, rel=0.03)
        assert p.p_value > 0.001
    assert r.fleiss_kappa == pytest.approx(r.fleiss_kappa_chance, abs=0.02)
    assert r.super_survivors_observed == pytest.approx(r.super_survivors_expected, rel=0.1)


def _fleiss_by_items(ratings: np.ndarray) -> float:
    """Fleiss' kappa from its textbook definition; ratings (items, raters) in {0, 1}."""
    n_items, m = ratings.shape
    counts = np.stack([(ratings == 0).sum(1), (ratings == 1).sum(1)], axis=1)
    p_i = ((counts**2).sum(1) - m) / (m * (m - 1))
    p_j = counts.sum(0) / (n_items * m)
    p_e = (p_j**2).sum()
    return (p_i.mean() - p_e) / (1 - p_e)


def test_fleiss_kappa_matches_textbook_formula():
    rng = np.random.default_rng(2)
    base = rng.random(300) < 0.4
    masks = [{"t0": base ^ (rng.random(300) < 0.15)} for _ in range(5)]
    r = overlap_bits(list("abcde"), from_bool(masks, {"t0": 0}), "weight")
    ratings = np.stack([m["t0"] for m in masks], axis=1).astype(int)
    assert r.fleiss_kappa == pytest.approx(_fleiss_by_items(ratings))
    kept = ratings.sum(0)
    inter = sum(int((ratings[:, i] & ratings[:, j]).sum()) for i in range(5)
                for j in range(i + 1, 5))
    assert fleiss_kappa_from_counts(kept, inter, 300, 5) == pytest.approx(r.fleiss_kappa)


def _anatomy():
    ts = (TensorInfo("l0.q", 0, "q", (4, 4)), TensorInfo("l0.k", 0, "k", (4, 4)),
          TensorInfo("l0.v", 0, "v", (4, 4)), TensorInfo("l0.o", 0, "o", (4, 4)),
          TensorInfo("l0.in", 0, "ffn_in", (6, 4)), TensorInfo("l0.out", 0, "ffn_out", (4, 6)))
    return Anatomy("bert", 1, 2, 2, 2, 4, 6, ts)


def test_unit_level_overlap_from_weight_masks():
    a = _anatomy()
    ones = {t.name: torch.ones(t.shape, dtype=torch.bool) for t in a.tensors}
    m1 = {k: v.clone() for k, v in ones.items()}
    m1["l0.v"][0:2] = False  # head 0 dead (its V rows: it adds a constant)
    m2 = {k: v.clone() for k, v in ones.items()}
    m2["l0.o"][:, 2:4] = False  # head 1 dead (its O columns: it adds nothing)
    m2["l0.in"][5] = False  # neuron 5 dead
    r = overlap([("x", a, m1), ("y", a, m2)], by="head")
    (p,) = r.pairs
    assert (p.kept_a, p.kept_b, p.intersection, p.total) == (1, 1, 0, 2)
    # an attention-blind head (its Q rows pruned) still adds a mix of V: alive
    m3 = {k: v.clone() for k, v in ones.items()}
    m3["l0.q"][0:2] = False
    (p,) = overlap([("x", a, m1), ("z", a, m3)], by="head").pairs
    assert (p.kept_a, p.kept_b, p.intersection) == (1, 2, 1)
    rn = overlap([("x", a, m1), ("y", a, m2)], by="neuron")
    assert (rn.pairs[0].kept_a, rn.pairs[0].kept_b, rn.pairs[0].intersection) == (6, 5, 5)


def test_group_summary():
    rng = np.random.default_rng(3)
    base = rng.random(1000) < 0.5
    masks = [{"t0": base ^ (rng.random(1000) < 0.05)}, {"t0": base ^ (rng.random(1000) < 0.05)},
             {"t0": rng.random(1000) < 0.5}]
    r = overlap_bits(["a1", "a2", "b1"], from_bool(masks, {"t0": 0}), "weight")
    g = group_summary(r, {"a1": "A", "a2": "A", "b1": "B"})
    assert g.within_pairs == 1 and g.across_pairs == 2
    assert g.within_jaccard > g.across_jaccard


def test_network_graph_cut_offs_by_hand():
    from ticketlens.analysis.graph import network_graph

    a = _anatomy()  # 1 layer: 2 heads of 2 dims, hidden 4, 6 FFN neurons
    m = {t.name: torch.ones(t.shape, dtype=torch.bool) for t in a.tensors}
    m["l0.o"][:, 0:2] = False  # head 0 writes nothing: cut off from the output
    m["l0.q"][2:4] = False  # head 1 still reads through K and V
    m["l0.in"][3] = False  # neuron 3 reads nothing: cut off from the input
    m["l0.out"][:, 4] = False  # neuron 4 writes nothing
    m["l0.out"][1:, 5] = False  # neuron 5 writes only residual dim 0
    r = network_graph(a, m)
    assert set(r.cut_from_output) == {"L0H0", "L0N4"}
    assert set(r.cut_from_input) == {"L0N3"}
    g = r.graph
    assert not g.has_edge("L0H0", "L0N0")
    # head 1 writes 4 dims x 2 kept O columns each = 2 per dim; neuron 0 reads 1 per dim
    assert g.edges["L0H1", "L0N0"]["weight"] == 4 * 2 * 1
    assert g.edges["L0H1", "L0N5"]["weight"] == 8
    assert r.strongest_path[0] == "L0H1" and len(r.strongest_path) == 2
