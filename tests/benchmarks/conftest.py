from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import pytest

RESULTS = Path(__file__).with_name("results.json")


def machine() -> str:
    import os

    import torch

    return (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


@pytest.fixture
def record():
    """Record a benchmark's figures in results.json (RESULTS.md quotes them)."""

    def _record(name: str, figures: dict) -> None:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data[name] = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), **figures}
        RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"\n{name}: {json.dumps(figures, indent=2)}")

    return _record
