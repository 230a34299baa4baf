from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_MASKS = ROOT / "sample_masks"

# A find that finishes in seconds: 3 IMP rounds (0, 50%, 75%) and both controls.
QUICK_FIND = ["--steps", "40it", "--train-size", "512", "--dev-size", "256", "--batch-size",
              "16", "--rate", "0.5", "--target-sparsity", "0.75", "--rewind", "5it"]


def run_cli(*args: str, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m ticketlens ARGS`` in a fresh process (``env`` added to the environment)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ticketlens", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> Path:
    """One short `find` on tiny-bert/sentiment, shared by the tests that read a run."""
    from ticketlens.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "quick"
    assert main(["find", "--quiet", "--out", str(out), *QUICK_FIND]) == 0
    return out


async def settle(pilot) -> None:
    """Wait (for events, not for time) until a Textual app under test is idle: pending
    messages handled, every worker done (also those the handlers started meanwhile), their
    results posted and handled, animations run."""
    app = pilot.app
    for _ in range(100):  # each pass lets handlers start more workers; a few passes suffice
        await pilot.pause()
        busy = [w for w in app.workers if not w.is_finished]
        if not busy:
            break
        await app.workers.wait_for_complete(busy)
    await pilot.wait_for_scheduled_animations()
