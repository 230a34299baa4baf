"""`ticketlens sweep`: the grid, bad input refused before any run, local workers, resume and
skip, a failed cell recorded, and statistics over seeds checked against scipy by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_cli

from ticketlens.analysis.sweep import _paired, estimate
from ticketlens.cli.main import main
from ticketlens.sweep import parse_seeds, parse_set

SMALL = ["--steps", "20it", "--train-size", "256", "--dev-size", "128", "--batch-size", "16",
         "--rate", "0.5", "--target-sparsity", "0.75", "--rewind", "5it"]


def test_seeds_and_settings_parse():
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0-2,5,1") == (0, 1, 2, 5)
    assert parse_set(["prune.rate=0.2,0.3", "steps=300it"]) == (
        ("prune.rate", ("0.2", "0.3")), ("train.steps", ("300it",)))


@pytest.mark.parametrize(("args", "needle"), [
    (["--set", "prune.rat=0.2"], "unknown setting 'prune.rat' (did you mean prune.rate?)"),
    (["--set", "prune.rate=2"], "--rate must be in (0, 1)"),
    (["--tasks", "sentiment,sentimnet"], "unknown task 'sentimnet'"),
    (["--seeds", "3-1"], "empty range"),
    (["--set", "seed=1,2"], "use --seeds"),
])
def test_bad_input_is_one_line_before_any_run(tmp_path, capsys, args, needle):
    out = tmp_path / "sweep"
    assert main(["sweep", "-o", str(out), *SMALL, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err, err
    assert not out.exists()


def test_a_small_sweep_runs_resumes_and_summarises(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "-o", str(out), "--tasks", "sentiment,agreement", "--seeds", "0-1",
            "--workers", "2", *SMALL]
    first = run_cli(*args, "--json", timeout=600)
    assert first.returncode == 0, first.stderr
    for task in ("sentiment", "agreement"):
        for seed in (0, 1):
            assert (out / task / "tiny-bert" / f"s{seed}" / "manifest.json").is_file()
    sweep = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in sweep["cells"]] == ["complete"] * 4
    assert {c["threads"] for c in sweep["cells"]} == {1}  # 2 cores // 2 workers
    stats = json.loads(first.stdout)["statistics"]
    groups = {g["task"]: g for g in stats["groups"]}
    assert set(groups) == {"sentiment", "agreement"}
    for g in groups.values():
        assert g["seeds"] == [0, 1] and g["dense"]["n"] == 2
        assert g["verdict"] in ("winning", "not winning", "inconclusive")
        assert {t["control"] for t in g["tests"]} == {"random_mask", "random_reinit"}
    [cross] = stats["cross_task"]
    assert cross["same_seed_pairs"] == 2 and cross["cross_seed_pairs"] == 2
    # the same command again: every cell skipped, nothing rewritten
    before = (out / "sentiment" / "tiny-bert" / "s0" / "manifest.json").read_bytes()
    again = run_cli(*args, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "4 cells (4 already complete)" in again.stderr
    assert (out / "sentiment" / "tiny-bert" / "s0" / "manifest.json").read_bytes() == before
    info = run_cli("info", str(out))
    assert info.returncode == 0 and "over seeds" in info.stdout and "seed held fixed" in \
        info.stdout


def test_a_failed_cell_is_recorded_and_the_others_run(tmp_path):
    out = tmp_path / "sweep"
    # 4it with --rewind 5it passes the settings check but fails when the cell starts
    proc = run_cli("sweep", "-o", str(out), *SMALL, "--set", "train.steps=20it,4it",
                   "--no-controls", "--target-sparsity", "0.5", timeout=300)
    assert proc.returncode == 1
    cells = {c["path"]: c for c in json.loads((out / "sweep.json").read_text())["cells"]}
    assert cells["sentiment/tiny-bert/steps=20it/s0"]["status"] == "complete"
    failed = cells["sentiment/tiny-bert/steps=4it/s0"]
    assert failed["status"] == "failed" and "--rewind 5it is at or past the end" in \
        failed["error"]


def test_interval_and_paired_test_against_scipy():
    """References: the t interval by hand (scipy.stats.t), and the paired test equal to
    scipy.stats.ttest_rel(ticket, control + margin, alternative="greater")."""
    from scipy import stats

    x = [0.90, 0.92, 0.95, 0.91]
    e = estimate(x, 0.95)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert e.mean == pytest.approx(0.92) and e.low == pytest.approx(0.92 - half)
    assert e.half_width == pytest.approx(half) and e.to_dict()["half_width"] == e.half_width
    assert math.isnan(estimate([0.5]).low)
    ticket = np.array([0.90, 0.92, 0.95, 0.91])
    control = np.array([0.80, 0.85, 0.90, 0.88])
    t = _paired("random_mask", ticket, control, "accuracy", 0.01, 0.05)
    ref = stats.ttest_rel(ticket, control + 0.01, alternative="greater")
    assert t.statistic == pytest.approx(ref.statistic) and t.p_value == pytest.approx(
        ref.pvalue)
    assert t.beats == (ref.pvalue < 0.05)
