"""The analysis contract (#20 item 3), on the real runs of sample_masks/: every analysis reads
its tickets through one helper, in every form; results are JSON-safe; errors are one
AnalysisError line; the old call forms still work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import SAMPLE_MASKS

import ticketlens as tl
from ticketlens.cli.main import main
from ticketlens.core.config import flatten
from ticketlens.core.result import json_safe
from ticketlens.report.fmt import pct

S0, S1 = SAMPLE_MASKS / "sentiment-s0", SAMPLE_MASKS / "sentiment-s1"


@pytest.fixture(scope="module")
def runs():
    return [tl.open_run(S0), tl.open_run(S1)]


def _strict(d) -> dict:
    """``d`` through strict JSON (no NaN, no Infinity), back."""
    return json.loads(json.dumps(d, allow_nan=False))


def test_every_input_form_gives_the_same_overlap(runs):
    want = tl.overlap(runs, by="head").to_dict()
    assert tl.overlap([str(S0), S1], by="head").to_dict() == want  # paths, as on the CLI
    assert tl.overlap(tuple(runs), by="head").to_dict() == want  # a tuple of runs
    typed = [tl.TicketMasks(tl.as_inputs(r)[0].name, r.anatomy, r.mask()) for r in runs]
    masks = tl.overlap(typed, by="head")
    assert [p.jaccard for p in masks.pairs] == [p.jaccard for p in tl.overlap(runs,
                                                                               by="head").pairs]
    # the tuples of earlier versions, and (run, arm)
    old = tl.overlap([("a", runs[0].anatomy, runs[0].mask()),
                      ("b", runs[1].anatomy, runs[1].mask())], by="head")
    assert old.names == ("a", "b") and old.pairs[0].jaccard == masks.pairs[0].jaccard
    arm = tl.overlap([(runs[0], "ticket"), (runs[1], "ticket")], by="head")
    assert arm.pairs[0].jaccard == masks.pairs[0].jaccard
    # a folder of runs is every run below it
    folder = tl.as_inputs(SAMPLE_MASKS)
    assert len(folder) == 6 and all(isinstance(r, tl.Run) for r in folder)


def test_one_ticket_analyses_take_every_form(runs):
    run = runs[0]
    s = tl.survival(run)
    assert tl.survival(str(S0)).to_dict() == s.to_dict()
    typed = tl.survival(tl.TicketMasks("t", run.anatomy, run.mask()))
    assert typed.round == -1 and typed.dead_heads == s.dead_heads
    assert tl.survival(("t", run.anatomy, run.mask())).to_dict()["heads"] == \
        s.to_dict()["heads"]
    g = tl.graph(run)
    assert tl.graph(S0, round=run.ticket_round).num_edges == g.num_edges
    assert tl.graph((run.anatomy, run.mask())).num_edges == g.num_edges
    assert tl.sparsity_profile(S0).to_dict() == tl.sparsity_profile(run).to_dict()


def test_errors_are_one_analysis_error_line(runs):
    cases = [
        lambda: tl.overlap([runs[0]]),
        lambda: tl.overlap(runs, by="layer"),
        lambda: tl.survival(runs, by="unit"),  # two tickets to a one-ticket analysis
        lambda: tl.survival(runs[0], by="head"),
        lambda: tl.graph(tl.TicketMasks("t", runs[0].anatomy, runs[0].mask()), round=1),
        lambda: tl.sparsity_profile(tl.TicketMasks("t", runs[0].anatomy, runs[0].mask())),
        lambda: tl.overlap([(runs[0], "no_such_arm"), runs[1]]),
        lambda: tl.overlap([{"a": 1}, runs[0]]),
        lambda: tl.overlap([{"a": np.ones((9, 9))}, runs[0]]),  # its repr spans lines
        lambda: tl.TicketMasks("t", runs[0].anatomy, {}),
        lambda: tl.sweep_stats(runs, by="role"),
        lambda: tl.magnitude_mask(runs[0], 1.5),
        lambda: tl.stability(SAMPLE_MASKS),  # six runs to a one-run analysis
        lambda: tl.circuit(tl.TicketMasks("t", runs[0].anatomy, runs[0].mask())),
        lambda: tl.attribute(runs),
        lambda: tl.export(tl.TicketMasks("t", runs[0].anatomy, runs[0].mask()), "unused"),
    ]
    for case in cases:
        with pytest.raises(tl.AnalysisError) as info:
            case()
        assert isinstance(info.value, tl.TicketlensError) and isinstance(info.value, ValueError)
        assert "\n" not in str(info.value) and str(info.value)


def test_typed_masks_check_their_shapes(runs):
    a = runs[0].anatomy
    masks = dict(runs[0].mask())
    name = a.names[0]
    masks[name] = masks[name][:1]
    with pytest.raises(tl.AnalysisError, match="shape"):
        tl.TicketMasks("t", a, masks)
    extra = {**runs[0].mask(), "classifier.weight": np.ones((2, 2), bool)}
    assert "classifier.weight" not in tl.TicketMasks("t", a, extra)  # other tensors dropped


def test_magnitude_mask_typed_and_backwards_compatible(runs):
    run = runs[0]
    rewind = run.weights("rewind")
    weights = {n: rewind[n] for n in run.anatomy.names}
    old = tl.magnitude_mask(weights, 0.8, scope="global")  # the call form of earlier versions
    new = tl.magnitude_mask(run, 0.8)
    assert isinstance(new, tl.MagnitudeMask) and set(old) == set(run.anatomy.names)
    for n in old:
        assert old[n].dtype == bool and np.array_equal(old[n], new[n])
    # by hand: the kept weights are the 20% of largest magnitude across all tensors
    flat = np.concatenate([np.abs(weights[n].numpy()).ravel() for n in run.anatomy.names])
    assert new.kept == round(0.2 * flat.size) and new.achieved_sparsity == pytest.approx(0.8,
                                                                                     abs=1e-5)
    kept_min = min(float(np.abs(weights[n].numpy())[new[n]].min()) for n in new)
    assert kept_min >= np.sort(flat)[-new.kept]
    # an input of every analysis, and the mask of the old tuple form
    a = tl.overlap([run, new])
    b = tl.overlap([run, ("m", run.anatomy, old)])
    assert a.pairs[0].jaccard == b.pairs[0].jaccard
    assert a.names[1] == "sentiment/s0 magnitude"
    with pytest.raises(tl.AnalysisError, match="anatomy"):
        tl.overlap([run, old])
    _strict(new.to_dict())


def test_every_result_is_strict_json(runs):
    o = tl.overlap(runs)
    results = [o, tl.survival(runs[0]), tl.sparsity_profile(runs[0]), tl.graph(runs[0]),
               tl.runs_graph(o), tl.group_summary(o, {n: "x" for n in o.names}),
               tl.sweep_stats(SAMPLE_MASKS), tl.sweep_stats(runs, by="head"),
               tl.TicketMasks("t", runs[0].anatomy, runs[0].mask())]
    from ticketlens.analysis.results import stored_attribution

    attribution = stored_attribution(runs[0])
    assert attribution is not None
    results.append(attribution)
    for r in results:
        assert isinstance(r, tl.Result)
        _strict(r.to_dict())
    # NaN becomes None: the group summary of one group has no across-group pairs
    g = tl.group_summary(o, {n: "x" for n in o.names}).to_dict()
    assert g["across_jaccard"] is None and g["across_pairs"] == 0
    # stored attribution reads back through to_dict (None where NaN)
    again = type(attribution).from_dict(_strict(attribution.to_dict()))
    assert again.mean_spearman == pytest.approx(attribution.mean_spearman, nan_ok=True)


def test_json_safe_by_hand():
    assert json_safe({"a": math.nan, "b": (1, math.inf), 3: np.float32(0.5),
                      "c": np.array([[1.0, np.nan]]), "d": -math.inf}) == \
        {"a": None, "b": [1, None], "3": 0.5, "c": [[1.0, None]], "d": None}


def test_sweep_stats_by_level(runs):
    w = tl.sweep_stats(SAMPLE_MASKS)
    h = tl.sweep_stats(SAMPLE_MASKS, by="head")
    assert (w.by, h.by) == ("weight", "head")
    # the seed agreement is overlap's Fleiss' kappa at that level
    members = [r for r in tl.runs(SAMPLE_MASKS) if r.task == "sentiment"]
    for stats, by in ((w, "weight"), (h, "head")):
        group = next(g for g in stats.groups if g.task == "sentiment")
        kappa = tl.overlap(members, by=by).fleiss_kappa
        assert group.seed_kappa == pytest.approx(kappa, nan_ok=True)
    # every head survives in these tickets: kappa is undefined (NaN), None in JSON
    assert math.isnan(h.groups[0].seed_kappa) and h.to_dict()["groups"][0]["seed_kappa"] is None
    assert not math.isnan(w.groups[0].seed_kappa)
    # the verdicts do not depend on the level
    assert [g.verdict for g in w.groups] == [g.verdict for g in h.groups]


def test_flatten_and_pct_by_hand():
    assert flatten({"train": {"lr": 1, "x": {}}, "seed": 0}) == {"train.lr": 1, "seed": 0}
    assert flatten({"a": {"b": 2}}, "config") == {"config.a.b": 2}
    assert pct(0.8) == "80.0%" and pct(None) == "n/a" and pct(None, missing="–") == "–"
    assert pct(float("nan"), missing="–") == "–" and pct(-0.0001) == "0.0%"


def test_cli_prints_analysis_errors_in_one_line(capsys):
    assert main(["compare", str(S0)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ticketlens: error: compare needs at least two runs (or RUN@ARM items)"
    assert main(["compare", f"{S0}@no_such_arm", str(S1)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ticketlens: error: ") and "no control 'no_such_arm'" in err
    assert len(err.splitlines()) == 1


def test_info_prints_a_one_seed_sweep_from_its_json_safe_dict(runs, capsys, monkeypatch):
    """info's sweep table reads SweepStats.to_dict(): one seed has no seed agreement (None
    in the dict, NaN before) and is printed "n/a", its reason said once (issue 23)."""
    from ticketlens.cli.info import print_sweep

    monkeypatch.setenv("COLUMNS", "250")  # the whole table on one line per row
    stats = tl.sweep_stats(runs[:1]).to_dict()
    assert stats["groups"][0]["seed_kappa"] is None
    print_sweep({"sweep": "one", "cells": {"complete": 1}, "statistics": stats, "failed": []})
    out = capsys.readouterr().out
    assert "n/a (n/a)" in out and "sentiment" in out and "nan" not in out
    assert out.count("n/a: undefined with what the sweep holds") == 1


def test_runs_and_figure_read_runs_like_every_analysis():
    both = [str(S0), SAMPLE_MASKS / "agreement-s1"]
    assert [r.path for r in tl.runs(*both)] == [r.path for r in tl.as_inputs(both)]
    by_path = tl.figure(str(SAMPLE_MASKS))
    by_runs = tl.figure(tl.runs(SAMPLE_MASKS))
    assert len(by_path.data) == len(by_runs.data) > 0
    assert [t.name for t in by_path.data] == [t.name for t in by_runs.data]
