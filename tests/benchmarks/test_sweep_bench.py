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


def _timed(out, *args: str) -> float:
    import subprocess
    import sys

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ticketlens", "sweep", "-o", str(out), "--json",
                    *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def _cell_seconds(out) -> float:
    import json

    return sum(c["wall_s"] for c in json.loads((out / "sweep.json").read_text())["cells"])


def test_ray_overhead_per_cell(tmp_path, record):
    """Ray's overhead per cell (issue: sweeps, point 5; goal <= 2 s): N tiny cells on a local
    Ray instance of 2 CPUs (1 CPU a cell) against the same cells on 2 local workers (1 thread
    each), wall clock of the whole `ticketlens sweep`. (ray - local) / N holds the connection
    once; the same commands again with every cell complete measure that fixed part alone."""
    pytest.importorskip("ray")
    from test_sweep_executors import TINY, ray_instance

    n = 8
    cells = ["--seeds", f"0-{n - 1}", "--set", "train.steps=6it", *TINY]
    with ray_instance(2) as address:
        local = _timed(tmp_path / "local", "--workers", "2", *cells)
        ray = _timed(tmp_path / "ray", "--ray", address, "--cpus-per-run", "1", *cells)
        process_s = {x: _cell_seconds(tmp_path / x) for x in ("local", "ray")}
        local_again = _timed(tmp_path / "local", "--workers", "2", *cells)
        ray_again = _timed(tmp_path / "ray", "--ray", address, "--cpus-per-run", "1", *cells)
    fixed = ray_again - local_again
    record("sweep_ray_overhead", {
        "cells": n, "settings": " ".join(cells), "local_2_workers_s": round(local, 1),
        "ray_2_cpus_s": round(ray, 1),
        "cell_process_s_local": round(process_s["local"], 1),
        "cell_process_s_ray": round(process_s["ray"], 1),
        "overhead_per_cell_s": round((ray - local) / n, 2),
        "connect_s": round(fixed, 1),
        "overhead_per_cell_without_connect_s": round((ray - local - fixed) / n, 2)})
