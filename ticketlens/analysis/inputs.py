"""How every analysis takes its inputs: runs, or typed masks, normalised in one place.

An analysis has the shape ``analysis(runs_or_masks, *, by=..., round=..., ...) -> Result``.
``runs_or_masks`` is any of:

- a run directory (``str`` or ``os.PathLike``), or a folder of runs (every run below it);
- a :class:`~ticketlens.core.run.Run`;
- :class:`TicketMasks`: a name, an anatomy and weight masks (masks from another tool), or a
  result that is masks (``tl.magnitude_mask(run, ...)``: anything with ``as_ticket()``);
- ``(run, arm)``: the mask of one of the run's arms, ``"ticket"`` or a control that trained a
  mask of its own (``"oneshot"``, ``"method_wanda"``, ...);
- the tuples analyses took before :class:`TicketMasks` existed, ``(name, anatomy, masks)``
  and ``(anatomy, masks)``;
- a list or tuple of any of these.

:func:`as_inputs` turns that into a tuple of :class:`Input` (a run or typed masks), and
:func:`one_input` / :func:`one_run` into the single input of a one-ticket analysis; every
problem is one :class:`~ticketlens.core.errors.AnalysisError` line. :func:`check_by` checks a
``by=`` level against the ones an analysis knows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import AnalysisError
from ticketlens.core.masks import Masks, as_bool, pack
from ticketlens.core.result import Result
from ticketlens.core.run import Run, find_runs, open_run

if TYPE_CHECKING:
    from ticketlens.core.structure import UnitMasks

PathLike: TypeAlias = str | os.PathLike[str]


class MaskMapping(Mapping[str, np.ndarray]):
    """A read-only mapping tensor name -> numpy bool mask (True = kept) over the ``masks``
    field of a result that is masks, with its counts."""

    masks: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.masks)

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def kept(self) -> int:
        return int(sum(np.count_nonzero(m) for m in self.masks.values()))

    @property
    def total(self) -> int:
        return int(sum(m.size for m in self.masks.values()))

    @property
    def pruned_fraction(self) -> float:
        return 1 - self.kept / self.total if self.total else float("nan")

    def kept_per_tensor(self) -> dict[str, int]:
        return {n: int(np.count_nonzero(m)) for n, m in self.masks.items()}


@dataclass(frozen=True, eq=False)
class TicketMasks(Result, MaskMapping):
    """Typed weight masks: what an analysis needs of a ticket that is not a run (``name``
    labels it in results). ``masks`` holds a numpy bool array (True = kept) for every
    prunable tensor of ``anatomy``, of its shape; masks of other tensors are dropped. It is
    also a read-only mapping name -> mask, so code that used plain mask dicts keeps working.
    It has one round, the last: ``round=`` other than None or -1 is an error."""

    name: str
    anatomy: Anatomy = field(repr=False)
    masks: Mapping[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        shapes = self.anatomy.shapes
        missing = [n for n in shapes if n not in self.masks]
        if missing:
            raise AnalysisError(f"{self.name}: no mask for {missing[0]} (of {len(missing)} "
                                "prunable tensors without one)")
        out = {}
        for n, shape in shapes.items():
            m = as_bool(self.masks[n])
            if m.shape != tuple(shape):
                raise AnalysisError(f"{self.name}: the mask of {n} has shape {m.shape}, the "
                                    f"model's tensor {tuple(shape)}")
            out[n] = m
        object.__setattr__(self, "masks", out)

    # -- what analyses ask of a run, answered for the one set of masks
    @property
    def label(self) -> str:
        return self.name

    def round_index(self, round: int | None = None) -> int:
        """-1: typed masks are one round, the last."""
        _no_round(self, round)
        return -1

    def mask(self, round: int | None = None) -> Masks:
        _no_round(self, round)
        return dict(self.masks)

    def packed_mask(self, round: int | None = None) -> dict[str, np.ndarray]:
        _no_round(self, round)
        return {n: pack(m) for n, m in self.masks.items()}

    def read_packed_into(self, out: dict[str, np.ndarray],
                         round_index: int | None = None) -> None:
        """:meth:`packed_mask` written into ``out`` (name -> ``uint8`` buffer of the packed
        size), as :meth:`Run.read_packed_into` does (overlap's word matrix)."""
        _no_round(self, round_index)
        for name, buf in out.items():
            buf[...] = pack(self.masks[name])

    def units(self, round: int | None = None) -> UnitMasks:
        from ticketlens.core.structure import unit_masks

        _no_round(self, round)
        return unit_masks(self.anatomy, self.masks)

    @property
    def sparsity(self) -> float:
        return self.pruned_fraction

    def _data(self) -> Mapping[str, Any]:
        return {"name": self.name, "kept": self.kept, "total": self.total,
                "sparsity": self.sparsity,
                "kept_per_tensor": self.kept_per_tensor()}


def _no_round(masks: TicketMasks, round: int | None) -> None:
    if round not in (None, -1):
        raise AnalysisError(f"{masks.name}: typed masks have no rounds (round={round}); "
                            "pass a run to choose a round")


Input: TypeAlias = Run | TicketMasks
"""One ticket an analysis reads: a run (any of its rounds) or typed masks."""

RunLike: TypeAlias = Run | PathLike
RunsOrMasks: TypeAlias = RunLike | TicketMasks | tuple | Sequence[Any]
"""What an analysis accepts (see the module doc)."""


def label(item: Input) -> str:
    """How results name an input: ``TASK/sSEED`` for a run with a seed, else its folder's
    name; typed masks by their own name."""
    if isinstance(item, TicketMasks):
        return item.name
    return f"{item.task}/s{item.seed}" if item.seed is not None else item.name


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _item_tuple(x: tuple) -> Input | None:
    """A tuple that is one item (``(run, arm)``, ``(name, anatomy, masks)``,
    ``(anatomy, masks)``), as an input; None when it is a collection of items."""
    if len(x) == 2 and isinstance(x[0], Run) and isinstance(x[1], str):
        return arm_masks(x[0], x[1])
    if len(x) == 3 and isinstance(x[0], str) and isinstance(x[1], Anatomy) \
            and isinstance(x[2], Mapping):
        return TicketMasks(x[0], x[1], x[2])
    if len(x) == 2 and isinstance(x[0], Anatomy) and isinstance(x[1], Mapping):
        return TicketMasks("masks", x[0], x[1])
    return None


def _one(x: Any, what: str) -> list[Input]:
    if isinstance(x, (Run, TicketMasks)):
        return [x]
    if callable(getattr(x, "as_ticket", None)):  # results that are masks (MagnitudeMask)
        return [x.as_ticket()]
    if _is_path(x):
        return [open_run(p) for p in find_runs(x)]
    if isinstance(x, tuple):
        item = _item_tuple(x)
        if item is not None:
            return [item]
    raise AnalysisError(f"{what}: cannot read {type(x).__name__} {_short(x)} as a ticket "
                        "(give a run directory, a Run, TicketMasks, (run, arm), or a list of "
                        "them)")


def _short(x: Any) -> str:
    """``repr(x)`` on one line, at most 60 characters (error messages are one line)."""
    text = " ".join(repr(x).split())
    return text if len(text) <= 60 else text[:57] + "..."


def as_inputs(runs_or_masks: RunsOrMasks, *, what: str = "analysis") -> tuple[Input, ...]:
    """Every ticket in ``runs_or_masks`` (see the module doc), in order; a folder of runs
    adds each run below it. ``what`` names the analysis in error messages."""
    x = runs_or_masks
    if isinstance(x, tuple) and _item_tuple(x) is not None:
        return tuple(_one(x, what))
    if isinstance(x, (list, tuple)):
        return tuple(i for el in x for i in _one(el, what))
    if isinstance(x, (Run, TicketMasks, Mapping)) or _is_path(x):
        return tuple(_one(x, what))
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        return tuple(i for el in x for i in _one(el, what))
    return tuple(_one(x, what))


def one_input(runs_or_masks: RunsOrMasks, *, what: str = "analysis") -> Input:
    """The single ticket of a one-ticket analysis (a folder must hold exactly one run)."""
    items = as_inputs(runs_or_masks, what=what)
    if len(items) != 1:
        raise AnalysisError(f"{what} reads one ticket; got {len(items)} (pass one run or "
                            "one set of masks, or call it for each)")
    return items[0]


def one_run(run: RunsOrMasks, *, what: str = "analysis", needs: str = "its record") -> Run:
    """The single run of an analysis that needs more than masks (``needs`` says what)."""
    item = one_input(run, what=what)
    if not isinstance(item, Run):
        raise AnalysisError(f"{what} needs a run ({needs}); {label(item)} is typed masks")
    return item


def as_runs(runs: RunsOrMasks, *, what: str = "analysis",
            needs: str = "their records") -> tuple[Run, ...]:
    """Every run in ``runs``; typed masks are an error (``needs`` says why)."""
    items = as_inputs(runs, what=what)
    masks = [label(i) for i in items if not isinstance(i, Run)]
    if masks:
        raise AnalysisError(f"{what} needs runs ({needs}); {masks[0]} is typed masks")
    return tuple(i for i in items if isinstance(i, Run))


def check_by(by: str, allowed: Sequence[str], *, what: str = "analysis") -> str:
    """``by`` when it is one of ``allowed``; else an :class:`AnalysisError` naming them."""
    if by not in allowed:
        raise AnalysisError(f"{what}: by must be one of {', '.join(allowed)}; got {by!r}")
    return by


def arm_masks(run: Run, arm: str, name: str | None = None) -> TicketMasks:
    """The masks of one of ``run``'s arms: ``"ticket"`` (the ticket round) or a control that
    trained a mask of its own; ``name`` defaults to the run's label and the arm's."""
    from ticketlens.core.record import control_label

    if arm == "ticket":
        return TicketMasks(name or f"{label(run)} ticket", run.anatomy, run.mask())
    rec = run.controls.get(arm)
    if rec is None or not rec.mask:
        have = [c for c, r in run.controls.items() if r.mask]
        raise AnalysisError(f"{run.path}: has no control {arm!r} with a mask of its own "
                            f"(it has: {', '.join(['ticket', *have])})")
    return TicketMasks(name or f"{label(run)} {control_label(arm)}", run.anatomy,
                       run.control_mask(arm))
