"""Every kind of file a run may hold and how ``verify`` checks it, the layers above core
included: ``core.verify.CORE_CHECKS`` (masks, unit masks, control masks, weights, tokenizer)
and :func:`file_checks` (the compression table, the stored attribution, head roles, the
circuit table). A module that adds a
kind of run file (stability, roles, ...) adds its :class:`~ticketlens.core.verify.FileCheck`
to :func:`file_checks`; ``verify`` lists any file no check knows as not checked."""

from __future__ import annotations

from pathlib import Path

from ticketlens.core.errors import RunFormatError
from ticketlens.core.run import Run
from ticketlens.core.verify import FileCheck, VerifyResult
from ticketlens.core.verify import verify as _verify


def _present(path: Path) -> list[Path]:
    return [path] if path.is_file() else []


def _check_compress(run: Run, path: Path) -> None:
    from ticketlens.compress.result import CELLS, read_compress

    res = read_compress(run.path)
    assert res is not None
    unknown = [c.name for c in res.cells if c.name not in CELLS]
    if unknown:
        raise RunFormatError(f"{path}: unknown compression cell {unknown[0]!r}")
    variants = {v.name for v in res.variants}
    for c in res.cells:
        if c.variant is not None and c.variant not in variants:
            raise RunFormatError(f"{path}: cell {c.name} names variant {c.variant!r}, which "
                                 "the table does not hold")
    for x in res.latency:
        if x.variant not in variants:
            raise RunFormatError(f"{path}: a latency row names variant {x.variant!r}, which "
                                 "the table does not hold")


def _check_attribution(run: Run, path: Path) -> None:
    from ticketlens.analysis.results import load_attribution

    load_attribution(path)


def _check_roles(run: Run, path: Path) -> None:
    from ticketlens.analysis.roles import stored_roles

    res = stored_roles(run)  # an unreadable file raises RunFormatError
    assert res is not None
    a = run.anatomy
    if (res.num_layers, res.num_heads) != (a.num_layers, a.num_heads) or \
            len(res.dense) != a.num_layers * a.num_heads:
        raise RunFormatError(f"{path}: head roles of {res.num_layers} x {res.num_heads} heads; "
                             f"the run's model has {a.num_layers} x {a.num_heads}")
    if not any(r.index == res.round for r in run.rounds):
        raise RunFormatError(f"{path}: head roles of round {res.round}, which the run lacks")


def _check_circuit(run: Run, path: Path) -> None:
    """``circuit --save``: a round the run holds, unit arrays of the model's shape, and each
    row's faithfulness its metric over the dense row's."""
    import math

    import numpy as np

    from ticketlens.analysis.circuit import read_circuit

    res = read_circuit(run)  # an unreadable file raises RunFormatError
    assert res is not None
    if not any(r.index == res.round for r in run.rounds):
        raise RunFormatError(f"{path}: the circuit of round {res.round}, which the run lacks")
    a = run.anatomy
    shapes = {"head": (a.num_layers, a.num_heads), "neuron": (a.num_layers, a.intermediate)}
    arrays = [("survival", k, v) for k, v in res.survival.items()] + [
        (s, k, v) for s, kinds in res.importance.items() for k, v in kinds.items()]
    for what, kind, v in arrays:
        if np.shape(v) != shapes.get(kind):
            raise RunFormatError(f"{path}: {what} of {kind}s has shape {np.shape(v)}, the "
                                 f"run's model {shapes.get(kind)}")
    dense = next((r for r in res.rows if r.label == "dense"), None)
    if dense is None:
        raise RunFormatError(f"{path}: no dense row")
    for r in res.rows:
        want = r.metric / dense.metric if dense.metric else float("nan")
        if not (math.isnan(want) and math.isnan(r.faithfulness)) and not math.isclose(
                r.faithfulness, want, rel_tol=1e-9, abs_tol=1e-12):
            raise RunFormatError(f"{path}: the {r.label} row's faithfulness {r.faithfulness} "
                                 f"is not its metric over dense's ({want})")


def file_checks() -> tuple[FileCheck, ...]:
    """The checks of run files that core does not know (in the order verify runs them)."""
    return (
        FileCheck("compression table", lambda run: _present(run.paths.compress),
                  _check_compress),
        FileCheck("attribution", lambda run: _present(run.paths.attribution),
                  _check_attribution),
        FileCheck("head roles", lambda run: _present(run.paths.roles), _check_roles),
        FileCheck("circuit table", lambda run: _present(run.paths.circuit), _check_circuit),
    )


def verify(path: str | Path) -> VerifyResult:
    """``ticketlens verify``: every file of the run at ``path`` checked (see
    ``core.verify``); raises :class:`RunFormatError` naming the first bad file."""
    return _verify(path, file_checks())
