"""``verify``: read every file of a run and check it against the record and the anatomy.

Checks, in order (the first problem is raised as a :class:`RunFormatError` naming the file):

1. the manifest reads into the typed record (``open_run``);
2. every round's mask file exists, fits the anatomy (names, shapes), and its sparsity, total
   and per tensor, is the one recorded; IMP rounds are nested (a round only removes weights);
3. every control that trained a mask of its own: the file exists, fits, has the recorded
   sparsity;
   structured rounds and controls: the unit masks file exists, fits the anatomy, expands to
   exactly the weight masks, and has the recorded unit sparsity;
4. every weights file named in the record exists, holds every prunable tensor with its
   shape, and the ticket's pruned weights are exactly zero;
5. the ticket round and the verdict agree with the rounds; the tokenizer and the stored
   attribution, when recorded or present, parse;
6. the stability record (``analysis/stability.json``), when present: every round it holds is
   recorded, every curve has ``points`` values on an even grid from 0 to 1, and its error and
   loss barriers are the ones its values give.

Needs numpy and safetensors only (weights are read as numpy arrays).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ticketlens.core.errors import RunFormatError
from ticketlens.core.masks import as_bool, load_masks
from ticketlens.core.run import Run, open_run

TOL = 1e-9  # recorded sparsities are float64 of exact counts


@dataclass(frozen=True)
class VerifyResult:
    run: str
    rounds: int
    controls: int
    files: tuple[str, ...]  # every file read, relative to the run

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "ok": True, "rounds": self.rounds, "controls": self.controls,
                "files_checked": list(self.files)}


def verify(path: str | Path) -> VerifyResult:
    """Check the run at ``path``; returns what was checked, raises on the first problem."""
    run = open_run(path)
    files: list[str] = ["manifest.json"]
    shapes = run.anatomy.shapes
    previous: dict[str, np.ndarray] | None = None
    nested = not run.structured and "import" not in run.manifest.extra
    for rec in run.rounds:
        where = run.paths.mask(rec.index)
        masks = run.mask(rec.index)
        files.append(run.paths.rel(where))
        _check_sparsity(where, masks, rec.sparsity, rec.sparsity_per_tensor, run.structured)
        if rec.units:
            files.append(_check_units(run, rec.index, masks, rec.unit_sparsity))
        if nested and previous is not None:
            for n, m in masks.items():
                if np.any(m & ~previous[n]):
                    raise RunFormatError(f"{where}: round {rec.index} keeps weights of {n} "
                                         f"that round {rec.index - 1} pruned (IMP only removes)")
        previous = masks
    for arm in run.controls.values():
        if arm.mask is None:
            continue
        where = run.path / arm.mask
        masks = load_masks(where, expected=shapes)
        files.append(arm.mask)
        _check_sparsity(where, masks, arm.sparsity, None, False)
        if arm.units:
            name = next(k for k, v in run.controls.items() if v is arm)
            files.append(_check_units(run, name, masks, arm.unit_sparsity))
    _check_weights(run, files)
    _check_record(run)
    for extra in (run.paths.tokenizer, run.paths.attribution):
        if extra.is_file():
            try:
                json.loads(extra.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise RunFormatError(f"{extra}: unreadable JSON ({exc})") from None
            files.append(run.paths.rel(extra))
        elif extra == run.paths.tokenizer and (run.manifest.tokenizer or {}).get("file"):
            raise RunFormatError(f"{extra}: recorded in the manifest but missing")
    if run.paths.stability.is_file():
        _check_stability(run)
        files.append(run.paths.rel(run.paths.stability))
    return VerifyResult(str(run.path), len(run.rounds), len(run.controls), tuple(files))


def _check_stability(run: Run) -> None:
    """``analysis/stability.json``: rounds that exist, curves that give their barriers."""
    path = run.paths.stability
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


def _check_units(run: Run, where: int | str, masks: dict[str, Any],
                 recorded: Any) -> str:
    """A structured arm's unit masks: they fit, expand to ``masks``, match their sparsity."""
    from ticketlens.core.structure import expand_units

    a = run.anatomy
    path = run.paths.units(where)
    units = load_masks(path, expected={"head": (a.num_layers, a.num_heads),
                                       "neuron": (a.num_layers, a.intermediate)})
    expanded = expand_units(a, head=units["head"], neuron=units["neuron"])
    for n, m in expanded.items():
        if not np.array_equal(m, as_bool(masks[n])):
            raise RunFormatError(f"{path}: the unit masks do not expand to the weight mask of "
                                 f"{n}")
    for kind, value in (recorded or {}).items():
        if kind not in units:
            raise RunFormatError(f"{path}: the manifest records unit sparsity of {kind!r}, "
                                 "which the file does not hold")
        actual = 1.0 - float(as_bool(units[kind]).mean())
        if not math.isclose(actual, float(value), abs_tol=TOL):
            raise RunFormatError(f"{path}: {kind} sparsity is {actual:.6%}, the manifest "
                                 f"records {float(value):.6%}")
    return run.paths.rel(path)


def _check_sparsity(where: Path, masks: dict[str, Any], sparsity: float,
                    per_tensor: Any, structured: bool) -> None:
    kept = sum(int(np.count_nonzero(m)) for m in masks.values())
    total = sum(int(np.size(m)) for m in masks.values())
    actual = 1.0 - kept / total if total else 0.0
    if not math.isclose(actual, sparsity, abs_tol=TOL):
        raise RunFormatError(f"{where}: the mask is {actual:.6%} sparse, the manifest records "
                             f"{sparsity:.6%}")
    if structured or not per_tensor:
        return
    for name, recorded in per_tensor.items():
        if name not in masks:
            raise RunFormatError(f"{where}: the manifest records sparsity of {name}, which "
                                 "the mask does not hold")
        m = as_bool(masks[name])
        got = 1.0 - np.count_nonzero(m) / m.size
        if not math.isclose(got, recorded, abs_tol=TOL):
            raise RunFormatError(f"{where}: {name} is {got:.6%} sparse, the manifest records "
                                 f"{recorded:.6%}")


def _check_weights(run: Run, files: list[str]) -> None:
    from safetensors import safe_open

    shapes = run.anatomy.shapes
    ticket_mask = run.mask() if run.manifest.weights.get("ticket") else None
    for which, rel in run.manifest.weights.items():
        path = run.path / rel
        if not path.is_file():
            raise RunFormatError(f"{path}: the {which} weights file is missing")
        try:
            with safe_open(str(path), framework="numpy") as fh:
                keys = set(fh.keys())
                missing = [n for n in shapes if n not in keys]
                if missing:
                    raise RunFormatError(f"{path}: the {which} weights lack the prunable "
                                         f"tensor {missing[0]}")
                for name, shape in shapes.items():
                    w = fh.get_tensor(name)
                    if tuple(w.shape) != tuple(shape):
                        raise RunFormatError(f"{path}: {name} has shape {tuple(w.shape)}, "
                                             f"the model's is {tuple(shape)}")
                    if not np.all(np.isfinite(w)):
                        raise RunFormatError(f"{path}: {name} holds NaN or infinite values")
                    if which == "ticket" and ticket_mask is not None:
                        pruned = ~as_bool(ticket_mask[name])
                        if np.any(w[pruned] != 0):
                            n = int(np.count_nonzero(w[pruned]))
                            raise RunFormatError(f"{path}: {n} pruned weights of {name} are "
                                                 "not zero")
        except RunFormatError:
            raise
        except Exception as exc:  # safetensors' own error types for a corrupt file
            raise RunFormatError(f"{path}: corrupt weights file ({exc})") from None
        files.append(rel)


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
