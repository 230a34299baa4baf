"""One cell of a sweep: a ``find`` run in its own process.

:class:`Cell` names the run (task, model, seed and the grid's settings) and its folder;
:func:`run_cell` starts ``python -m ticketlens find ... --out CELL`` with
:func:`config_to_argv` of the cell's config and returns its record. Both the sweep's run loop
(``ticketlens.sweep``) and the executors (``ticketlens.executors``: local workers, Ray,
SLURM) build on this module, which knows neither.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketlens.core.config import FindConfig
from ticketlens.core.errors import ConfigError


@dataclass(frozen=True)
class Cell:
    task: str
    model: str
    seed: int
    settings: tuple[tuple[str, str], ...] = ()  # (group.field, value) pairs

    @property
    def label(self) -> str:
        s = ",".join(f"{k.split('.')[-1]}={v}" for k, v in self.settings)
        return f"{_name(self.task)}/{_name(self.model)}/{s + '/' if s else ''}s{self.seed}"

    def path(self, root: Path) -> Path:
        return root / self.label

    def config(self, base: FindConfig) -> FindConfig:
        d = base.to_dict()
        d["data"]["task"], d["model"]["model"], d["seed"] = self.task, self.model, self.seed
        for key, value in self.settings:
            group, name = key.split(".", 1) if "." in key else ("", key)
            target = d[group] if group else d
            target[name] = _typed(value, target[name], key)
        return FindConfig.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "seed": self.seed,
                "settings": dict(self.settings), "path": self.label}


def _name(text: str) -> str:
    """A task or model as a folder name: the file stem or the last path part."""
    p = Path(str(text).rstrip("/"))
    stem = p.stem if p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".txt") else p.name
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", stem.replace(":", "_")) or "_"


def _typed(value: str, like: Any, key: str) -> Any:
    try:
        if isinstance(like, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if isinstance(like, int):
            return int(value)
        if isinstance(like, float):
            return float(value)
        if isinstance(like, tuple):
            return tuple(x for x in value.split("+") if x)
    except ValueError:
        raise ConfigError(f"--set {key}: {value!r} is not a {type(like).__name__}") from None
    return value


def config_to_argv(cfg: FindConfig) -> list[str]:
    """``find`` flags that rebuild ``cfg`` (the inverse of :func:`find_config_from_args`):
    only the values that differ from the defaults."""
    argv: list[str] = []
    default = FindConfig()

    def flags(obj: Any, ref: Any) -> None:
        for f in dataclasses.fields(obj):
            value, dflt = getattr(obj, f.name), getattr(ref, f.name)
            if dataclasses.is_dataclass(value):
                flags(value, dflt)
                continue
            if value == dflt:
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + f.name.replace("_", "-"))
            elif isinstance(value, tuple):
                for v in value:
                    argv.extend([flag, str(v)])
            else:
                argv.extend([flag, repr(value) if isinstance(value, float) else str(value)])

    flags(cfg, default)
    return argv


def cell_argv(cfg: FindConfig, out: Path) -> list[str]:
    """``python -m ticketlens find`` arguments that rebuild ``cfg`` exactly."""
    return [sys.executable, "-m", "ticketlens", "find", "--quiet", "--out", str(out),
            *config_to_argv(cfg)]


def cell_status(path: Path) -> str:
    from ticketlens.core.errors import RunFormatError
    from ticketlens.core.run import is_run, read_manifest

    if not is_run(path):
        return "pending"
    try:
        return "complete" if read_manifest(path).complete else "interrupted"
    except RunFormatError:
        return "interrupted"


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` local cells: the cores this process may run on
    (its CPU affinity) shared out, never more than ``OMP_NUM_THREADS`` when the user set it
    (as for ``find``: README, "threads")."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    n = max(1, cores // max(1, workers))
    try:
        cap = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        cap = 0  # not a number: torch ignores it too
    return min(n, cap) if cap > 0 else n


def run_cell(cell: Cell, root: Path, base: FindConfig, threads: int) -> dict[str, Any]:
    """One cell in its own process; ``{"status": "complete" | "failed", ...}``."""
    out = cell.path(root)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cell_argv(cell.config(base), out), capture_output=True, text=True,
                          env=env)
    wall = round(time.perf_counter() - t0, 1)
    if proc.returncode == 0:
        return {"status": "complete", "wall_s": wall, "threads": threads}
    if proc.returncode < 0:  # what a killed process left on stderr is progress, not a reason
        error = killed_by(-proc.returncode)
    else:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        error = lines[-1] if lines else f"exit code {proc.returncode}"
    return {"status": "failed", "error": error.removeprefix("ticketlens: error: "),
            "exit_code": proc.returncode, "wall_s": wall, "threads": threads}


_RESUME = "run the same sweep again and the cell resumes where it was"


def killed_by(signum: int) -> str:
    """A cell's process ended by signal ``signum``: which signal, the likely cause, and what
    to do (one line)."""
    import signal

    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    what = f"{name} (signal {signum})"
    if signum == signal.SIGKILL:
        return (f"killed by {what}: out of memory? (the kernel's OOM killer sends it; "
                "`dmesg` says) Give each cell more memory (fewer --workers, a smaller "
                f"--batch-size), then {_RESUME}")
    if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        return (f"killed by {what}: stopped from outside (a time limit, a shutdown, kill); "
                f"{_RESUME}")
    return (f"crashed with {what}: a fault in native code (torch or a library it loads); "
            f"{_RESUME}, and report it if it crashes again")
