"""Terminal UI benchmark (issue: `ticketlens inspect`): first screen in <= 1.5 s on a
BERT-base-size run (84.9M-weight masks, 10 rounds), synthesised here."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.benchmark


def _synth_run(root):
    from ticketlens.core import masks as M
    from ticketlens.core.run import FORMAT, FORMAT_VERSION, RunPaths, write_manifest
    from ticketlens.importers import bert_anatomy

    anatomy, _ = bert_anatomy(12, 12)
    paths = RunPaths(root)
    g = torch.Generator().manual_seed(0)
    rounds = []
    density = 1.0
    masks = {n: torch.ones(s, dtype=torch.bool) for n, s in anatomy.shapes.items()}
    for r in range(10):
        if r:
            density *= 0.8
            masks = {n: m & (torch.rand(m.shape, generator=g) < 0.8) for n, m in masks.items()}
        M.save_masks(paths.mask(r), masks)
        rounds.append({"round": r, "sparsity": 1 - density, "metrics": {"accuracy": 0.9},
                       "sparsity_per_tensor": M.sparsity_per_tensor(masks), "steps": 1,
                       "wall_time_s": 1.0, "mask": paths.rel(paths.mask(r))})
    write_manifest(root, {"format": FORMAT, "format_version": FORMAT_VERSION, "seed": 0,
                          "status": "complete", "model": {"name": "bert-base (synthetic)"},
                          "anatomy": anatomy.to_dict(), "task": {"name": "synthetic",
                                                                 "metric": "accuracy"},
                          "rounds": rounds, "controls": {}, "ticket_round": 9,
                          "verdict": None, "weights": {}, "config": {}})


def test_first_screen_on_bert_base_size_run(tmp_path, record):
    from ticketlens.tui.app import create_app

    run = tmp_path / "bert-base-run"
    _synth_run(run)

    async def first_screen() -> tuple[float, float]:
        t0 = time.perf_counter()
        app = create_app([str(run)])  # one run: opens straight on its run view
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            t1 = time.perf_counter()
            await app.workers.wait_for_complete()  # survival of the ticket round loaded
            await pilot.pause()
            return t1 - t0, time.perf_counter() - t0

    first, full = asyncio.run(first_screen())
    record("tui_first_screen_bert_base", {
        "first_screen_s": round(first, 3), "with_ticket_round_survival_s": round(full, 3),
        "prunable_weights": 84934656, "rounds": 10})
    assert np.isfinite(first)
