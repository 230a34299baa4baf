"""`make gpu-check` is prepared: without CUDA it fails loudly (exit 1, one line, no
traceback), and its steps run end to end (shortened, on the CPU) and write their figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

SCRIPT = ROOT / "tests" / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_gpu_check_fails_loudly_without_cuda(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          env={"GPU_RESULTS": str(tmp_path), "PATH": ""}, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no CUDA device" in proc.stderr
    assert not (tmp_path / "gpu-check.json").exists()


def test_gpu_check_steps_run_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={"GPU_RESULTS": str(tmp_path / "out"), "PATH": "",
                               "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert data["find_bf16"]["rounds"][0]["sparsity"] == 0.0
    assert set(data["masked_step"]) == {"tiny-bert", "small-bert"}
    assert all(v["masked_over_dense"] > 0 for v in data["masked_step"].values())
    assert data["imp_round_vs_trainer"]["tiny-bert"]["ratio"] > 0
    assert all(v["exact_2_4"] and "skipped" in v for v in data["semi_structured_2_4"].values())
