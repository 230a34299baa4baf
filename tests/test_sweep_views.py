"""A sweep's views: the statistics per IMP round and the seed x task overlap matrix
(``analysis.sweep``), drawn by the report (bands, matrix, verdict table) and opened by the TUI
as a group with drill-down into each run. On sample_masks (2 tasks x 3 seeds) laid out as a
sweep's folder."""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_MASKS, settle

from ticketlens.analysis.overlap import overlap
from ticketlens.analysis.sweep import estimate, sweep_stats
from ticketlens.cli.main import main
from ticketlens.core.io import write_json_atomic
from ticketlens.core.run import find_runs, open_run
from ticketlens.sweep import SWEEP_FILE, SWEEP_FORMAT

pytestmark = pytest.mark.skipif(not (SAMPLE_MASKS / "sentiment-s0").is_dir(),
                                reason="sample_masks absent")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """sample_masks' six runs as ``TASK/tiny-bert/sSEED`` with a sweep manifest."""
    root = tmp_path_factory.mktemp("views") / "sweep"
    cells = []
    for run in sorted(SAMPLE_MASKS.glob("*-s*")):
        task, seed = run.name.rsplit("-s", 1)
        shutil.copytree(run, root / task / "tiny-bert" / f"s{seed}")
        cells.append({"task": task, "model": "tiny-bert", "seed": int(seed), "settings": {},
                      "path": f"{task}/tiny-bert/s{seed}", "status": "complete"})
    write_json_atomic(root / SWEEP_FILE, {"format": SWEEP_FORMAT, "format_version": 1,
                                          "grid": {}, "cells": cells})
    return root


@pytest.fixture(scope="module")
def stats(sweep_dir):
    return sweep_stats([open_run(p) for p in find_runs(sweep_dir)])


def test_per_round_statistics_and_the_matrix_by_hand(sweep_dir, stats):
    runs = [open_run(p) for p in find_runs(sweep_dir)]
    for g in stats.groups:
        mine = sorted((r for r in runs if r.task == g.task), key=lambda r: r.seed)
        assert [r.index for r in g.rounds] == [rd.index for rd in mine[0].rounds]
        for k, rs in enumerate(g.rounds):
            values = [r.rounds[k].metrics[r.metric] for r in mine]
            ref = estimate(values, stats.confidence)
            assert rs.metric == ref and rs.metric.n == 3
            assert rs.sparsity.mean == pytest.approx(np.mean([r.rounds[k].sparsity
                                                              for r in mine]))
        assert g.rounds[0].metric == g.dense  # round 0 is dense
    [m] = stats.matrices
    assert m.names == ("agreement/s0", "agreement/s1", "agreement/s2", "sentiment/s0",
                       "sentiment/s1", "sentiment/s2")  # by task, then seed
    o = overlap(sorted(runs, key=lambda r: (r.task, r.seed)), by="weight")
    assert np.allclose(np.array(m.jaccard), o.matrix("jaccard"))
    assert np.allclose(np.array(m.jaccard), np.array(m.jaccard).T)
    # the matrix agrees with the seed-fixed vs cross-seed summary
    [c] = stats.cross_task
    j = np.array(m.jaccard)
    same = [j[i, i + 3] for i in range(3)]
    assert c.same_seed_jaccard == pytest.approx(np.mean(same))
    assert json.loads(json.dumps(stats.to_dict()))["matrices"][0]["names"] == list(m.names)


def _figure(text: str, name: str) -> dict:
    m = re.search(rf'data-figure="fig-\d+-{name}">(.*?)</script>', text, re.S)
    assert m, name
    return json.loads(m.group(1))


def test_report_draws_bands_the_matrix_and_the_verdicts(sweep_dir, stats, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(sweep_dir), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    curves = _figure(text, "seeds-curves")
    traces = curves["data"]
    # per group: dense band (2 traces) + line, IMP band (2) + line; the arms are in "seeds"
    assert len(traces) == 6 * len(stats.groups)
    g = stats.groups[0]
    band = next(t for t in traces if t.get("name") == "IMP rounds band")
    upper = traces[traces.index(band) - 1]
    assert band["fill"] == "tonexty"
    # accuracy: the bands clipped to [0, 1]
    assert band["y"] == pytest.approx([max(r.metric.low, 0.0) for r in g.rounds], abs=1e-4)
    assert upper["y"] == pytest.approx([min(r.metric.high, 1.0) for r in g.rounds], abs=1e-4)
    assert band["x"] == pytest.approx([r.sparsity.mean for r in g.rounds], abs=1e-4)
    dense_band = next(t for t in traces if t.get("name") == "dense band")
    assert dense_band["y"] == pytest.approx([max(g.dense.low, 0.0)] * 2, abs=1e-5)
    reinit = next(t for t in _figure(text, "seeds")["data"]
                  if t.get("name") == "random reinit control")
    est = g.controls["random_reinit"]
    assert reinit["error_y"]["array"][0] == pytest.approx(min(est.high, 1.0) - est.mean,
                                                          abs=1e-4)  # clipped to [0, 1]
    # the seed x task matrix compares the runs the overlap section compares: drawn there once
    assert "seeds-overlap-0" not in text
    matrix = _figure(text, "overlap-0")["data"][0]
    [m] = stats.matrices
    assert matrix["x"] == list(m.names) and matrix["y"] == list(m.names)  # task, then seed
    off = ~np.eye(len(m.names), dtype=bool)  # the diagonal is left blank
    assert np.allclose(np.array(matrix["z"], dtype=float)[off], np.array(m.jaccard)[off],
                       atol=1e-3)
    section = text[text.index("<section id='seeds'>"):]
    for grp in stats.groups:  # the verdict table, and each verdict's reason in one line
        assert f"<td>{grp.task}</td>" in section and f"'>{grp.verdict}</span></td>" in section
        said = html.escape(grp.headline.replace("`", ""))  # commands set as <code>
        assert grp.headline and f"<b>{grp.verdict}</b>: {said}</p>" in re.sub(
            r"</?code>", "", section)


def test_inspect_opens_a_sweep_as_a_group_and_drills_down(sweep_dir, stats):
    asyncio.run(_inspect(sweep_dir, stats))


async def _inspect(sweep_dir: Path, stats) -> None:
    from textual.widgets import DataTable

    from ticketlens.tui.app import create_app
    from ticketlens.tui.run_screen import RunScreen
    from ticketlens.tui.sweep_screen import SweepScreen

    app = create_app([str(sweep_dir)])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = screen.query_one("#sweep-stats", DataTable)
        assert table.row_count == len(stats.groups)
        for i, g in enumerate(stats.groups):
            row = [str(c) for c in table.get_row_at(i)]
            assert row[0] == g.task and g.verdict in row
            assert f"{g.dense.mean:.4f} ± {g.dense.half_width:.4f}" in row
        why = str(screen.query_one("#sweep-cross").render())
        for g in stats.groups:  # each verdict's reason in one line
            assert f"{g.task}: {g.verdict}: {g.headline}" in why.replace("\n", " ")
        runs = screen.query_one("#sweep-runs", DataTable)
        assert [str(runs.get_row_at(i)[0]) for i in range(runs.row_count)] == [
            f"{t}/tiny-bert/s{s}" for t in ("agreement", "sentiment") for s in (0, 1, 2)]
        # Enter on the second group moves to its first run; Enter there opens the run
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert runs.has_focus and runs.cursor_row == 3
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        assert app.screen.run.path == sweep_dir / "sentiment/tiny-bert/s0"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SweepScreen)


def test_info_shows_each_sweep_verdict_with_its_reason_in_one_line(sweep_dir, stats, capsys):
    assert main(["info", str(sweep_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for g in stats.groups:
        [line] = [x for x in lines if x.startswith(f"{g.task} ") and f": {g.verdict}: " in x]
        assert line.endswith(g.headline[-30:])
