"""Controls: small registered classes, each saying what to train beside the ticket.

A control gets the search's context and the ticket round, and returns an :class:`ArmPlan`
(mask + start weights); the search trains it with the ticket's schedule and data order and
records it under ``controls.NAME``. Adding a control is adding a class here::

    @register
    class RandomMask(Control):
        name = "random_mask"
        required = True
        def plan(self, ctx, ticket):
            g = torch.Generator().manual_seed(derive_seed(ctx.seed, "random_mask"))
            return ArmPlan(random_masks_like(ctx.mask(ticket), g), ctx.start_state(ticket),
                           own_mask=True)

``required`` controls decide the verdict (run with ``--controls``, the default); the others
are informative and switched on by the ``PruneConfig`` flag named in ``flag`` (a boolean, or
for ``method_*`` the list ``--compare-methods``: :meth:`Control.wanted`), and can be added to
a finished run.

At an N:M ticket (``--pattern``) the random mask keeps the pattern (random k of every M, k the
ticket's) and the one-shot control too (the k largest of every M of the dense weights), so
both stay comparable with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import ONESHOT_METHODS, FindConfig
from ticketlens.pruning import methods, ops
from ticketlens.pruning.arms import derive_seed
from ticketlens.pruning.structured import Units, prune_units_to, random_units_like


class ArmContext(Protocol):
    """What a control may ask of the search (``pruning.imp.Search``, ``pruning.transfer``)."""

    cfg: FindConfig
    names: list[str]
    kinds: tuple[str, ...]  # structured: the unit kinds pruned ("head", "neuron"), else ()
    s: Any  # the Setup (anatomy, data)

    def mask(self, r: int) -> Mapping[str, torch.Tensor]: ...
    def units(self, r: int) -> Units: ...
    def layer_groups(self) -> list[list[str]]: ...
    def importance(self, state: Any, masks: Any, seed: int) -> dict[str, Any]: ...
    def start_state(self, r: int) -> Mapping[str, torch.Tensor]: ...
    def load_weights(self, what: str | int) -> Mapping[str, torch.Tensor]: ...
    def fresh_state(self, seed: int) -> Mapping[str, torch.Tensor]: ...
    # for the method controls: the trainer whose model prunes, and evaluation of weights
    trainer: Any
    def evaluate_state(self, state: Mapping[str, torch.Tensor]) -> dict[str, float]: ...


@dataclass(frozen=True)
class ArmPlan:
    masks: Mapping[str, Any]
    start_state: Mapping[str, torch.Tensor]
    own_mask: bool  # the control trains a mask of its own (saved as masks/control_NAME)
    units: Units | None = None  # structured: the unit masks the weight masks expand from
    extra: Mapping[str, Any] | None = None  # recorded in the control's ArmRecord.extra


class Control:
    name: ClassVar[str]
    required: ClassVar[bool] = False  # part of the verdict
    flag: ClassVar[str | None] = None  # PruneConfig field that switches an informative one on
    # weights the plan reads besides the ticket's start: round indices ("dense" = 0)
    needs_dense: ClassVar[bool] = False

    def plan(self, ctx: ArmContext, ticket: int) -> ArmPlan:
        raise NotImplementedError

    @classmethod
    def wanted(cls, cfg: FindConfig) -> bool:
        """Whether a run with ``cfg`` trains this control."""
        if cls.required:
            return cfg.prune.controls
        return bool(cls.flag and getattr(cfg.prune, cls.flag, False))


CONTROLS: dict[str, type[Control]] = {}


def register(cls: type[Control]) -> type[Control]:
    if cls.name in CONTROLS:
        raise ValueError(f"a control named {cls.name!r} is already registered")
    CONTROLS[cls.name] = cls
    return cls


def required_controls() -> tuple[str, ...]:
    return tuple(n for n, c in CONTROLS.items() if c.required)


def wanted_controls(cfg: FindConfig) -> tuple[str, ...]:
    """The controls a run with ``cfg`` trains, in registration order."""
    return tuple(n for n, c in CONTROLS.items() if c.wanted(cfg))


def informative_flags() -> tuple[str, ...]:
    """PruneConfig fields that only add informative controls (never a settings conflict)."""
    return tuple(dict.fromkeys(c.flag for c in CONTROLS.values() if c.flag))


def merge_flag(then: Any, now: Any) -> Any:
    """An informative flag of a run that controls were added to: a boolean is on if it was
    or is; a list (``--compare-methods``) is the union, in the order first given."""
    if isinstance(then, str) or isinstance(now, str):
        items = [x.strip() for v in (then, now) for x in str(v or "").split(",")]
        return ",".join(dict.fromkeys(x for x in items if x))
    return bool(then) or bool(now)


# ----------------------------------------------------------------------------- the controls
@register
class RandomMask(Control):
    """The ticket's per-tensor kept counts at random positions, from the ticket's start;
    for a structured ticket, its per-layer counts of kept heads and neurons at random."""

    name = "random_mask"
    required = True

    def plan(self, ctx: ArmContext, ticket: int) -> ArmPlan:
        seed = derive_seed(ctx.cfg.seed, "random_mask")
        if getattr(ctx, "kinds", ()):
            import numpy as np

            units = random_units_like(ctx.units(ticket), np.random.default_rng(seed))
            return ArmPlan(ops.to_torch(units.weight_masks(ctx.s.anatomy)),
                           ctx.start_state(ticket), own_mask=True, units=units)
        g = torch.Generator().manual_seed(seed)
        pattern = methods.ticket_pattern(ctx, ticket)
        if pattern is not None:
            masks = ops.random_nm_masks(ctx.s.anatomy.shapes, methods.layouts(ctx.s.anatomy),
                                        pattern.n, pattern.m, g)
            return ArmPlan(masks, ctx.start_state(ticket), own_mask=True)
        return ArmPlan(ops.random_masks_like(ctx.mask(ticket), g), ctx.start_state(ticket),
                       own_mask=True)


@register
class RandomReinit(Control):
    """The ticket's mask on a fresh random initialisation (is the start what matters?)."""

    name = "random_reinit"
    required = True

    def plan(self, ctx: ArmContext, ticket: int) -> ArmPlan:
        return ArmPlan(ctx.mask(ticket), ctx.fresh_state(derive_seed(ctx.cfg.seed, "reinit")),
                       own_mask=False)


@register
class OneShot(Control):
    """The dense model's trained weights pruned once by magnitude to the ticket's kept
    counts, from the ticket's start (is iterating needed?); for a structured ticket, its
    units ranked once by ``--importance`` on the dense model, to its kept counts of each
    kind (overall, or per layer with ``--scope layer``)."""

    name = "oneshot"
    flag = "oneshot_control"
    needs_dense = True

    def plan(self, ctx: ArmContext, ticket: int) -> ArmPlan:
        dense = ctx.load_weights(0)
        p = ctx.cfg.prune
        if getattr(ctx, "kinds", ()):
            ticket_units = ctx.units(ticket)
            scores = ctx.importance(dict(dense), ops.ones_like(
                {n: dense[n] for n in ctx.names}), derive_seed(ctx.cfg.seed, "oneshot"))
            units = ticket_units
            for k in ctx.kinds:
                kept = ticket_units.get(k).sum(axis=1) if p.scope == "layer" else \
                    int(ticket_units.get(k).sum())
                units = units.replace(k, prune_units_to(scores[k], kept, p.scope))
            return ArmPlan(ops.to_torch(units.weight_masks(ctx.s.anatomy)),
                           ctx.start_state(ticket), own_mask=True, units=units)
        pattern = methods.ticket_pattern(ctx, ticket)
        if pattern is not None:
            masks = ops.nm_prune({n: dense[n] for n in ctx.names},
                                 ops.ones_like({n: dense[n] for n in ctx.names}),
                                 methods.layouts(ctx.s.anatomy), pattern.n, pattern.m)
            return ArmPlan(masks, ctx.start_state(ticket), own_mask=True)
        masks = ops.magnitude_like({n: dense[n] for n in ctx.names}, ctx.mask(ticket),
                                   p.scope, groups=ctx.layer_groups())
        return ArmPlan(masks, ctx.start_state(ticket), own_mask=True)


class MethodControl(Control):
    """The dense model's trained weights pruned once by a one-shot method
    (``pruning.oneshot``: magnitude per matrix, Wanda, SparseGPT) with the run's calibration
    examples, every matrix to the ticket's overall sparsity (uniform, as in the papers) or to
    the ticket's N:M pattern, then trained from the ticket's start (does iterating and
    rewinding beat today's one-shot pruners?). The metric of the pruned weights before any
    training is recorded in ``extra["oneshot"]["metrics"]``. Weight masks only: a structured
    ticket is matched in weight sparsity."""

    method: ClassVar[str]
    flag = "compare_methods"
    needs_dense = True

    @classmethod
    def wanted(cls, cfg: FindConfig) -> bool:
        return cls.method in cfg.prune.compare_with

    def plan(self, ctx: ArmContext, ticket: int) -> ArmPlan:
        pattern = methods.ticket_pattern(ctx, ticket)
        sparsity = M.sparsity(ctx.mask(ticket))
        masks, extra, pruned = methods.prune_dense(ctx, self.method, sparsity, pattern)
        return ArmPlan(masks, methods.start_after_oneshot(ctx, ticket, pruned), own_mask=True,
                       extra=extra)


for _method in ONESHOT_METHODS:
    register(type(f"Method_{_method}", (MethodControl,), {
        "name": f"method_{_method}", "method": _method,
        "__doc__": f"``--compare-methods {_method}``: see :class:`MethodControl`."}))
