"""Sweeps: a grid of ``find`` runs (tasks x models x settings x seeds), each cell an ordinary
run directory, with a sweep manifest.

::

    OUT/
      sweep.json                          the grid, and each cell's status (atomic)
      TASK/MODEL/[SETTINGS/]sSEED/        one run directory per cell (docs/format.md)

A cell is ``python -m ticketlens find ... --out CELL`` in its own process
(``ticketlens.cell``), started by an executor (``ticketlens.executors``: local workers, Ray
or SLURM).

Ray and SLURM need ``OUT`` on a file system every node sees, and ticketlens installed on every
node. Running the same sweep again skips complete cells and resumes the others (``find``
resumes); a failed cell is recorded with its one-line error and does not stop the others.
Everything that can be checked is checked before any cell starts: the settings, every task
(loaded once), the models' names, the cluster (``Executor.check``).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ticketlens.executors import Executor

from ticketlens.cell import Cell, cell_status
from ticketlens.core.config import FindConfig
from ticketlens.core.errors import ConfigError
from ticketlens.core.io import write_json_atomic

SWEEP_FORMAT = "ticketlens.sweep"
SWEEP_FILE = "sweep.json"


# ----------------------------------------------------------------------------- the grid
def parse_seeds(text: str) -> tuple[int, ...]:
    """``0-4``, ``0,2,7`` or ``0-2,5`` -> seeds, in order, without repeats."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ConfigError(f"--seeds: {part!r} is an empty range")
            seeds += range(a, b + 1)
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ConfigError(f"--seeds: {part!r} is not a seed or a range like 0-4")
    return tuple(dict.fromkeys(seeds))


def setting_keys() -> dict[str, tuple[str, str]]:
    """``group.field`` (and the bare field name, when unambiguous) -> (group, field) of every
    ``find`` setting a sweep may vary."""
    keys: dict[str, tuple[str, str]] = {}
    bare: dict[str, list[tuple[str, str]]] = {}
    for g in dataclasses.fields(FindConfig):
        sub = getattr(FindConfig(), g.name)
        if dataclasses.is_dataclass(sub):
            for f in dataclasses.fields(sub):
                keys[f"{g.name}.{f.name}"] = (g.name, f.name)
                bare.setdefault(f.name, []).append((g.name, f.name))
        else:
            keys[g.name] = ("", g.name)
    for name, where in bare.items():
        if len(where) == 1 and name not in keys:
            keys[name] = where[0]
    return keys


def parse_set(items: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``["prune.rate=0.2,0.3", ...]`` -> ((``prune.rate``, ("0.2", "0.3")), ...)."""
    known = setting_keys()
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--set {item!r}: use KEY=VALUE[,VALUE...], e.g. prune.rate=0.2,0.3")
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, [k for k in known if "." in k], n=1)
            raise ConfigError(f"--set: unknown setting {key!r}"
                              + (f" (did you mean {close[0]}?)" if close else
                                 "; settings are group.field, e.g. prune.rate, train.steps"))
        group, name = known[key]
        if (group in ("", "data") and name in ("seed", "task")) or (group, name) == (
                "model", "model"):
            raise ConfigError(f"--set {key}: use --seeds, --tasks or --models for it")
        out[f"{group}.{name}" if group else name] = tuple(v.strip() for v in values.split(","))
    return tuple(out.items())


@dataclass(frozen=True)
class Grid:
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    settings: tuple[tuple[str, tuple[str, ...]], ...] = ()
    base: FindConfig = field(default_factory=FindConfig)

    def cells(self) -> list[Cell]:
        keys = [k for k, _ in self.settings]
        combos = list(itertools.product(*[v for _, v in self.settings])) or [()]
        return [Cell(t, m, s, tuple(zip(keys, combo)))
                for t in self.tasks for m in self.models for combo in combos
                for s in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "models": list(self.models),
                "seeds": list(self.seeds), "set": {k: list(v) for k, v in self.settings},
                "base": self.base.to_dict()}

    @classmethod
    def from_toml(cls, path: Path, base: FindConfig) -> Grid:
        """A grid file: ``tasks``, ``models``, ``seeds`` (a list or "0-4") and a ``[set]``
        table of ``"group.field" = [values]``."""
        import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable TOML grid ({exc})") from None
        unknown = set(data) - {"tasks", "models", "seeds", "set"}
        if unknown:
            raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (tasks, models, "
                              "seeds, set)")
        seeds = data.get("seeds", [0])
        seeds = parse_seeds(seeds if isinstance(seeds, str) else ",".join(map(str, seeds)))
        sets = [f"{k}={','.join(map(str, v if isinstance(v, list) else [v]))}"
                for k, v in (data.get("set") or {}).items()]
        return cls(tuple(map(str, data.get("tasks", [base.data.task]))),
                   tuple(map(str, data.get("models", [base.model.model]))), seeds,
                   parse_set(sets), base)


def validate(grid: Grid, *, load_tasks: bool = True) -> list[Cell]:
    """Every cell's settings, and every task, checked before anything runs."""
    cells = grid.cells()
    if not cells:
        raise ConfigError("the sweep has no cells (no tasks, models or seeds)")
    labels = [c.label for c in cells]
    if len(set(labels)) != len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise ConfigError(f"two cells would share the folder {dup}: give tasks or models "
                          "with different names")
    for c in cells:
        c.config(grid.base)  # the values are in range (FindConfig validates)
    if load_tasks:
        from ticketlens.data.tasks import load_task

        for task in grid.tasks:  # loaded once each: a task that does not exist fails here
            cfg = cells[0].config(grid.base)
            load_task(dataclasses.replace(cfg.data, task=task), cfg.model.objective)
    return cells


# ----------------------------------------------------------------------------- running
@dataclass
class SweepState:
    root: Path
    grid: Grid
    cells: list[Cell]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self) -> None:
        write_json_atomic(self.root / SWEEP_FILE, {
            "format": SWEEP_FORMAT, "format_version": 1, "grid": self.grid.to_dict(),
            "cells": [{**c.to_dict(), **self.records.get(c.label, {"status": "pending"})}
                      for c in self.cells]})


def run_sweep(grid: Grid, out: str | Path, *, workers: int = 1,
              executor: Executor | None = None, cells: list[Cell] | None = None,
              on_event: Callable[[str, Cell, dict], None] | None = None) -> SweepState:
    """Run every cell of ``grid`` under ``out`` (see the module doc); returns the state.
    ``executor``: where the cells run (default: ``LocalExecutor(workers)``), checked here
    (a second check is free); ``cells``: what :func:`validate` returned, when the caller
    validated already."""
    root = Path(out).resolve()  # absolute: a cell may run on another node
    cells = cells if cells is not None else validate(grid)
    if executor is None:
        from ticketlens.executors import LocalExecutor

        executor = LocalExecutor(workers)
    executor.check()
    root.mkdir(parents=True, exist_ok=True)
    state = SweepState(root, grid, cells)
    before = _previous_records(root)
    todo = []
    for c in cells:
        status = cell_status(c.path(root))
        if status == "complete":  # what the run that completed it recorded stays
            old = before.get(c.label, {})
            state.records[c.label] = {**(old if old.get("status") == "complete" else {}),
                                      "status": "complete", "skipped": True}
        else:
            todo.append(c)
    state.save()
    emit = on_event or (lambda *_: None)
    for c, rec in executor.run(todo, root, grid.base):
        state.records[c.label] = rec
        state.save()
        emit(rec["status"], c, rec)
    return state


def _previous_records(root: Path) -> dict[str, dict[str, Any]]:
    """The cell records of the sweep manifest already in ``root`` (none when there is none,
    or it cannot be read: it is rewritten), without the cells' own fields."""
    if not (root / SWEEP_FILE).is_file():
        return {}
    try:
        cells = read_sweep(root).get("cells", [])
    except ConfigError:
        return {}
    own = set(Cell("", "", 0).to_dict())
    return {str(c.get("path")): {k: v for k, v in c.items() if k not in own}
            for c in cells if isinstance(c, dict)}


def read_sweep(root: str | Path) -> dict[str, Any]:
    """The sweep manifest of ``root`` (one line when it is not a sweep)."""
    import json

    path = Path(root) / SWEEP_FILE
    if not path.is_file():
        raise ConfigError(f"{root}: not a sweep (no {SWEEP_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable sweep manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != SWEEP_FORMAT:
        raise ConfigError(f"{path}: not a ticketlens sweep manifest")
    return data
