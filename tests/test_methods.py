"""One-shot methods and N:M patterns inside a run (#16): ``find --method``, ``--pattern``,
``--compare-methods``, and ``compare --methods``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import QUICK_FIND, SAMPLE_MASKS

import ticketlens
from ticketlens.cli.main import main
from ticketlens.core.config import FindConfig
from ticketlens.pruning import rules
from ticketlens.pruning.arms import derive_seed
from ticketlens.pruning.oneshot import calibration_batches, oneshot_prune, pick_calibration
from ticketlens.pruning.patterns import Pattern, is_nm
from ticketlens.pruning.setup import prepare

# two-round runs in seconds: 20 steps, a 512-example training split
FAST = [*QUICK_FIND, "--steps", "20it", "--quiet"]


def _find(tmp_path, name: str, *args: str) -> ticketlens.Run:
    out = tmp_path / name
    assert main(["find", *FAST, *args, "--out", str(out)]) == 0
    return ticketlens.open_run(out)


def _nm(run: ticketlens.Run, masks, n: int, m: int) -> bool:
    return all(is_nm(torch.from_numpy(np.ascontiguousarray(masks[t.name])), n, m, t.layout)
               for t in run.anatomy.tensors)


def _one_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ticketlens: error:") and "\n" not in err, err
    return err


def test_nm_schedule_reaches_the_pattern():
    assert rules.nm_schedule(2, 4, 0.2) == (4, 3, 2)
    assert rules.nm_schedule(4, 8, 0.2) == (8, 6, 5, 4)
    assert rules.nm_schedule(2, 4, 0.9) == (4, 2)  # never below N
    assert rules.nm_schedule(1, 8, 0.05) == (8, 7, 6, 5, 4, 3, 2, 1)  # at least one a round


@pytest.mark.parametrize("model,method,pattern", [
    ("tiny-bert", "wanda", "unstructured"),
    ("tiny-gpt2", "magnitude", "unstructured"),
    ("tiny-llama", "sparsegpt", "2:4"),  # GQA: k/v projections narrower than q
    ("tiny-distilbert", "sparsegpt", "unstructured"),
])
def test_find_method_prunes_dense_once_and_retrains(model, method, pattern, tmp_path):
    """Round 1 is the trained dense model pruned in one shot, every matrix to the target
    (exactly), its metric without retraining recorded, the calibration examples recorded and
    reproducible: redrawing them and pruning the kept dense weights gives the same mask."""
    run = _find(tmp_path, "run", "--model", model, "--method", method, "--pattern", pattern,
                "--target-sparsity", "0.5", "--calibration", "24", "--no-controls")
    assert [r.index for r in run.rounds] == [0, 1] and run.ticket_round == 1
    r1 = run.rounds[1]
    assert r1.sparsity == 0.5
    assert set(r1.sparsity_per_tensor.values()) == {0.5}
    o = r1.extra["oneshot"]
    assert o["method"] == method and o["pattern"] == pattern
    assert 0.0 <= o["metrics"][run.metric] <= 1.0 and "loss" in o["metrics"]
    assert r1.metrics[run.metric] != o["metrics"][run.metric] or r1.steps > 0  # retrained
    assert len(o["layers"]) == len(run.anatomy.names)
    if pattern != "unstructured":
        assert _nm(run, run.mask(), 2, 4)
    cal = r1.extra["calibration"]
    seed = derive_seed(0, "calibration")
    assert (cal["count"], cal["seed"], cal["examples_in_split"]) == (24, seed, 512)
    assert cal["indices"] == pick_calibration(512, 24, seed)
    assert cal["sha256"] == hashlib.sha256(",".join(map(str, cal["indices"])).encode()
                                           ).hexdigest()
    # reproduce the mask from the recorded config, the kept dense weights and the calibration
    setup = prepare(FindConfig.from_dict(dict(run.manifest.config)))
    setup.model.load_state_dict(run.weights("dense"))
    calib = calibration_batches(setup.train, cal["count"], cal["seed"],
                                pad_id=setup.tokenizer.pad_id)
    assert list(calib.indices) == cal["indices"]
    res = oneshot_prune(setup.model, setup.anatomy, None, calib.batches, method,
                        None if pattern != "unstructured" else 0.5,
                        Pattern(2, 4) if pattern != "unstructured" else None,
                        measure_error=False)
    mask = run.mask()
    assert all(np.array_equal(res.masks[n].numpy(), mask[n]) for n in run.anatomy.names)


def test_imp_with_pattern_ends_exactly_nm_with_nm_controls(tmp_path):
    """IMP with --pattern 2:4 keeps 3 then 2 of every 4 (nested masks); the ticket is exactly
    2:4; the random-mask and one-shot controls keep the pattern. The target sparsity follows
    from the pattern (the default 0.8 is replaced by 0.5)."""
    argv = [a for a in FAST if a not in ("--target-sparsity", "0.75")]
    out = tmp_path / "imp24"
    assert main(["find", *argv, "--rate", "0.2", "--pattern", "2:4", "--oneshot-control",
                 "--out", str(out)]) == 0
    run = ticketlens.open_run(out)
    assert [r.sparsity for r in run.rounds] == [0.0, 0.25, 0.5]
    assert run.manifest.config["prune"]["target_sparsity"] == 0.5
    assert _nm(run, run.mask(1), 3, 4) and _nm(run, run.mask(), 2, 4)
    assert all(not (run.mask()[n] & ~run.mask(1)[n]).any() for n in run.anatomy.names)
    for control in ("random_mask", "oneshot"):
        assert _nm(run, run.control_mask(control), 2, 4), control
    assert not all(np.array_equal(run.control_mask("random_mask")[n], run.mask()[n])
                   for n in run.anatomy.names)


def test_imp_with_pattern_4_8_on_conv1d_weights(tmp_path):
    """GPT-2's Conv1D weights are (in, out): the groups run along dim 0."""
    run = _find(tmp_path, "imp48", "--model", "tiny-gpt2", "--rate", "0.2", "--pattern", "4:8",
                "--target-sparsity", "0.5", "--no-controls")
    assert [r.sparsity for r in run.rounds] == [0.0, 0.25, 0.375, 0.5]
    assert {t.layout for t in run.anatomy.tensors} == {"conv1d"}
    assert _nm(run, run.mask(2), 5, 8) and _nm(run, run.mask(), 4, 8)


def test_compare_methods_added_to_a_finished_run(tmp_path, capsys):
    """--compare-methods on a finished run trains only the method controls (informative),
    at the ticket's sparsity, each with its metric before retraining; a second call adds to
    the first; `compare --methods` says how much of the ticket each keeps, beside chance."""
    run = _find(tmp_path, "run", "--no-controls")
    out = str(run.path)
    before = run.manifest
    assert main(["find", *FAST, "--no-controls", "--compare-methods", "wanda,sparsegpt",
                 "--calibration", "32", "--out", out]) == 0
    after = ticketlens.open_run(out)
    assert after.manifest.rounds == before.rounds
    assert set(after.controls) == {"method_wanda", "method_sparsegpt"}
    for name in after.controls:
        arm = after.controls[name]
        assert arm.sparsity == pytest.approx(after.ticket.sparsity, abs=1e-12)
        assert set(_per_matrix_sparsity(after.control_mask(name)).values()) == {0.75}  # per matrix
        assert arm.extra["oneshot"]["metrics"][after.metric] >= 0
        assert arm.extra["calibration"]["count"] == 32
    assert "Wanda control" in after.verdict.reason and "informative" in after.verdict.reason
    assert after.verdict.status == before.verdict.status
    assert main(["find", *FAST, "--no-controls", "--compare-methods", "magnitude",
                 "--calibration", "32", "--out", out]) == 0
    again = ticketlens.open_run(out)
    assert set(again.controls) == {"method_wanda", "method_sparsegpt", "method_magnitude"}
    assert again.manifest.config["prune"]["compare_methods"] == "wanda,sparsegpt,magnitude"
    assert again.controls["method_wanda"] == after.controls["method_wanda"]

    capsys.readouterr()
    assert main(["compare", out, "--methods"]) == 0
    text = capsys.readouterr().out
    assert "of a in b" in text and "chance" in text and "Wanda" in text
    assert main(["compare", out, "--methods", "--by", "neuron", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.replace("NaN", "null"))
    assert data["by"] == "neuron" and data["names"][0] == "ticket"
    assert main(["compare", out, "--methods", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.replace("NaN", "null"))
    pair = next(p for p in data["pairs"] if (p["a"], p["b"]) == ("ticket", "Wanda"))
    ticket, wanda = again.mask(), again.control_mask("method_wanda")
    kept = sum(int((ticket[n] & wanda[n]).sum()) for n in ticket)
    assert pair["a_kept_by_b"] == pytest.approx(kept / pair["kept_a"])
    assert pair["a_kept_by_b_chance"] == pytest.approx(pair["expected_intersection"]
                                                       / pair["kept_a"])
    assert pair["a_kept_by_b"] > pair["a_kept_by_b_chance"]  # both keep large weights
    # the same pair through the library and RUN@ARM items
    res = ticketlens.overlap([(again, "ticket"), (again, "method_wanda")], by="weight")
    assert res.pairs[0].intersection == kept
    assert main(["compare", f"{out}@ticket", f"{out}@wanda", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["intersection"] == kept


def _per_matrix_sparsity(masks) -> dict[str, float]:
    return {n: round(1.0 - float(m.mean()), 12) for n, m in masks.items()}


def test_bad_inputs_are_one_line_and_exit_2(tmp_path, capsys):
    out = str(tmp_path / "bad")
    base = ["find", *FAST, "--out", out]
    assert "training split" in _one_error(capsys, [*base, "--method", "wanda",
                                                   "--calibration", "100000"])
    assert "below M" in _one_error(capsys, [*base, "--pattern", "3:2"])
    assert "contradicts" in _one_error(capsys, [*base, "--pattern", "2:4",
                                                "--target-sparsity", "0.7"])
    assert "multiple of M=7" in _one_error(capsys, [*base, "--pattern", "3:7",
                                                     "--target-sparsity", "0.5714285714285714"])
    assert "granularity" in _one_error(capsys, [*base, "--method", "sparsegpt",
                                                "--granularity", "head"])
    assert not (tmp_path / "bad" / "weights").exists()  # refused before any training
    np.savez(tmp_path / "m.npz", **ticketlens.open_run(SAMPLE_MASKS / "sentiment-s0").mask())
    imported = tmp_path / "imported"
    assert main(["import", "--from", "npz", str(tmp_path / "m.npz"), "--model", "tiny-bert",
                 "--out", str(imported)]) == 0
    err = _one_error(capsys, ["find", *FAST, "--compare-methods", "wanda", "--out",
                              str(imported)])
    assert "imported" in err and "Wanda" in err
    err = _one_error(capsys, ["compare", str(imported), "--methods"])
    assert "--compare-methods" in err
    err = _one_error(capsys, ["compare", f"{imported}@method_sparsegpt", str(imported)])
    assert "no control 'method_sparsegpt'" in err


def test_methods_are_drawn_in_report_and_tui(tmp_path):
    """The report and `inspect` show each one-shot arm's metric before and after retraining
    and how much of the ticket it keeps against chance (`methods_overlap`)."""
    import asyncio

    from textual.app import App

    from ticketlens.analysis.overlap import methods_overlap
    from ticketlens.report.methods import methods_table
    from ticketlens.tui.methods_panel import methods_panel

    run = _find(tmp_path, "run", "--no-controls", "--compare-methods", "wanda",
                "--calibration", "32")
    pair = next(p for p in methods_overlap(run).pairs if (p.a, p.b) == ("ticket", "Wanda"))
    before = run.controls["method_wanda"].extra["oneshot"]["metrics"][run.metric]
    html = methods_table(run)
    assert html is not None and "Wanda" in html and "before retraining" in html
    assert f"{pair.a_kept_by_b:.1%}" in html and f"{pair.a_kept_by_b_chance:.1%}" in html
    assert methods_table(_find(tmp_path, "plain", "--no-controls")) is None

    class One(App):
        def compose(self):
            yield from methods_panel(run)

    async def drive():
        app = One()
        async with app.run_test() as pilot:
            await pilot.pause()
            table = app.query_one("#methods")
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            return rows

    rows = asyncio.run(drive())
    assert rows[0][0] == "IMP ticket" and rows[1][0] == "Wanda"
    assert rows[1][1] == f"{before:.4f}"
    assert rows[1][3] == f"{pair.a_kept_by_b:.1%} ({pair.a_kept_by_b_chance:.1%})"
