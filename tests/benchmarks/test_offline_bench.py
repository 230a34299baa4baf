"""An unreachable hub fails fast (moved here from tests/test_datasets.py, where it was a
wall-clock assertion): `find --task glue/sst2` with the hub endpoint on a closed local port
and an empty cache gives its one-line error, goal < 20 s wall on 2 cores (start-up
included), not after the HTTP client's retries."""

from __future__ import annotations

import time

import pytest
from conftest import run_cli

pytestmark = pytest.mark.benchmark


def test_unreachable_hub_fails_within_20_s(tmp_path, record):
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "",
           "HF_HOME": str(tmp_path / "hf")}
    walls = []
    for i in range(3):
        t0 = time.perf_counter()
        proc = run_cli("find", "--task", "glue/sst2", "--out", str(tmp_path / f"r{i}"),
                       timeout=120, env=env)
        walls.append(time.perf_counter() - t0)
        assert proc.returncode == 2 and "nyu-mll/glue:sst2" in proc.stderr, proc.stderr
    walls.sort()
    record("offline_hub_error", {"wall_s_median_of_3": round(walls[1], 2),
                                 "wall_s_max": round(walls[2], 2), "goal_s": 20})
    assert walls[1] < 20
