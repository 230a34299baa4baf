"""A sweep's cells (ticketlens/cell.py) and the record the sweep keeps of them: the threads a
local cell gets, what a rerun keeps of the cells it skips, how a killed cell is reported.
No `find` runs here: the cell's process is replaced where it starts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from ticketlens import cell as C
from ticketlens.core.config import FindConfig
from ticketlens.executors import LocalExecutor
from ticketlens.sweep import SWEEP_FILE, Grid, run_sweep

SAMPLE = Path(__file__).resolve().parent.parent / "sample_masks" / "sentiment-s0"


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


@pytest.fixture
def started(monkeypatch):
    """The cell's processes as they would start: (argv, env) of each; each 'ends' with the
    return code and stderr in ``started.result``."""
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(argv, *, env, **_kw):
        calls.append((argv, env))
        rc, err = fake_run.result
        return subprocess.CompletedProcess(argv, rc, "", err)

    fake_run.result = (0, "")
    fake_run.calls = calls
    monkeypatch.setattr(C.subprocess, "run", fake_run)
    return fake_run


def test_local_cells_share_the_cores(eight_cores, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert C.threads_per_worker(2) == 4 and C.threads_per_worker(3) == 2
    assert C.threads_per_worker(16) == 1


@pytest.mark.parametrize("omp, workers, want", [("1", 2, 1), ("3", 2, 3), ("6", 2, 4),
                                                ("2", 8, 1), ("junk", 2, 4), ("0", 2, 4)])
def test_omp_num_threads_caps_a_local_cell(eight_cores, monkeypatch, omp, workers, want):
    """README: OMP_NUM_THREADS caps find's threads; a local sweep's cells too (8 cores)."""
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert C.threads_per_worker(workers) == want


def test_a_local_cell_starts_with_the_capped_threads(eight_cores, monkeypatch, started,
                                                     tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cells = [C.Cell("sentiment", "tiny-bert", s) for s in (0, 1)]
    recs = dict(LocalExecutor(2).run(cells, tmp_path, FindConfig()))
    assert [r["threads"] for r in recs.values()] == [1, 1]
    assert [env["OMP_NUM_THREADS"] for _, env in started.calls] == ["1", "1"]


@pytest.mark.parametrize("rc, needle", [
    (-signal.SIGKILL, "killed by SIGKILL (signal 9): out of memory?"),
    (-signal.SIGTERM, "killed by SIGTERM (signal 15)"),
    (-signal.SIGSEGV, "crashed with SIGSEGV (signal 11)"),
])
def test_a_killed_cell_names_the_signal_and_what_to_do(started, tmp_path, rc, needle):
    # what a killed `find` leaves on stderr is its progress, not a reason
    started.result = (rc, "round  1  sparsity  20.0%  accuracy 0.9\n")
    rec = C.run_cell(C.Cell("sentiment", "tiny-bert", 0), tmp_path, FindConfig(), 1)
    assert rec["status"] == "failed" and rec["exit_code"] == rc
    assert needle in rec["error"] and "run the same sweep again" in rec["error"]
    assert "exit code" not in rec["error"] and "round" not in rec["error"]


def test_a_failing_cell_keeps_finds_one_line(started, tmp_path):
    started.result = (2, "Traceback...\nticketlens: error: --rewind 5it is at or past the end\n")
    rec = C.run_cell(C.Cell("sentiment", "tiny-bert", 0), tmp_path, FindConfig(), 1)
    assert rec["error"] == "--rewind 5it is at or past the end" and rec["exit_code"] == 2


class _Nothing:
    """An executor with nothing left to run (every cell complete)."""

    def __init__(self):
        self.ran: list | None = None

    def describe(self) -> str:
        return "nothing"

    def check(self) -> None:
        pass

    def run(self, cells, root, base):
        self.ran = list(cells)
        return iter(())


def test_a_rerun_keeps_the_records_of_the_cells_it_skips(tmp_path):
    grid = Grid(("sentiment",), ("tiny-bert",), (0, 1))
    cells = grid.cells()
    out = tmp_path / "sweep"
    for c in cells:  # both complete (a real complete run, copied)
        shutil.copytree(SAMPLE, c.path(out))
    first = {"sentiment/tiny-bert/s0": {"status": "complete", "wall_s": 41.5, "threads": 2,
                                        "host": "node7", "executor": "ray"}}
    (out / SWEEP_FILE).write_text(json.dumps({
        "format": "ticketlens.sweep", "format_version": 1, "grid": grid.to_dict(),
        "cells": [{**c.to_dict(), **first.get(c.label, {"status": "pending"})}
                  for c in cells]}))
    nothing = _Nothing()
    run_sweep(grid, out, executor=nothing, cells=cells)
    assert nothing.ran == []
    recs = {c["path"]: c for c in json.loads((out / SWEEP_FILE).read_text())["cells"]}
    kept = recs["sentiment/tiny-bert/s0"]
    assert kept["wall_s"] == 41.5 and kept["host"] == "node7" and kept["threads"] == 2
    assert kept["status"] == "complete" and kept["skipped"] is True
    # completed outside the sweep (no record): marked as skipped, nothing invented
    assert {k: v for k, v in recs["sentiment/tiny-bert/s1"].items()
            if k not in cells[1].to_dict()} == {"status": "complete", "skipped": True}
