"""Head roles (``ticketlens roles``, ``tl.head_roles``): the measurements against hand
computation, the pattern rule on hand-built maps, survival by role against scipy's
hypergeometric distribution, a hand-wired induction circuit, the four model families."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import SAMPLE_MASKS, run_cli
from scipy import stats

from ticketlens.analysis import role_probe as P
from ticketlens.analysis.head_roles import draw_examples, model_roles
from ticketlens.analysis.roles import (
    PATTERNS,
    HeadRole,
    HeadRolesResult,
    RoleRules,
    assign_roles,
    holm,
    kept_fraction_test,
    role_findings,
    roles_over_seeds,
    survival_by_role,
)
from ticketlens.data.tokenizer import builtin_tokenizer
from ticketlens.testing import induction_circuit, tiny_model

TEXTS = ["the movie was great , really .", "a dull , boring film",
         "i loved it", "not good at all , sadly .", "the plot was fine but slow"]


# ----------------------------------------------------------------------------- patterns
def _rows(a: np.ndarray) -> np.ndarray:
    return a / a.sum(-1, keepdims=True)


def _vertical(n: int, cols=(0, -1)) -> np.ndarray:
    a = np.full((n, n), 0.01)
    for c in cols:
        a[:, c] = 1.0
    return _rows(a)


def _diagonal(n: int) -> np.ndarray:
    a = np.full((n, n), 0.005)
    a[np.arange(1, n), np.arange(n - 1)] = 1.0  # previous token
    a[0, 0] = 1.0
    return _rows(a)


def _block(n: int, cut: int) -> np.ndarray:
    a = np.full((n, n), 0.01)
    a[:cut, :cut] = 1.0
    a[cut:, cut:] = 1.0
    return _rows(a)


def test_hand_built_maps_get_each_kovaleva_type():
    n = 16
    assert P.classify_map(_vertical(n)) == "vertical"
    assert P.classify_map(_diagonal(n)) == "diagonal"
    assert P.classify_map(_rows(_vertical(n) + _diagonal(n))) == "vertical+diagonal"
    # two segments: [CLS] a a a a a a [SEP] b b b b b b b [SEP]
    assert P.classify_map(_block(n, 8), sep_positions=(7, 15)) == "block"
    rng = np.random.default_rng(0)
    assert P.classify_map(rng.dirichlet(np.ones(n), size=n)) == "heterogeneous"
    # uniform attention is not a pattern, and one segment has no block
    assert P.classify_map(np.full((n, n), 1 / n)) == "heterogeneous"
    assert P.classify_map(_block(n, 8)) == "heterogeneous"
    # causal maps: a sink + previous token, and uniform causal attention
    causal = np.tril(np.ones((n, n)))
    assert P.classify_map(_rows(causal), causal=True) == "heterogeneous"
    sink = np.tril(np.full((n, n), 0.01))
    sink[:, 0] = 1.0
    assert P.classify_map(_rows(sink), causal=True) == "vertical"
    assert P.classify_map(np.full((3, 3), 1 / 3)) == "n/a"  # no row sees MIN_KEYS keys


def test_map_statistics_match_a_hand_computation():
    """Attention to targets and entropy against loops over one batch of random maps."""
    rng = np.random.default_rng(1)
    B, H, n = 3, 2, 9
    lengths = [9, 7, 5]
    a = np.zeros((B, H, n, n))
    for b, m in enumerate(lengths):
        a[b, :, :m, :m] = rng.dirichlet(np.ones(m), size=(H, m))
    valid = torch.tensor([[i < m for i in range(n)] for m in lengths])
    sep = torch.zeros(B, n, dtype=torch.bool)
    punct = torch.zeros(B, n, dtype=torch.bool)
    for b, m in enumerate(lengths):
        sep[b, m - 1] = True
        punct[b, 2] = True
    st, _, _ = P.map_statistics(torch.tensor(a), valid, sep, punct, causal=False)
    for h in range(H):
        want = {k: [] for k in ("first", "sep", "punct", "same", "prev", "next", "entropy",
                                "entropy_norm")}
        for b, m in enumerate(lengths):
            for i in range(m):
                row = a[b, h, i, :m]
                want["first"].append(row[0])
                want["sep"].append(row[m - 1])
                want["punct"].append(row[2])
                want["same"].append(row[i])
                want["prev"].append(row[i - 1] if i > 0 else 0.0)
                want["next"].append(row[i + 1] if i + 1 < m else 0.0)
                ent = -(row * np.log(row)).sum()
                want["entropy"].append(ent)
                want["entropy_norm"].append(ent / math.log(m))
        for k, vals in want.items():
            s, c = st[k]
            assert float(s[h] / c[h]) == pytest.approx(np.mean(vals), abs=1e-9), k


def test_a_head_attending_90_percent_to_sep_is_reported_so():
    """Head 0 gives 90% of every row to [SEP] (the last token), head 1 attends uniformly;
    the ticket keeps head 0 only."""
    n, B = 10, 4
    a = np.full((B, 2, n, n), 1 / n)
    a[:, 0] = 0.1 / (n - 1)
    a[:, 0, :, n - 1] = 0.9
    valid = torch.ones(B, n, dtype=torch.bool)
    sep = torch.zeros(B, n, dtype=torch.bool)
    sep[:, n - 1] = True
    st, types, _ = P.map_statistics(torch.tensor(a), valid, sep, torch.zeros_like(sep), False)
    means = {k: (s / c).numpy()[None] for k, (s, c) in st.items()}
    counts = np.stack([(types.numpy() == j).sum(0) for j in range(5)], -1)[None]
    heads = P.head_table(means, counts, RoleRules())
    assert heads[0].sep == pytest.approx(0.9) and heads[1].sep == pytest.approx(0.1)
    assert "sep" in heads[0].roles and "sep" not in heads[1].roles
    assert heads[0].pattern == "vertical" and heads[1].pattern == "heterogeneous"
    res = _result(heads, alive=[[True, False]])
    assert res.with_role("sep") == ["L0H0"]
    assert any(f.startswith("1 of the 1 surviving heads attend mostly to [SEP]")
               for f in role_findings(res))


# ----------------------------------------------------------------------------- survival
def _head(layer: int, h: int, roles: tuple[str, ...], pattern: str = "heterogeneous"
          ) -> HeadRole:
    return HeadRole(f"L{layer}H{h}", layer, h, *([0.1] * 6), 1.0, 0.5, pattern,
                    tuple(float(p == pattern) for p in PATTERNS), roles=(pattern, *roles))


def _result(heads, alive, kept=None, **kw) -> HeadRolesResult:
    alive = np.asarray(alive, dtype=bool)
    kept = np.asarray(kept if kept is not None else alive.astype(float))
    return HeadRolesResult("run", 1, "bert", False, True, 8, 0, tuple(range(8)),
                           alive.shape[0], alive.shape[1], RoleRules(), tuple(heads), None,
                           alive, kept, survival_by_role(heads, alive, kept), **kw)


def test_survival_by_role_is_the_hypergeometric():
    """16 heads, 8 attend to [SEP]; the ticket keeps 8 heads, 7 of them [SEP] heads."""
    sep_heads = set(range(8))
    kept_heads = {0, 1, 2, 3, 4, 5, 6, 8}
    heads = [_head(i // 4, i % 4, ("sep",) if i in sep_heads else ()) for i in range(16)]
    alive = np.zeros((4, 4), dtype=bool)
    for i in kept_heads:
        alive[i // 4, i % 4] = True
    res = _result(heads, alive)
    s = next(x for x in res.survival if x.role == "sep")
    assert (s.heads, s.kept, s.total, s.total_kept) == (8, 7, 16, 8)
    assert s.expected == pytest.approx(8 * 8 / 16)
    # scipy.stats.hypergeom: P(X >= 7) for X ~ Hypergeom(M=16, n=8 sep heads, N=8 kept)
    assert s.p_greater == pytest.approx(stats.hypergeom.sf(6, 16, 8, 8))
    assert s.p_less == pytest.approx(stats.hypergeom.cdf(7, 16, 8, 8))
    text = " ".join(role_findings(res))
    assert "7 of the 8 surviving heads attend mostly to [SEP]" in text
    assert "4.0 expected by chance" in text


def test_kept_fraction_test_is_exact_by_hand():
    """4 heads keep 0.9, 0.8, 0.3, 0.2 of their weights; the role is the first two: the
    difference of means is 0.85 - 0.25 = 0.6. Of the C(4, 2) = 6 ways to pick two heads,
    {0, 1} and {2, 3} reach |0.6|, the others |0.1| or 0: p = 2/6."""
    p = kept_fraction_test(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0], bool))
    assert p == pytest.approx(1 / 3)
    assert math.isnan(kept_fraction_test(np.full(4, 0.5), np.array([1, 0, 0, 0], bool)))


def test_kept_fraction_test_by_random_splits_estimates_the_exact_p():
    """24 heads, 5 with the role (42,504 splits, more than the 9,999 drawn): the Monte
    Carlo p-value is within its binomial error of the exact one, enumerated here by brute
    force over every split."""
    from itertools import combinations

    rng = np.random.default_rng(3)
    v = rng.uniform(0.4, 0.6, 24)
    has = np.zeros(24, bool)
    has[:5] = True
    v[:5] += 0.08
    d = v[has].mean() - v[~has].mean()
    sums = np.array([v[list(c)].sum() for c in combinations(range(24), 5)])
    exact = np.mean(np.abs(sums / 5 - (v.sum() - sums) / 19) >= abs(d) - 1e-12)
    p = kept_fraction_test(v, has, seed=0)
    assert 0.001 < exact < 0.5
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / 9999) + 1e-4
    assert kept_fraction_test(v, has, seed=0) == p  # the seed fixes the draws


def test_weight_ticket_roles_use_the_permutation_test_with_holm():
    """Every head alive (an unstructured ticket): [SEP] heads keep more of their weights
    than the others; the finding gives both means, the p-value and Holm's adjustment."""
    heads = [_head(i // 4, i % 4, ("sep",) if i < 4 else ()) for i in range(12)]
    alive = np.ones((3, 4), dtype=bool)
    kept = np.array([[0.9, 0.8, 0.85, 0.95], [0.5, 0.45, 0.55, 0.5], [0.4, 0.6, 0.5, 0.5]])
    res = HeadRolesResult("run", 1, "bert", False, False, 8, 0, tuple(range(8)), 3, 4,
                          RoleRules(), tuple(heads), None, alive, kept,
                          survival_by_role(heads, alive, kept))
    sep = next(s for s in res.survival if s.role == "sep")
    assert sep.kept_fraction == pytest.approx(0.875)
    assert sep.kept_fraction_others == pytest.approx(0.5)
    # C(12, 4) = 495 splits: exact; the 4 highest values are the [SEP] heads' own, so only
    # the observed split reaches the difference: p = 1/495 (one role tested: Holm = p)
    assert sep.p_kept_fraction == pytest.approx(1 / 495)
    assert sep.p_kept_fraction_adjusted == pytest.approx(1 / 495)
    text = " ".join(role_findings(res))
    assert "keep 87.5% of their weights, the other heads 50.0% (+37.5 points" in text
    assert "more than chance" in text
    back = HeadRolesResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.survival[-1].p_kept_fraction_adjusted == pytest.approx(1 / 495)


def test_a_ticket_that_keeps_every_head_alike_says_so():
    """A 2:4 ticket keeps exactly half of every head's Q, K, V and O: no test, one sentence."""
    heads = [_head(0, h, ("sep",) if h < 2 else ()) for h in range(4)]
    alive, kept = np.ones((1, 4), bool), np.full((1, 4), 0.5)
    res = HeadRolesResult("run", 1, "llama", True, False, 8, 0, tuple(range(8)), 1, 4,
                          RoleRules(), tuple(heads), None, alive, kept,
                          survival_by_role(heads, alive, kept))
    assert all(math.isnan(s.p_kept_fraction) for s in res.survival)
    text = " ".join(role_findings(res))
    assert "Every head keeps the same share of its weights (50.0%)" in text


def test_holm_matches_a_hand_computation():
    # p = (0.01, 0.04, 0.03, 0.2): sorted 0.01*4, 0.03*3, 0.04*2, 0.2*1 with monotonicity
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])


def test_a_role_that_does_not_clear_alpha_is_stated_as_not_found():
    heads = [_head(0, h, ("sep",) if h < 2 else ()) for h in range(4)]
    res = _result(heads, [[True, False, True, False]])
    sep = next(f for f in role_findings(res) if "[SEP]" in f)
    assert "1 of the 2 surviving heads" in sep and "no difference from chance found" in sep


def test_over_seeds_reports_mean_and_interval():
    runs = []
    for seed in range(3):
        heads = [_head(0, h, ("sep",) if h < 4 else ()) for h in range(8)]
        alive = np.array([[True] * 4 + [seed == 0, False, False, seed == 2]])
        runs.append(_result(heads, alive))
    out = roles_over_seeds(runs)
    sep = next(r for r in out.roles if r.role == "sep")
    rate = [1.0, 1.0, 1.0]
    chance = [5 / 8, 4 / 8, 5 / 8]
    diff = np.subtract(rate, chance)
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
    assert sep.difference.mean == pytest.approx(diff.mean())
    assert sep.difference.low == pytest.approx(diff.mean() - half)
    # the pooled test by enumeration: S = X0 + X1 + X2, Xi ~ Hypergeom(8, 4 sep heads, kept)
    pmfs = [stats.hypergeom(8, 4, k).pmf(np.arange(5)) for k in (5, 4, 5)]
    p_ge = sum(pmfs[0][a] * pmfs[1][b] * pmfs[2][c] for a in range(5) for b in range(5)
               for c in range(5) if a + b + c >= 12)
    assert (sep.kept, sep.heads) == (12, 12) and sep.p_greater == pytest.approx(p_ge)
    assert sep.expected == pytest.approx(4 * (5 + 4 + 5) / 8)
    assert any(f.startswith("Over 3 runs, 12 of the 12 heads") for f in out.findings())
    json.dumps(out.to_dict(), allow_nan=False)


def test_over_seeds_intervals_stay_within_what_a_share_can_be():
    """Three runs whose share of kept role heads is 0, 1 and 0 against a chance of 1/2: the
    Student-t interval of the difference reaches about -1.93 to +1.60 (scipy), past what a
    difference of two shares can be; it is cut to [-1, 1] and the share's to [0, 1], and the
    finding says so (review of #22: the made_of study printed "-126.8% to +160.1%")."""
    runs = []
    for seed in range(3):
        heads = [_head(0, h, ("sep",) if h < 2 else ()) for h in range(8)]
        kept_sep = [seed == 1] * 2
        alive = np.array([kept_sep + [True] * 2 + [False] * 2 + [seed != 1] * 2])  # 4 of 8
        runs.append(_result(heads, alive))
    sep = next(r for r in roles_over_seeds(runs).roles if r.role == "sep")
    diff = np.array([0.0, 1.0, 0.0]) - 0.5
    lo, hi = stats.t.interval(0.95, 2, diff.mean(), stats.sem(diff))
    assert lo < -1 and hi > 1  # the uncut interval would leave the range
    assert sep.difference.mean == pytest.approx(diff.mean())
    assert (sep.difference.low, sep.difference.high) == (-1.0, 1.0)
    assert (sep.rate.low, sep.rate.high) == (0.0, 1.0)
    text = next(f for f in roles_over_seeds(runs).findings() if "[SEP]" in f)
    assert "-100.0% to +100.0% cut to the possible" in text


def test_a_role_of_one_head_a_run_is_not_claimed_over_seeds():
    """One head with the role in each of 3 runs, kept every time at a 50% survival rate:
    the per-run difference has no spread, so its t interval would have zero width — no
    confidence statement: it is undefined and said so; 3 of 3 happens by chance 1 time in 8:
    not a finding."""
    runs = []
    for _ in range(3):
        heads = [_head(0, h, ("prev",) if h == 0 else ()) for h in range(8)]
        runs.append(_result(heads, np.array([[True] * 4 + [False] * 4])))
    prev = next(r for r in roles_over_seeds(runs).roles if r.role == "prev")
    assert prev.difference.mean == pytest.approx(0.5)
    assert math.isnan(prev.difference.low) and math.isnan(prev.difference.high)
    assert prev.p_greater == pytest.approx(0.5 ** 3)
    text = next(f for f in roles_over_seeds(runs).findings() if "previous token" in f)
    assert "no difference from chance found" in text
    assert "no 95% CI: the same in every run" in text


def test_roles_follow_the_rules():
    h = _head(0, 0, ())
    from dataclasses import replace

    h = replace(h, first=0.6, entropy_norm=0.9, induction=0.5, previous_token=0.2)
    assert assign_roles(h, RoleRules()) == ("heterogeneous", "first", "broad", "induction")
    assert "induction" not in assign_roles(h, RoleRules(induction=0.6))


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("family", ["bert", "distilbert", "gpt2", "llama"])
def test_the_probe_leaves_the_model_and_its_outputs_unchanged(family):
    tok = builtin_tokenizer()
    objective = "clm" if family in ("gpt2", "llama") else "classification"
    model = tiny_model(family, objective=objective, vocab_size=tok.vocab_size)
    enc = tok.encode(TEXTS[:2], None, 32)
    ids = torch.tensor([enc.input_ids[0][:5], enc.input_ids[1][:5]])
    before_impl = model.config._attn_implementation
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with P.eager_attention(model):
            eager = model(input_ids=ids, output_attentions=True)
        heads, _ = model_roles(model, tok, TEXTS)
        after = model(input_ids=ids).logits
    assert model.config._attn_implementation == before_impl
    assert torch.equal(before, after)  # the probe changed nothing
    torch.testing.assert_close(eager.logits, before, rtol=1e-5, atol=1e-5)  # eager == sdpa
    layers = len(eager.attentions)
    assert len(heads) == layers * eager.attentions[0].shape[1]
    for h in heads:
        assert 0.0 <= h.first <= 1.0 and h.entropy >= 0.0 and h.pattern in (*PATTERNS, "n/a")
        assert h.roles and (h.induction is not None) == (family in ("gpt2", "llama"))
        assert h.next == (0.0 if family in ("gpt2", "llama") else h.next)


def test_gqa_reports_each_query_heads_own_pattern():
    """tiny-llama: 4 query heads over 2 key/value heads; the maps the probe reads are the
    query heads' (recomputed here from q_proj, k_proj and the rotary embedding)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    model = tiny_model("llama", objective="clm", vocab_size=100)
    ids = torch.randint(1, 100, (1, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), P.eager_attention(model):
        out = model(input_ids=ids, output_attentions=True, output_hidden_states=True)
        attn = model.model.layers[0].self_attn
        x = model.model.layers[0].input_layernorm(out.hidden_states[0])
        d = attn.head_dim
        q = attn.q_proj(x).view(1, 8, -1, d).transpose(1, 2)
        k = attn.k_proj(x).view(1, 8, -1, d).transpose(1, 2)
        cos, sin = model.model.rotary_emb(x, torch.arange(8)[None])
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # query head -> its KV head
        s = q @ k.transpose(-1, -2) / math.sqrt(d)
        s = s.masked_fill(torch.triu(torch.ones(8, 8, dtype=torch.bool), 1), -torch.inf)
        want = s.softmax(-1)
    assert out.attentions[0].shape[1] == 4
    torch.testing.assert_close(out.attentions[0], want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out.attentions[0][0, 0], out.attentions[0][0, 1])  # same KV


def test_hand_wired_induction_circuit_is_labelled():
    model = induction_circuit(64)
    probe = P.induction_probe(model, range(64), length=25, sequences=16, seed=0)
    assert probe.previous_token[0, 0] > 0.95  # L0H0: previous-token head
    assert probe.induction[1, 0] > 0.8  # L1H0: induction head
    assert probe.induction[0].max() < 0.1 and probe.previous_token[1].max() < 0.2
    first, second = probe.repeat_loss
    assert second < 0.1 < first  # the circuit predicts the second copy
    means = {k: np.zeros((2, 2)) for k in (*P.TARGETS, "entropy", "entropy_norm")}
    heads = P.head_table(means, np.zeros((2, 2, 5)), RoleRules(), probe)
    roles = {h.unit: h.roles for h in heads}
    assert "previous_token" in roles["L0H0"] and "induction" in roles["L1H0"]
    assert not any("induction" in r for u, r in roles.items() if u != "L1H0")
    alive = np.array([[True, False], [True, False]])
    res = HeadRolesResult(
        "circuit", 1, "llama", True, True, 8, 0, (), 2, 2, RoleRules(), heads, None, alive,
        alive.astype(float), survival_by_role(heads, alive, alive.astype(float)),
        probe.induction_baseline, probe.previous_token_baseline, probe.repeat_loss)
    text = " ".join(role_findings(res))
    assert "1 of 4 heads are induction heads (score >= 0.3: L1H0; best L1H0 0.9" in text
    assert "uniform attention scores 0.027" in text and "loss on repeated random tokens falls" \
        in text


@pytest.mark.slow
def test_a_trained_attention_only_model_grows_an_induction_circuit():
    """A 2-layer attention-only Llama trained on sequences that repeat random prefixes
    (Olsson et al. 2022) has a previous-token head in layer 1 and an induction head in
    layer 2, and the code labels them."""
    from ticketlens.testing import train_induction_model

    model = train_induction_model(steps=600, seed=0)
    probe = P.induction_probe(model, range(64), length=20, sequences=32, seed=1)
    means = {k: np.zeros(probe.induction.shape) for k in (*P.TARGETS, "entropy",
                                                           "entropy_norm")}
    heads = P.head_table(means, np.zeros((*probe.induction.shape, 5)), RoleRules(), probe)
    assert probe.induction[1].max() > 0.8
    assert any("induction" in h.roles for h in heads if h.layer == 1)
    assert any("previous_token" in h.roles for h in heads if h.layer == 0)


# ----------------------------------------------------------------------------- runs, CLI
def test_examples_are_drawn_by_the_seed():
    a, b = draw_examples(100, 10, 3), draw_examples(100, 10, 3)
    assert a == b and len(set(a)) == 10 and a != draw_examples(100, 10, 4)
    assert draw_examples(5, 256, 0) == (0, 1, 2, 3, 4)


def test_cli_roles_json_on_a_sample_run(tmp_path, capsys):
    from ticketlens.cli.main import main

    run = tmp_path / "s0"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", run)
    assert main(["roles", str(run), "--examples", "16", "--seed", "2", "--json",
                 "--save"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["examples"] == 16 and data["seed"] == 2 and len(data["indices"]) == 16
    assert data["indices"] == list(draw_examples(1000, 16, 2))  # the sample's dev: 1000
    assert len(data["dense"]) == 16 and len(data["ticket"]) == 16
    assert data["thresholds"]["pure_min"] == 0.5 and data["findings"]
    assert json.loads((run / "analysis" / "roles.json").read_text())["indices"] == \
        data["indices"]
    # the same seed gives the same numbers
    assert main(["roles", str(run), "--examples", "16", "--seed", "2", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["dense"] == data["dense"]


def test_structured_ticket_uses_its_unit_masks(tmp_path):
    from structured_run import make_structured_run

    from ticketlens.analysis.head_roles import head_roles

    run = make_structured_run(tmp_path / "st", early_bird=False)
    res = head_roles(run, examples=8)
    dead = {h.unit for h in res.dense if not res.alive[h.layer, h.head]}
    assert dead == {"L0H1", "L1H2", "L2H3"}  # constant and dead heads; L0H0 blind = alive
    assert res.structured and all((s.total, s.total_kept) == (16, 13) for s in res.survival)
    for s in res.survival:  # kept heads with the role, counted from the unit masks
        assert s.kept == sum(1 for h in res.dense if s.role in h.roles and h.unit not in dead)


def test_cli_roles_bad_input_is_one_line(tmp_path):
    res = run_cli("roles", str(SAMPLE_MASKS / "sentiment-s0"), "--examples", "0")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    res = run_cli("roles", str(tmp_path / "missing"))
    assert res.returncode == 2 and "no such run" in res.stderr


def test_stored_roles_read_back(tmp_path, capsys):
    from ticketlens.analysis.roles import stored_roles
    from ticketlens.cli.main import main
    from ticketlens.core.run import open_run

    run = tmp_path / "s0"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", run)
    (run / "analysis" / "roles.json").unlink()  # the sample holds roles (make.sh): none now
    assert stored_roles(open_run(run)) is None
    assert main(["roles", str(run), "--examples", "8", "--save", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    back = stored_roles(open_run(run))
    assert back.to_dict() == data
    (run / "analysis" / "roles.json").write_text("{")
    from ticketlens.core.errors import RunFormatError

    with pytest.raises(RunFormatError, match="unreadable head roles"):
        stored_roles(open_run(run))


def test_report_and_figure_show_stored_roles(tmp_path, capsys):
    import ticketlens as tl
    from ticketlens.analysis.roles import stored_roles
    from ticketlens.cli.main import main
    from ticketlens.core.run import open_run
    from ticketlens.report.html import build_report

    runs = []
    for name in ("sentiment-s0", "sentiment-s1"):
        shutil.copytree(SAMPLE_MASKS / name, tmp_path / name)
        assert main(["roles", str(tmp_path / name), "--examples", "8", "--save", "--json"]) == 0
        runs.append(open_run(tmp_path / name))
    capsys.readouterr()
    page = build_report(runs)
    held = stored_roles(runs[0])
    assert page.count("<h4>Head roles</h4>") == 2 and "Head roles over 2 runs" in page
    assert held.findings()[0].split(":")[0] in page  # the findings open the section
    assert tl.figure(held).layout.title.text == "Head roles (dense model)"
    assert tl.figure(held, kind="survival").data[1].name == "expected by chance"


def test_inspect_has_a_roles_tab_when_the_run_holds_roles(tmp_path, capsys):
    import asyncio

    from ticketlens.cli.main import main
    from ticketlens.tui.app import create_app

    run = tmp_path / "s0"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", run)
    assert main(["roles", str(run), "--examples", "8", "--save", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)

    async def drive():
        app = create_app([str(run)])
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("6")
            await pilot.pause()
            screen = app.screen
            assert screen.query_one("#tabs").active == "tab-roles"
            grid = screen.query_one("#roles-grid")
            assert app.focused is grid and grid.row_count == 4
            text = str(screen.query_one("#roles-findings").render())
            assert data["findings"][0][:40] in text.replace("\n", " ")
            assert screen.query_one("#roles-survival").row_count == len(data["survival"])
            await pilot.press("q")

    asyncio.run(drive())
    # a run without stored roles has no such tab
    bare = tmp_path / "s1"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s1", bare)
    (bare / "analysis" / "roles.json").unlink()

    async def without():
        app = create_app([str(bare)])
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert not app.screen.query("#tab-roles")
            await pilot.press("q")

    asyncio.run(without())


def test_inspect_shows_an_unreadable_roles_file_in_one_line(tmp_path):
    """A malformed analysis/roles.json made `inspect` exit with a traceback (the Roles tab
    was built outside the app's one-line error path; review of #22/#23 item 2): the tab now
    holds the one line, the other tabs work and the app quits cleanly."""
    import asyncio

    from ticketlens.tui.app import create_app

    run = tmp_path / "s0"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", run)
    (run / "analysis" / "roles.json").write_text("{")

    async def drive():
        app = create_app([str(run)])
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("6")
            await pilot.pause()
            assert app.screen.query_one("#tabs").active == "tab-roles"
            line = str(app.screen.query_one("#roles-error").render())
            assert "roles.json: unreadable head roles" in line and "\n" not in line
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(drive())


def test_verify_checks_stored_roles(tmp_path, capsys):
    from ticketlens.cli.main import main

    run = tmp_path / "s0"
    shutil.copytree(SAMPLE_MASKS / "sentiment-s0", run)
    assert main(["roles", str(run), "--examples", "8", "--save", "--json"]) == 0
    assert main(["verify", str(run)]) == 0
    out = capsys.readouterr().out
    assert "roles.json" not in out or "not checked" not in out
    path = run / "analysis" / "roles.json"
    data = json.loads(path.read_text())
    data["num_heads"] = 5
    path.write_text(json.dumps(data))
    assert main(["verify", str(run)]) == 2
    assert "roles.json" in capsys.readouterr().err


def test_over_seeds_pools_seeds_of_one_task_only(tmp_path, capsys):
    from ticketlens.cli.main import main

    for name in ("sentiment-s0", "sentiment-s1", "agreement-s0"):
        shutil.copytree(SAMPLE_MASKS / name, tmp_path / name)
    assert main(["roles", str(tmp_path), "--examples", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(g["task"], len(g["runs"])) for g in data["groups"]] == [("sentiment", 2)]
    assert len(data["runs"]) == 3


def test_an_earlier_round_uses_its_mask_and_the_dense_roles():
    from ticketlens.analysis.head_roles import head_roles
    from ticketlens.core.run import open_run

    run = open_run(SAMPLE_MASKS / "sentiment-s0")
    res = head_roles(run, round=2, examples=4)
    assert res.round == 2 and res.ticket is None and "not stored" in res.notes[0]
    from ticketlens.analysis.survival import survival

    np.testing.assert_allclose(res.kept, survival(run, round=2).head_grid("kept"))
    with pytest.raises(Exception, match="round 99"):
        head_roles(run, round=99, examples=4)


def test_roles_tables_fit_80_columns_without_cutting_a_word(monkeypatch):
    """#23 item 3 for the roles command: at 80 columns the heads table and both survival
    tables cut no header or cell ("pun…", "tick…", "heteroge…" before; review of #22)."""
    import io

    from rich.console import Console

    import ticketlens.cli.roles as cli_roles

    buf = io.StringIO()
    monkeypatch.setattr(cli_roles, "_console",
                        lambda: Console(file=buf, width=80, highlight=False))
    heads = [_head(i // 4, i % 4, ("sep", "broad") if i < 6 else (), "vertical+diagonal"
                   if i % 3 else "heterogeneous") for i in range(16)]
    runs = [_result(heads, np.array([[True, False] * 2] * 4)) for _ in range(2)]
    cli_roles._print_run(runs[0])
    cli_roles._print_summary(roles_over_seeds(runs))
    out = buf.getvalue()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    words = set(out.split())
    for word in ("punct", "pattern", "ticket", "heterogeneous", "vertical+diagonal",
                 "expected", "weights", "others", "difference"):
        assert word in words, word


def test_a_roles_file_from_before_the_permutation_test_is_not_misread():
    """Review: a roles.json written with the Mann-Whitney test (p_kept_fraction its p, no
    p_kept_fraction_adjusted, no kept_fraction_test) was read back as if it held the
    permutation test: its p shown under "p (perm.)", and with the adjusted p missing the
    finding said "permutation test ... no difference from chance found" for a role the old
    test had found (p = 0.001). Reference: the file format before commit 6fcb8da."""
    heads = [_head(i // 4, i % 4, ("sep",) if i < 4 else ()) for i in range(12)]
    alive = np.ones((3, 4), dtype=bool)
    kept = np.array([[0.9, 0.8, 0.85, 0.95], [0.5, 0.45, 0.55, 0.5], [0.4, 0.6, 0.5, 0.5]])
    res = HeadRolesResult("run", 1, "bert", False, False, 8, 0, tuple(range(8)), 3, 4,
                          RoleRules(), tuple(heads), None, alive, kept,
                          survival_by_role(heads, alive, kept))
    d = json.loads(json.dumps(res.to_dict()))
    del d["kept_fraction_test"]
    for s in d["survival"]:
        s.pop("p_kept_fraction_adjusted")
        s["p_kept_fraction"] = 0.001  # the Mann-Whitney p the old file held
    back = HeadRolesResult.from_dict(d)
    assert all(math.isnan(s.p_kept_fraction) for s in back.survival)
    assert any("Mann-Whitney" in n for n in back.notes)
    assert not any("permutation" in f for f in role_findings(back))
    # a file of today reads back as written
    again = HeadRolesResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again.survival[-1].p_kept_fraction == pytest.approx(1 / 495) and not again.notes
