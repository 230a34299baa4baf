"""Crash safety: a `find` SIGKILLed and resumed ends with the files of an uninterrupted run.

The short version of ``make chaos`` (``tests/chaos/chaos_find.py``): three kills at chosen
moments of a 3-round search with its two controls (a fresh run's first write, a write in
round 1, the random-mask control's training), then every file compared with the reference
byte for byte (the manifest without its clock fields). And the two bugs the chaos run found:
a folder left by a kill during the first manifest write could not be resumed, and the
``.tmp-*`` files of killed writes stayed in the run for ever.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from chaos import chaos_find as C

from ticketlens.cli.main import main

# 3 rounds (0, 50%, 75%) of 40 steps and the two controls: ~5 s of training on one thread
ARGS = ("--quiet", "--steps", "40it", "--train-size", "512", "--dev-size", "256",
        "--batch-size", "16", "--rate", "0.5", "--target-sparsity", "0.75", "--rewind", "5it")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, C.Timeline]:
    out = tmp_path_factory.mktemp("chaos") / "reference"
    log = out.parent / "find.log"
    return out, C.run_reference(out, C.find_cmd(out, args=ARGS), log)


def _middle(tl: C.Timeline, stage: str) -> float:
    k = tl.stage_names.index(stage)
    return (tl.stage_start(k) + tl.stage_end[k]) / 2


def test_killed_three_times_the_resumed_run_is_identical(reference, tmp_path):
    ref, tl = reference
    out = tmp_path / "chaos"
    out.mkdir()
    # what a kill during the first manifest write leaves: the folder and a temp file
    (out / ".tmp-manifest.json.killed").write_bytes(b'{"format": "ticketl')
    chaos = C.Chaos(tl, tmp_path / "find.log")
    kills = [C.Kill("first write"), C.Kill("write", ref=_middle(tl, "round 1")),
             C.Kill("time", ref=_middle(tl, "control random_mask"))]
    assert chaos.run("test", out, C.find_cmd(out, args=ARGS), kills), chaos.failures
    assert len(chaos.landings) == 3, "a kill did not fire: the run ended first"
    problems, compared = C.compare(ref, out)
    assert problems == []
    # manifest, tokenizer, 3 round masks and the random mask, rewind, dense and ticket weights
    assert compared == len(C.listing(ref)) == 9


def test_a_resume_removes_what_killed_writes_left(reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    # killed after the controls, before the final manifest: the verdict is written again
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(status="running", verdict=None)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for rel in (".tmp-manifest.json.a1", "masks/.tmp-round_002.safetensors.b2",
                "weights/.tmp-round_002.safetensors.c3"):
        (out / rel).write_bytes(random.Random(0).randbytes(100))
    assert main(["find", *ARGS, "--out", str(out)]) == 0
    problems, _ = C.compare(ref, out)
    assert problems == []  # no leftover, and the manifest is the reference's again
