"""Sweep throughput (issue: sweeps, point 5): 6 tiny-bert runs (2 tasks x 3 seeds) with 2
local workers (1 torch thread each) against the same 6 run one after another (2 threads
each), wall clock of the whole sweep. Goal: >= 1.7x on 2 cores."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.benchmark

SETTINGS = ["--steps", "150it", "--train-size", "2000", "--dev-size", "500"]


def _sweep(out, workers: int) -> float:
    import subprocess
    import sys

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ticketlens", "sweep", "-o", str(out), "--tasks",
                    "sentiment,agreement", "--seeds", "0-2", "--workers", str(workers),
                    "--json", *SETTINGS], check=True, capture_output=True)
    return time.perf_counter() - t0


def test_two_workers_vs_sequential(tmp_path, record):
    sequential = _sweep(tmp_path / "seq", 1)
    parallel = _sweep(tmp_path / "par", 2)
    record("sweep_6_runs_2_workers", {
        "runs": 6, "settings": " ".join(SETTINGS), "sequential_s": round(sequential, 1),
        "two_workers_s": round(parallel, 1),
        "throughput_ratio": round(sequential / parallel, 3)})
