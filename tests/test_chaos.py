"""Crash safety: a `find` SIGKILLed and resumed ends with the files of an uninterrupted run.

The short, deterministic version of ``make chaos`` (``tests/chaos/chaos_find.py``, whose kills
fall at random moments): three kills at chosen points of a 3-round search with its two
controls, placed with the fault hook (``TICKETLENS_FAULT``, ``ticketlens.core.fault``) so they
land at the same write or training step on any machine, however fast or loaded: a fresh run's
first write, the write of round 1's mask, the middle of the random-mask control's training.
After each kill the test checks where it landed (what is on disk); then every file is compared
with the reference byte for byte (the manifest without its clock fields). And the two bugs the
chaos run found: a folder left by a kill during the first manifest write could not be resumed,
and the ``.tmp-*`` files of killed writes stayed in the run for ever.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from chaos import chaos_find as C

from ticketlens.cli.main import main
from ticketlens.core import fault
from ticketlens.core.errors import ConfigError

# 3 rounds (0, 50%, 75%) of 40 steps and the two controls: ~5 s of training on one thread
ARGS = ("--quiet", "--steps", "40it", "--train-size", "512", "--dev-size", "256",
        "--batch-size", "16", "--rate", "0.5", "--target-sparsity", "0.75", "--rewind", "5it")


def env(plan: str | None = None) -> dict[str, str]:
    """The chaos run's environment (one thread), with ``TICKETLENS_FAULT=plan`` or none."""
    out = {k: v for k, v in C.ENV.items() if k != fault.ENV}
    out["PYTHONHASHSEED"] = "0"
    return {**out, fault.ENV: plan} if plan else out


def find(out: Path, plan: str | None = None) -> subprocess.CompletedProcess:
    """``find`` into ``out`` in a fresh process, with ``TICKETLENS_FAULT=plan`` (or none)."""
    return subprocess.run(C.find_cmd(out, args=ARGS), env=env(plan), cwd=C.ROOT, timeout=600,
                          capture_output=True, text=True)


# the reference run, recording the fault points it passes (same process setup as `find`)
RECORD = """
import json, sys
from ticketlens.core import fault
from ticketlens.cli.main import main
points = []
fault.point = lambda name, what=None: points.append((name, str(what or "")))
code = main(sys.argv[2:])
open(sys.argv[1], "w").write(json.dumps(points))
sys.exit(code)
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """The uninterrupted run, and the fault points it passed in order: ("write", file
    relative to the run) and ("step", "")."""
    out = tmp_path_factory.mktemp("chaos") / "reference"
    trace = out.parent / "points.json"
    cmd = [C.find_cmd(out, args=ARGS)[0], "-c", RECORD, str(trace),
           *C.find_cmd(out, args=ARGS)[3:]]  # python -c RECORD TRACE find ARGS --out OUT
    proc = subprocess.run(cmd, env=env(), cwd=C.ROOT, timeout=600, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    points = [(name, Path(what).relative_to(out).as_posix() if what else "")
              for name, what in json.loads(trace.read_text())]
    return out, points


def test_fault_points_count_as_planned(reference):
    """The hook's counting: N-th write / step of this process, 1-based."""
    _, points = reference
    writes = [what for name, what in points if name == "write"]
    manifest = json.loads((reference[0] / "manifest.json").read_text(encoding="utf-8"))
    steps = sum(r["steps"] for r in manifest["rounds"]) + sum(
        c["steps"] for c in manifest["controls"].values())
    assert sum(name == "step" for name, _ in points) == steps
    assert "masks/round_001.safetensors" in writes and writes[-1] == "manifest.json"
    assert fault.plan("kill:step:70, kill:write:9") == {"step": 70, "write": 9}
    for bad in ("kill:step:0", "kill:read:3", "stop:step:3", "kill:step", "kill:write:x"):
        with pytest.raises(ConfigError, match="kill:POINT:N"):
            fault.plan(bad)


def test_killed_three_times_the_resumed_run_is_identical(reference, tmp_path):
    ref, points = reference
    manifest = json.loads((ref / "manifest.json").read_text(encoding="utf-8"))
    writes = [what for name, what in points if name == "write"]
    out = tmp_path / "chaos"
    out.mkdir()
    # what a kill during the first manifest write leaves: the folder and a temp file
    (out / ".tmp-manifest.json.killed").write_bytes(b'{"format": "ticketl')

    # 1. a fresh run, at its first write: that file's temp file is left, nothing else
    assert find(out, "kill:write:1").returncode == -signal.SIGKILL
    disk = C.Disk.read(out)
    assert [C._final_name(t) for t in disk.tmp if not t.endswith(".killed")] == [writes[0]]
    assert disk.manifest is None or not disk.manifest.get("rounds")

    # 2. the resumed run (nothing recorded yet: it starts over), at the write of round 1's
    # mask: round 0 is recorded, round 1 is not, the mask's temp file is left
    nth = writes.index("masks/round_001.safetensors") + 1
    assert find(out, f"kill:write:{nth}").returncode == -signal.SIGKILL
    disk = C.Disk.read(out)
    assert [r["round"] for r in disk.manifest["rounds"]] == [0]
    assert [C._final_name(t) for t in disk.tmp] == ["masks/round_001.safetensors"]

    # 3. resumed again (from round 1), in the middle of the random-mask control's training:
    # the steps of rounds 1 and 2, of the controls trained before it, half of its own
    controls = list(manifest["controls"])
    before = controls[: controls.index("random_mask")]
    nth = (sum(r["steps"] for r in manifest["rounds"][1:])
           + sum(manifest["controls"][c]["steps"] for c in before)
           + manifest["controls"]["random_mask"]["steps"] // 2)
    assert find(out, f"kill:step:{nth}").returncode == -signal.SIGKILL
    disk = C.Disk.read(out)
    assert [r["round"] for r in disk.manifest["rounds"]] == [0, 1, 2]
    assert list(disk.manifest.get("controls") or {}) == before
    assert disk.tmp == []  # a step kill interrupts no write

    # 4. left to finish: every file as the reference's (and no temp file left)
    done = find(out)
    assert done.returncode == 0, done.stderr[-2000:]
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


