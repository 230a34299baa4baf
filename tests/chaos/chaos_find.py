"""``make chaos``: SIGKILL ``ticketlens find`` at random moments, resume it, compare every file.

1. The reference: one uninterrupted run of a short search (4 IMP rounds and 3 controls),
   watched every 2 ms to learn its timeline: when the manifest first appears (start-up done)
   and when each stage (round, control, verdict) is recorded.
2. The chaos run, into another directory, with the same command: started, SIGKILLed, started
   again, ... then left to finish. Kill moments are drawn (seeded) over the reference's
   search, from the manifest's appearance to the end of the last control, in order. A moment
   lies in a stage (so many seconds into it); a restart redoes its start-up and the stage
   the last kill interrupted, so the kill waits for that stage to begin in the restarted
   process, then that many seconds (or until the stage ends, when it ends sooner than in the
   reference): a "time" kill fires then; a "write" kill watches the directory from then on
   and fires at the 1st (2nd, 3rd) write, as soon as its ``.tmp-*`` file appears (or the
   file has changed, when a poll missed it). Besides: a kill in the first seconds (before
   the manifest exists) and one at the first write of a fresh run.
3. Adding a control to a finished run: a run without ``--oneshot-control`` is finished, then
   the same command with it is killed in its start-up, while it trains the one-shot control,
   and at a write during that control, and left to finish.

Each finished directory is compared with the reference: the same set of files (so no
``.tmp-*`` leftovers), every file under ``masks/`` and ``weights/`` and ``tokenizer.json``
byte for byte, and ``manifest.json`` equal once the :data:`VOLATILE` fields are removed.
Prints one line per kill (when, where it landed, what was on disk) and a summary; exits 1 on
any difference, on a restart that fails, or when fewer kills fired than asked for. Every
``find`` runs on one thread (``OMP_NUM_THREADS=1``), one at a time.

    python tests/chaos/chaos_find.py [--kills 10] [--seed 0] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketlens.core.io import TMP_PREFIX

ROOT = Path(__file__).resolve().parents[2]
# 4 rounds (0, 50%, 75%, 87.5%) of 40 steps and 3 controls: 10-16 s on one thread, half
# of it the start-up (imports, setup)
FIND_ARGS = ("--quiet", "--steps", "40it", "--train-size", "512", "--dev-size", "256",
             "--batch-size", "16", "--rate", "0.5", "--target-sparsity", "0.875",
             "--rewind", "5it")
ONESHOT = "--oneshot-control"
# one torch thread (ticketlens caps its threads at OMP_NUM_THREADS): the other core stays
# free for whatever else runs, and one find runs at a time
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# manifest fields that legitimately differ between an uninterrupted and a resumed run:
# ``created`` is when the manifest was first written (a kill before it exists moves it);
# ``wall_time_s`` (per round and per control) is a duration measured by the clock;
# ``runtime`` describes the process that last ran (threads, cores), which a resume on
# another machine changes. Everything else, metrics and verdict included, must be equal;
# every other file (masks/, weights/, tokenizer.json) byte for byte.
VOLATILE = ("created", "runtime", "rounds[*].wall_time_s", "controls.*.wall_time_s")
POLL_S = 0.0005  # how often a write kill looks at the directory


def find_cmd(out: Path, *extra: str, args: tuple[str, ...] = FIND_ARGS) -> list[str]:
    return [sys.executable, "-m", "ticketlens", "find", *args, *extra, "--out", str(out)]


# ----------------------------------------------------------------------------- the disk
def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every file below ``root`` (fast enough to poll)."""
    out: dict[str, tuple[int, int]] = {}
    todo = [(root, "")]
    while todo:
        d, prefix = todo.pop()
        try:
            entries = list(os.scandir(d))
        except FileNotFoundError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    todo.append((Path(e.path), f"{prefix}{e.name}/"))
                else:
                    st = e.stat(follow_symlinks=False)
                    out[prefix + e.name] = (st.st_size, st.st_mtime_ns)
            except FileNotFoundError:  # a .tmp-* file renamed meanwhile
                continue
    return out


def is_tmp(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1].startswith(TMP_PREFIX)


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def stages_done(manifest: dict[str, Any] | None) -> int:
    """Stages recorded: rounds, then controls, then the verdict (status complete)."""
    if manifest is None:
        return 0
    return (len(manifest.get("rounds") or []) + len(manifest.get("controls") or {})
            + (manifest.get("status") == "complete"))


@dataclass(frozen=True)
class Disk:
    """What a run directory holds, read while nothing writes to it."""

    files: dict[str, tuple[int, int]]
    manifest: dict[str, Any] | None

    @classmethod
    def read(cls, root: Path) -> Disk:
        return cls(listing(root), read_manifest(root))

    @property
    def tmp(self) -> list[str]:
        return sorted(f for f in self.files if is_tmp(f))

    def describe(self) -> str:
        if not self.files:
            return "nothing"
        parts = []
        m = self.manifest
        if m is None:
            parts.append("no manifest")
        else:
            rounds = [r["round"] for r in m.get("rounds") or []]
            parts.append(f"manifest {m.get('status')}: rounds "
                         f"{f'{rounds[0]}-{rounds[-1]}' if rounds else '-'}, controls "
                         f"{','.join(m.get('controls') or {}) or '-'}")
        for sub in ("masks", "weights"):
            names = sorted(f[len(sub) + 1:].removesuffix(".safetensors")
                           for f in self.files if f.startswith(sub + "/") and not is_tmp(f))
            parts.append(f"{sub} {' '.join(names) or '-'}")
        if "tokenizer.json" not in self.files:
            parts.append("no tokenizer.json")
        if self.tmp:
            parts.append("tmp " + " ".join(self.tmp))
        return "; ".join(parts)


# ----------------------------------------------------------------------------- the reference
@dataclass(frozen=True)
class Timeline:
    """When the uninterrupted run did what (seconds since its process started)."""

    duration: float
    manifest_at: float  # the manifest's first appearance (start-up done: imports, setup)
    stage_end: tuple[float, ...]  # stage k recorded at stage_end[k]
    stage_names: tuple[str, ...]  # "round 0", ..., "control random_mask", ..., "verdict"

    def stage_start(self, k: int) -> float:
        return self.manifest_at if k == 0 else self.stage_end[k - 1]

    def locate(self, t: float) -> tuple[int, float]:
        """(stage, seconds into it) of the moment ``t`` (at least the first stage)."""
        k = next((k for k, end in enumerate(self.stage_end) if t < end),
                 len(self.stage_end) - 1)
        return k, max(0.0, t - self.stage_start(k))


def stage_names(manifest: dict[str, Any]) -> tuple[str, ...]:
    return (*(f"round {r['round']}" for r in manifest.get("rounds") or []),
            *(f"control {c}" for c in manifest.get("controls") or {}), "verdict")


def next_stage(tl: Timeline, manifest: dict[str, Any] | None) -> int:
    """The reference stage a run with ``manifest`` does next (the verdict when all are done)."""
    recorded = set(stage_names(manifest)[:-1]) if manifest else set()
    return next((k for k, s in enumerate(tl.stage_names[:-1]) if s not in recorded),
                len(tl.stage_names) - 1)


def run_reference(out: Path, cmd: list[str], log: Path) -> Timeline:
    """Run ``cmd`` to the end, watching the manifest: the timeline kills are drawn on."""
    with log.open("ab") as fh:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        manifest_at, ends, seen = None, [], None
        while True:
            done = proc.poll() is not None
            now = time.monotonic() - t0
            try:
                mtime = (out / "manifest.json").stat().st_mtime_ns
            except FileNotFoundError:
                mtime = None
            if mtime is not None and mtime != seen:
                seen = mtime
                manifest_at = now if manifest_at is None else manifest_at
                ends += [now] * (stages_done(read_manifest(out)) - len(ends))
            if done:
                break
            time.sleep(0.002)
    if proc.returncode != 0 or manifest_at is None:
        raise SystemExit(f"chaos: the reference run failed (exit {proc.returncode}); see {log}")
    names = stage_names(read_manifest(out) or {})
    assert len(ends) == len(names), (ends, names)
    return Timeline(time.monotonic() - t0, manifest_at, tuple(ends), names)


# ----------------------------------------------------------------------------- kills
@dataclass(frozen=True)
class Kill:
    """One planned kill. ``mode`` "time": at the moment ``ref`` of the reference's clock;
    "write": at the ``nth`` write from ``ref`` on; "first write": at the process's first
    write; "startup": ``delay`` seconds after the process started, whatever it is doing.

    ``ref`` lies in some stage, so many seconds after the stage began; a restarted run
    redoes its start-up (imports, setup) and the stage the last kill interrupted, so the kill
    waits for that stage to begin in the restarted process (its search began, and the
    manifest records the stages before), then that many seconds (:meth:`aim`), or less when
    the stage ends sooner than the reference's: then at its end. Slower or faster start-ups
    and stages of the restarted process do not move the kill to a later stage."""

    mode: str
    ref: float = 0.0
    delay: float = 0.0
    nth: int = 1  # "write": the nth write from ``ref`` on (a round writes mask, weights,
    # manifest)

    def aim(self, tl: Timeline, nxt: int) -> tuple[int, float]:
        """(stage, seconds into it) to kill at, for a run whose next stage is ``nxt``. When an
        earlier kill landed late and the run is past the stage of ``ref`` already, the same
        fraction of the run's next stage (so the kills go on until the plan is used up)."""
        k, offset = tl.locate(self.ref)
        if k >= nxt:
            return k, offset
        frac = offset / max(tl.stage_end[k] - tl.stage_start(k), 1e-9)
        return nxt, frac * (tl.stage_end[nxt] - tl.stage_start(nxt))

    def target(self, tl: Timeline) -> str:
        if self.mode in ("time", "write"):
            k, offset = tl.locate(self.ref)
            nth = f", write {self.nth}" if self.mode == "write" else ""
            return f"ref {self.ref:5.2f}s = {tl.stage_names[k]} + {offset:.2f}s{nth}"
        return {"startup": f"{self.delay:.2f}s", "first write": "-"}[self.mode]


@dataclass
class Landing:
    """Where a kill landed, read from the process's clock and the disk it left."""

    n: int
    phase: str
    kill: Kill
    at: float  # seconds after the process started
    trigger: str  # what fired it: "clock", or the file seen being written
    category: str  # before manifest / start-up / write / after a write / round / control /
    # verdict
    where: str
    disk: str

    def line(self, tl: Timeline) -> str:
        return (f"kill {self.n:2d} [{self.phase}] {self.kill.mode:<11} "
                f"{self.kill.target(tl):<42} fired {self.at:5.2f}s after start ({self.trigger}): "
                f"{self.where} | on disk: {self.disk}")


def _wait(proc: subprocess.Popen, until: float) -> bool:
    """Sleep until ``until`` (monotonic); False when the process ended first."""
    while (left := until - time.monotonic()) > 0:
        if proc.poll() is not None:
            return False
        time.sleep(min(left, 0.005))
    return proc.poll() is None


def _wait_in_stage(proc: subprocess.Popen, out: Path, tl: Timeline, stage: int,
                   until: float) -> str | None:
    """Sleep until ``until``: "clock"; or, when the manifest records ``stage`` first (the
    restarted run is faster than the reference), at once: the kill lands at the stage's end,
    never in a later stage. None when the process ended."""
    seen = None
    while (left := until - time.monotonic()) > 0:
        if proc.poll() is not None:
            return None
        try:
            mtime = (out / "manifest.json").stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != seen:
            seen = mtime
            if next_stage(tl, read_manifest(out)) > stage:
                return "wrote manifest.json: the stage ended sooner"
        time.sleep(min(left, 0.003))
    return "clock" if proc.poll() is None else None


def _final_name(tmp: str) -> str:
    """``masks/.tmp-round_001.safetensors.k2y3q0hf`` -> ``masks/round_001.safetensors``."""
    folder, _, name = tmp.rpartition("/")
    final = name[len(TMP_PREFIX):].rsplit(".", 1)[0]
    return f"{folder}/{final}" if folder else final


def _watch_for_write(proc: subprocess.Popen, out: Path, nth: int) -> str | None:
    """Poll until the ``nth`` write from now is under way (its ``.tmp-*`` file appeared) or,
    when the poll missed its temp file, done; describes that write."""
    base, expected, count = listing(out), set(), 0
    while proc.poll() is None:
        now = listing(out)
        for f in sorted(now):
            if is_tmp(f):
                if f in base:
                    continue
                expected.add(_final_name(f))
                seen = f"writing {f}"
            elif base.get(f) == now[f]:
                continue
            elif f in expected:  # the rename that ends a write already counted
                expected.discard(f)
                continue
            else:
                seen = f"wrote {f}"
            count += 1
            if count >= nth:
                return seen
        base = now
        time.sleep(POLL_S)
    return None


def _wait_for_stage(proc: subprocess.Popen, out: Path, start_ns: int, tl: Timeline,
                    stage: int) -> bool:
    """Wait until the process began its search (rewrote tokenizer.json, after the manifest)
    and the manifest records every stage before ``stage``; False if the process ended."""
    seen = None
    while proc.poll() is None:
        try:
            tok = (out / "tokenizer.json").stat().st_mtime_ns
            mtime = (out / "manifest.json").stat().st_mtime_ns
        except FileNotFoundError:
            tok = mtime = 0
        if tok >= start_ns and mtime != seen:
            seen = mtime
            if next_stage(tl, read_manifest(out)) >= stage:
                return True
        time.sleep(0.002)
    return False


def attempt(cmd: list[str], out: Path, kill: Kill | None, tl: Timeline, log: Path,
            ) -> tuple[int | None, float, str, int]:
    """Start ``cmd``; kill it as ``kill`` says (None: let it finish). Returns (exit code or
    None when killed, seconds it ran, what fired the kill, its start in time_ns)."""
    with log.open("ab") as fh:
        fh.write(f"\n--- {' '.join(cmd[2:])}  kill={kill}\n".encode())
        fh.flush()
        start_ns, t0 = time.time_ns(), time.monotonic()
        proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        trigger = "clock"
        if kill is None:
            proc.wait()
        else:
            if kill.mode == "startup":
                alive = _wait(proc, t0 + kill.delay)
            elif kill.mode == "first write":
                alive = True
            else:
                stage, offset = kill.aim(tl, next_stage(tl, read_manifest(out)))
                why = _wait_for_stage(proc, out, start_ns, tl, stage) and _wait_in_stage(
                    proc, out, tl, stage, time.monotonic() + offset)
                alive = bool(why)
                trigger = why if why and why != "clock" else trigger
            if alive and trigger == "clock" and kill.mode in ("write", "first write"):
                seen = _watch_for_write(proc, out, kill.nth)
                alive = seen is not None and proc.poll() is None
                trigger = seen or "the run ended first"
            if alive:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    ran = time.monotonic() - t0
    rc = None if proc.returncode == -signal.SIGKILL else proc.returncode
    return rc, ran, trigger, start_ns


def landing(out: Path, start_ns: int, tl: Timeline, trigger: str) -> tuple[str, str, Disk]:
    """(category, description, disk) of a run just killed (``trigger``: what fired it)."""
    disk = Disk.read(out)
    if disk.manifest is None:
        where = "before the manifest exists"
        if disk.tmp:
            where += f", while writing {', '.join(disk.tmp)}"
        elif disk.files:
            where += f", after writing {', '.join(sorted(disk.files))}"
        return "before manifest", where, disk
    stage = tl.stage_names[next_stage(tl, disk.manifest)]
    if disk.manifest.get("status") == "complete" and stage == "verdict":
        stage = "after completion"
    if disk.tmp:
        return "write", f"during a write ({', '.join(disk.tmp)} left), in {stage}", disk
    if trigger.startswith("wrote"):
        return "after a write", f"right after a write ({trigger[6:]}), in {stage}", disk
    if trigger.startswith("writing"):  # renamed before the kill arrived
        final = _final_name(trigger.removeprefix("writing "))
        return "after a write", f"right after a write ({final}), in {stage}", disk
    # the search starts in this process with rewriting tokenizer.json
    tok = disk.files.get("tokenizer.json")
    if tok is None or tok[1] < start_ns:
        return "start-up", f"start-up of a restart (imports, setup), before {stage}", disk
    category = stage.split()[0] if stage.startswith(("round", "control")) else "verdict"
    return category, f"{stage} (training or bookkeeping)", disk


# ----------------------------------------------------------------------------- comparison
def _volatile(manifest: dict[str, Any]) -> dict[str, Any]:
    """The :data:`VOLATILE` fields' values."""
    return {"created": manifest.get("created"), "runtime": manifest.get("runtime"),
            "rounds[*].wall_time_s": [r.get("wall_time_s") for r in manifest.get("rounds", [])],
            "controls.*.wall_time_s": {k: c.get("wall_time_s")
                                       for k, c in manifest.get("controls", {}).items()}}


def _strip(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` without the :data:`VOLATILE` fields."""
    m = json.loads(json.dumps(manifest))
    m.pop("created", None)
    m.pop("runtime", None)
    for r in m.get("rounds") or []:
        r.pop("wall_time_s", None)
    for c in (m.get("controls") or {}).values():
        c.pop("wall_time_s", None)
    return m


def _first_diff(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}{k}: only in {'the reference' if k in a else 'the resumed run'}"
            d = _first_diff(a[k], b[k], f"{path}{k}.")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_diff(x, y, f"{path}[{i}].")
            if d:
                return d
        return None
    return None if a == b else f"{path.rstrip('.')}: {a!r} in the reference, {b!r} resumed"


def compare(ref: Path, other: Path) -> tuple[list[str], int]:
    """Differences between two finished runs (empty: equal), and the files compared."""
    a, b = set(listing(ref)), set(listing(other))
    problems = [f"only in the reference: {f}" for f in sorted(a - b)]
    problems += [f"{'leftover' if is_tmp(f) else 'extra'} file: {f}" for f in sorted(b - a)]
    for f in sorted(a & b):
        if f == "manifest.json":
            d = _first_diff(_strip(read_manifest(ref) or {}), _strip(read_manifest(other) or {}))
            if d:
                problems.append(f"manifest.json differs: {d}")
        elif (ref / f).read_bytes() != (other / f).read_bytes():
            problems.append(f"{f}: bytes differ")
    return problems, len(a & b)


def volatile_differences(ref: Path, other: Path) -> list[str]:
    """Which of the excluded manifest fields did differ (for the record)."""
    x, y = _volatile(read_manifest(ref) or {}), _volatile(read_manifest(other) or {})
    return [k for k in VOLATILE if x[k] != y[k]]


# ----------------------------------------------------------------------------- the chaos
@dataclass
class Chaos:
    """Kills and restarts of runs, against the reference's timeline."""

    tl: Timeline
    log: Path
    landings: list[Landing] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    restarts: int = 0

    def run(self, phase: str, out: Path, cmd: list[str], kills: list[Kill]) -> bool:
        """Kill ``cmd`` once per planned kill (restarting it each time), then let it finish.
        False when a restart failed."""
        for kill in [*kills, None]:
            rc, ran, trigger, start_ns = attempt(cmd, out, kill, self.tl, self.log)
            self.restarts += 1
            if rc is None:
                category, where, disk = landing(out, start_ns, self.tl, trigger)
                self.landings.append(Landing(len(self.landings) + 1, phase, kill, ran,
                                             trigger, category, where, disk.describe()))
                print(self.landings[-1].line(self.tl), flush=True)
                continue
            if rc != 0:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-1:]
                self.failures.append(f"[{phase}] a restart exited {rc}: {' '.join(tail)}")
                print(f"FAIL [{phase}] the run cannot resume (exit {rc}): {' '.join(tail)}")
                return False
            if kill is not None:
                print(f"        [{phase}] {kill.mode} kill not fired: the run ended first "
                      f"({ran:.2f}s)", flush=True)
        return True


def plan_kills(tl: Timeline, n: int, rng: random.Random) -> list[Kill]:
    """``n`` kills for one run: one in the first seconds, one at a fresh run's first write,
    the rest drawn over the reference's search (in order; a third of them "write" kills),
    at least one of them during the controls."""
    kills = [Kill("startup", delay=rng.uniform(0.15, 0.5) * tl.manifest_at),
             Kill("first write")]
    k = max(0, n - len(kills))
    # up to the last control's end: a kill drawn in the verdict's few ms would not fire
    times = sorted(rng.uniform(tl.manifest_at, tl.stage_end[-2]) for _ in range(k))
    controls = (tl.stage_start(tl.stage_names.index("control random_mask")), tl.stage_end[-2])
    if times and not any(controls[0] <= t for t in times):
        times[-1] = rng.uniform(*controls)
    writes = set(rng.sample(range(k), k=min(k, max(3, k // 3))))
    for i, t in enumerate(times):
        if i not in writes:
            kills.append(Kill("time", ref=t))
            continue
        # a round writes its mask, weights and manifest; a control one or two files
        in_round = tl.stage_names[tl.locate(t)[0]].startswith("round")
        kills.append(Kill("write", ref=t, nth=rng.randint(1, 3) if in_round else 1))
    return kills


def plan_adding(tl: Timeline, rng: random.Random) -> list[Kill]:
    """Kills of the command that adds the one-shot control to a finished run: in its
    start-up, while it trains the control, and at a write during the control."""
    k = tl.stage_names.index("control oneshot")
    start, end = tl.stage_start(k), tl.stage_end[k]
    return [Kill("startup", delay=rng.uniform(0.3, 0.9) * tl.manifest_at),
            Kill("time", ref=rng.uniform(start, start + 0.8 * (end - start))),
            Kill("write", ref=rng.uniform(start, start + 0.5 * (end - start)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10, help="kills of the chaos run (>= 3)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="ticketlens-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "find.log"
    t_start = time.monotonic()
    try:
        ref = work / "reference"
        shutil.rmtree(ref, ignore_errors=True)
        tl = run_reference(ref, find_cmd(ref, ONESHOT), log)
        print(f"reference: {tl.duration:.2f}s, manifest at {tl.manifest_at:.2f}s; stages "
              + ", ".join(f"{s} {e:.2f}s" for s, e in zip(tl.stage_names, tl.stage_end)),
              flush=True)
        chaos = Chaos(tl, log)
        outs = {"same command": work / "chaos", "adding a control": work / "adding"}
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
        chaos.run("A", outs["same command"], find_cmd(outs["same command"], ONESHOT),
                  plan_kills(tl, args.kills, rng))
        # B: a finished run without the one-shot control, then the command that adds it
        added = outs["adding a control"]
        rc, _, _, _ = attempt(find_cmd(added), added, None, tl, log)
        if rc != 0:
            chaos.failures.append(f"[B] the run without --oneshot-control exited {rc}")
        else:
            chaos.run("B", added, find_cmd(added, ONESHOT), plan_adding(tl, rng))
        return report(chaos, ref, outs, time.monotonic() - t_start, args.kills)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"run directories kept in {work}")


def report(chaos: Chaos, ref: Path, outs: dict[str, Path], wall: float, wanted: int) -> int:
    problems = list(chaos.failures)
    compared = 0
    for what, out in outs.items():
        if not (out / "manifest.json").is_file():
            problems.append(f"[{what}] no finished run to compare")
            continue
        diffs, n = compare(ref, out)
        compared += n
        vol = ", ".join(volatile_differences(ref, out)) or "none"
        result = (f"{len(diffs)} difference(s)" if diffs else
                  f"identical (excluded manifest fields that did differ: {vol})")
        print(f"{what}: {n} files compared with the reference, {result}")
        problems += [f"[{what}] {d}" for d in diffs]
    killed_a = sum(1 for x in chaos.landings if x.phase == "A")
    if killed_a < wanted:
        problems.append(f"only {killed_a} of {wanted} planned kills of the chaos run fired")
    cats = Counter(x.category for x in chaos.landings)
    print(f"kills: {len(chaos.landings)} ({', '.join(f'{v} {k}' for k, v in cats.items())}); "
          f"{chaos.restarts} processes; {compared} files compared; wall {wall:.0f}s")
    for p in problems:
        print(f"DIFFERENCE {p}")
    print("chaos: " + ("PASS: every resumed run is identical to the uninterrupted one"
                       if not problems else f"FAIL: {len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
