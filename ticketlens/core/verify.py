"""``verify``: read every file of a run and check it against the record and the anatomy.

Every kind of file a run may hold has a :class:`FileCheck` (which files of that kind the run
holds, and how one is checked); :data:`CORE_CHECKS` are core's, and the layers above add
theirs (``ticketlens.checks.file_checks``: the compression table, the stored attribution,
...), so a new kind of file is one more entry. For each file, in order:

1. its content is checked: every round's mask fits the anatomy and has the recorded
   sparsity, total and per tensor, and IMP rounds are nested (a round only removes weights);
   every control's own mask likewise; structured rounds' and controls' unit masks expand to
   exactly the weight masks and have the recorded unit sparsity; every weights file holds
   each prunable tensor with its shape, finite, and the ticket's pruned weights are exactly
   zero; the tokenizer parses; the stability record's rounds are recorded and its curves
   give its barriers;
2. its SHA-256 is the one the manifest records (``files``; runs written before ticketlens
   recorded hashes have none, and the result says so): a change that keeps every count
   (a kept bit swapped with a pruned one) is named here.

Then the record itself: the ticket round and the verdict agree with the rounds. Files the
manifest records a hash for but no check knows are hash-checked; files in the run that no
check knows and that have no hash are listed as not checked. The first problem is raised as
a :class:`RunFormatError` naming the file.

Needs numpy and safetensors only (weights are read as numpy arrays).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ticketlens.core.errors import RunFormatError
from ticketlens.core.masks import as_bool, load_masks
from ticketlens.core.run import TMP_PREFIX, Run, check_kept_counts, open_run, sha256_file


@dataclass(frozen=True)
class FileCheck:
    """One kind of file a run may hold.

    ``files(run)``: the run's files of this kind (those the record names, whether or not they
    exist, and optional ones that exist); ``check(run, path)`` raises :class:`RunFormatError`
    naming ``path`` on the first problem (a missing file included)."""

    kind: str  # how the summary counts them: "mask", "weights", "compression table", ...
    files: Callable[[Run], Sequence[Path]]
    check: Callable[[Run, Path], None]


@dataclass(frozen=True)
class CheckedFile:
    path: str  # relative to the run
    kind: str  # the FileCheck's kind ("manifest", "hash only" for a hash without a check)
    sha256: str  # "match", or "not recorded"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "sha256": self.sha256}


@dataclass(frozen=True)
class VerifyResult:
    run: str
    rounds: int
    controls: int
    checked: tuple[CheckedFile, ...]
    hashes_recorded: bool  # the manifest records SHA-256s (runs before they did: False)
    unchecked: tuple[str, ...] = ()  # files in the run that no check knows, without a hash

    @property
    def files(self) -> tuple[str, ...]:
        """Every file read, relative to the run."""
        return tuple(f.path for f in self.checked)

    @property
    def hashed(self) -> int:
        return sum(f.sha256 == "match" for f in self.checked)

    def summary(self) -> str:
        """What was verified, in one line: "9 rounds, 1 control, 17 files checked (manifest,
        10 mask files, ...); SHA-256 of 16 of 16 files matches the manifest"."""
        kinds: dict[str, int] = {}
        for f in self.checked:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        parts = [k if n == 1 else f"{n} {k} files" for k, n in kinds.items()]
        n = len(self.checked)
        line = (f"{self.rounds} round{_s(self.rounds)}, {self.controls} control"
                f"{_s(self.controls)}, {n} file{_s(n)} checked ({', '.join(parts)}); ")
        if not self.hashes_recorded:
            line += "no recorded hashes (a run from before ticketlens recorded them): " \
                "contents checked against the record only"
        else:
            line += f"SHA-256 of {self.hashed} of {n - 1} files matches the manifest"
            missing = [f.path for f in self.checked[1:] if f.sha256 != "match"]
            if missing:
                line += f" (none recorded for {', '.join(missing)})"
        if self.unchecked:
            line += f"; not checked (no check knows them): {', '.join(self.unchecked)}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "ok": True, "rounds": self.rounds, "controls": self.controls,
                "files_checked": list(self.files),
                "checked": [f.to_dict() for f in self.checked],
                "hashes_recorded": self.hashes_recorded, "not_checked": list(self.unchecked),
                "summary": self.summary()}


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def verify(path: str | Path, checks: Sequence[FileCheck] = ()) -> VerifyResult:
    """Check the run at ``path`` with :data:`CORE_CHECKS` and then ``checks`` (the layers
    above core: ``ticketlens.checks.file_checks()``); returns what was checked, raises on
    the first problem."""
    run = open_run(path)
    hashes = dict(run.manifest.files or {})
    checked = [CheckedFile("manifest.json", "manifest", "not recorded")]
    seen = {"manifest.json"}
    for fc in (*CORE_CHECKS, *checks):
        for file in fc.files(run):
            rel = run.paths.rel(file)
            if rel in seen:
                continue
            seen.add(rel)
            fc.check(run, file)  # the content first: its message says what is wrong
            checked.append(CheckedFile(rel, fc.kind, _check_hash(run, file, hashes.get(rel))))
    for rel in sorted(set(hashes) - seen):  # hashed files no check knows: their bytes
        checked.append(CheckedFile(rel, "hash only", _check_hash(run, run.path / rel,
                                                                 hashes[rel])))
        seen.add(rel)
    _check_record(run)
    unchecked = tuple(sorted(
        rel for p in run.path.rglob("*") if p.is_file() and not p.name.startswith(TMP_PREFIX)
        and (rel := run.paths.rel(p)) not in seen))
    return VerifyResult(str(run.path), len(run.rounds), len(run.controls), tuple(checked),
                        run.manifest.files is not None, unchecked)


def _check_hash(run: Run, path: Path, recorded: str | None) -> str:
    if recorded is None:
        return "not recorded"
    if not path.is_file():
        raise RunFormatError(f"{path}: recorded in the manifest but missing")
    actual = sha256_file(path)
    if actual != recorded:
        raise RunFormatError(f"{path}: changed since the run wrote it (SHA-256 {actual[:12]}…, "
                             f"the manifest records {recorded[:12]}…)")
    return "match"


# ----------------------------------------------------------------------------- masks
def _round_masks(run: Run) -> list[Path]:
    return [run.paths.mask(r.index) for r in run.rounds]


def _check_round_mask(run: Run, path: Path) -> None:
    index = next(r.index for r in run.rounds if run.paths.mask(r.index) == path)
    masks = run.mask(index)  # fits the anatomy, kept counts as recorded (core.run)
    pos = [r.index for r in run.rounds].index(index)
    nested = not run.structured and "import" not in run.manifest.extra
    if nested and pos > 0:
        previous = run.mask(run.rounds[pos - 1].index)
        for n, m in masks.items():
            if np.any(m & ~previous[n]):
                raise RunFormatError(f"{path}: round {index} keeps weights of {n} that round "
                                     f"{run.rounds[pos - 1].index} pruned (IMP only removes)")


def _control_masks(run: Run) -> list[Path]:
    return [run.path / arm.mask for arm in run.controls.values() if arm.mask is not None]


def _check_control_mask(run: Run, path: Path) -> None:
    arm = next(a for a in run.controls.values() if a.mask and run.path / a.mask == path)
    masks = load_masks(path, expected=run.anatomy.shapes)
    check_kept_counts(path, masks, arm.sparsity, None)


def _unit_masks(run: Run) -> list[Path]:
    return [*(run.paths.units(r.index) for r in run.rounds if r.units),
            *(run.paths.units(name) for name, a in run.controls.items() if a.units and a.mask)]


def _check_unit_mask(run: Run, path: Path) -> None:
    """A structured arm's unit masks: they fit, expand to the weight masks, match their
    recorded unit sparsity."""
    from ticketlens.core.structure import expand_units

    rnd = next((r for r in run.rounds if r.units and run.paths.units(r.index) == path), None)
    if rnd is not None:
        weight, recorded = run.mask(rnd.index), rnd.unit_sparsity
    else:
        arm = next(a for n, a in run.controls.items()
                   if a.units and run.paths.units(n) == path)
        weight = load_masks(run.path / arm.mask, expected=run.anatomy.shapes)
        recorded = arm.unit_sparsity
    a = run.anatomy
    units = load_masks(path, expected={"head": (a.num_layers, a.num_heads),
                                       "neuron": (a.num_layers, a.intermediate)})
    expanded = expand_units(a, head=units["head"], neuron=units["neuron"])
    for n, m in expanded.items():
        if not np.array_equal(m, as_bool(weight[n])):
            raise RunFormatError(f"{path}: the unit masks do not expand to the weight mask of "
                                 f"{n}")
    for kind in (recorded or {}):
        if kind not in units:
            raise RunFormatError(f"{path}: the manifest records unit sparsity of {kind!r}, "
                                 "which the file does not hold")
    check_kept_counts(path, units, None, recorded)


# ----------------------------------------------------------------------------- weights
def _weights_files(run: Run) -> list[Path]:
    return [run.path / rel for rel in dict.fromkeys(run.manifest.weights.values())]


def _check_weights(run: Run, path: Path) -> None:
    from safetensors import safe_open

    which = next(k for k, rel in run.manifest.weights.items() if run.path / rel == path)
    if not path.is_file():
        raise RunFormatError(f"{path}: the {which} weights file is missing")
    is_ticket = any(run.path / rel == path for k, rel in run.manifest.weights.items()
                    if k == "ticket")
    shapes = run.anatomy.shapes
    ticket_mask = run.mask() if is_ticket else None
    try:
        with safe_open(str(path), framework="numpy") as fh:
            keys = set(fh.keys())
            missing = [n for n in shapes if n not in keys]
            if missing:
                raise RunFormatError(f"{path}: the {which} weights lack the prunable tensor "
                                     f"{missing[0]}")
            for name, shape in shapes.items():
                w = fh.get_tensor(name)
                if tuple(w.shape) != tuple(shape):
                    raise RunFormatError(f"{path}: {name} has shape {tuple(w.shape)}, the "
                                         f"model's is {tuple(shape)}")
                if not np.all(np.isfinite(w)):
                    raise RunFormatError(f"{path}: {name} holds NaN or infinite values")
                if ticket_mask is not None:
                    pruned = ~as_bool(ticket_mask[name])
                    if np.any(w[pruned] != 0):
                        n = int(np.count_nonzero(w[pruned]))
                        raise RunFormatError(f"{path}: {n} pruned weights of {name} are not "
                                             "zero")
    except RunFormatError:
        raise
    except Exception as exc:  # safetensors' own error types for a corrupt file
        raise RunFormatError(f"{path}: corrupt weights file ({exc})") from None


# ----------------------------------------------------------------------------- JSON files
def _tokenizer_files(run: Run) -> list[Path]:
    recorded = bool((run.manifest.tokenizer or {}).get("file"))
    return [run.paths.tokenizer] if recorded or run.paths.tokenizer.is_file() else []


def _check_json(run: Run, path: Path) -> None:
    if not path.is_file():
        raise RunFormatError(f"{path}: recorded in the manifest but missing")
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RunFormatError(f"{path}: unreadable JSON ({exc})") from None


def _check_stability(run: Run, path: Path) -> None:
    """``analysis/stability.json`` (``ticketlens stability``): rounds that exist, curves that give their barriers."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rounds = data["rounds"].items()
        if data.get("format") != "ticketlens.stability":
            raise ValueError(f"format {data.get('format')!r}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError,
            AttributeError) as exc:
        raise RunFormatError(f"{path}: unreadable stability record ({exc})") from None
    indices = {r.index for r in run.rounds}
    for key, res in rounds:
        try:
            if int(key) not in indices or int(res["round"]) != int(key):
                raise RunFormatError(f"{path}: holds round {key}, which is not recorded")
            points = int(res["points"])
            for c in res["curves"]:
                grid = np.asarray(c["alphas"], float)
                values = {k: np.asarray(c[k], float) for k in ("metric", "loss", "error")}
                if grid.shape != (points,) or any(v.shape != (points,) for v in
                                                   values.values()):
                    raise RunFormatError(f"{path}: round {key}, from {c['start']}: a curve "
                                         f"does not have {points} points")
                if not np.allclose(grid, np.linspace(0, 1, points), atol=1e-12):
                    raise RunFormatError(f"{path}: round {key}, from {c['start']}: the path's "
                                         "points are not evenly spaced from 0 to 1")
                for field, v in (("error_barrier", values["error"]),
                                 ("loss_barrier", values["loss"])):
                    got = float(v.max() - (v[0] + v[-1]) / 2)
                    if not math.isclose(got, float(c[field]), rel_tol=1e-9, abs_tol=1e-12):
                        raise RunFormatError(f"{path}: round {key}, from {c['start']}: "
                                             f"{field} {c[field]} is not the curve's ({got})")
        except RunFormatError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise RunFormatError(f"{path}: round {key}: malformed ({exc})") from None


def _stability_files(run: Run) -> list[Path]:
    return [run.paths.stability] if run.paths.stability.is_file() else []


CORE_CHECKS: tuple[FileCheck, ...] = (
    FileCheck("round mask", _round_masks, _check_round_mask),
    FileCheck("unit mask", _unit_masks, _check_unit_mask),
    FileCheck("control mask", _control_masks, _check_control_mask),
    FileCheck("weights", _weights_files, _check_weights),
    FileCheck("tokenizer", _tokenizer_files, _check_json),
    FileCheck("stability record", _stability_files, _check_stability),
)


# ----------------------------------------------------------------------------- the record
def _check_record(run: Run) -> None:
    m = run.manifest
    where = run.paths.manifest
    indices = {r.index for r in m.rounds}
    if m.ticket_round is not None and m.ticket_round not in indices:
        raise RunFormatError(f"{where}: ticket_round {m.ticket_round} is not a recorded round")
    for name, arm in m.controls.items():
        if arm.ticket_round is not None and arm.ticket_round not in indices:
            raise RunFormatError(f"{where}: control {name} names round {arm.ticket_round}, "
                                 "which is not recorded")
    v = m.verdict
    if v is None:
        if m.complete and m.rounds and m.rounds[0].metrics:
            raise RunFormatError(f"{where}: the run is complete but has no verdict")
        return
    if v.ticket_round not in indices:
        raise RunFormatError(f"{where}: the verdict is about round {v.ticket_round}, which is "
                             "not recorded")
    metric = m.metric
    for label, recorded, actual in (
            ("dense", v.dense, m.round(0).metrics.get(metric)),
            ("ticket", v.ticket, m.round(v.ticket_round).metrics.get(metric))):
        if actual is None or not math.isclose(recorded, actual, rel_tol=1e-9, abs_tol=1e-12):
            raise RunFormatError(f"{where}: the verdict's {label} {metric} ({recorded}) is not "
                                 f"the recorded one ({actual})")
