"""Transfer (Chen et al. 2020): does a ticket found on one task work on another?

The ticket's mask is trained on the other task from the source run's rewind point, beside the
other task's dense model and a random mask with the same per-tensor sparsity, all from the
same rewind weights, schedule and data order. The task head is re-initialised (from the seed)
when the number of labels differs. The result is a run directory: round 0 the dense model on
the new task, round 1 the transferred ticket, the random mask as its control.

A source run found with ``--distill`` transfers with distillation too: the source's dense
model knows the old task, not the new one, so the teacher is the transfer's own dense arm
(round 0, trained on the new task first); the ticket and the random mask train against it,
as in ``find``. The manifest's ``transfer.teacher`` says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import DataConfig, FindConfig
from ticketlens.core.errors import ConfigError, RunFormatError
from ticketlens.core.record import ArmRecord
from ticketlens.core.run import RunWriter, is_run, open_run
from ticketlens.models.load import head_parameter_names
from ticketlens.pruning import ops
from ticketlens.pruning.arms import ArmSpec, derive_seed
from ticketlens.pruning.controls import RandomMask
from ticketlens.pruning.imp import Search
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.setup import prepare
from ticketlens.pruning.structured import Units
from ticketlens.pruning.verdict import verdict


class _TransferSearch(Search):
    """The arms of a transfer: the source ticket's mask is "round 1" and every arm starts
    from the source's rewind point (the new task's head where it differs)."""

    def __init__(self, *args, start: dict[str, torch.Tensor],
                 ticket: dict[str, torch.Tensor], ticket_units: Units | None, step: int,
                 **kw):
        super().__init__(*args, **kw)
        self._start, self._ticket, self._step = start, ticket, step
        self._ticket_units = ticket_units

    def mask(self, r: int) -> dict[str, torch.Tensor]:
        return self._ticket if r == 1 else super().mask(r)

    def units(self, r: int) -> Units:
        """A structured ticket's heads and neurons (the random mask keeps their counts)."""
        if r == 1 and self._ticket_units is not None:
            return self._ticket_units
        return super().units(r)

    def start_state(self, r: int) -> dict[str, torch.Tensor]:
        return self._start

    @property
    def start_step(self) -> int:
        return self._step


def transfer(source: str | Path, data: DataConfig, out: str | Path, *,
             reporter: Reporter | None = None, overwrite: bool = False) -> Path:
    """Train ``source``'s ticket on the task of ``data`` beside dense and a random mask;
    returns the new run's path (see the module doc)."""
    reporter = reporter or Reporter()
    src = open_run(source)
    if not src.has_weights:
        raise RunFormatError(f"{src.path}: has no weights (an imported mask?); transfer needs "
                             "the rewind point that `ticketlens find` stores")
    out = Path(out)
    writer = RunWriter(out)
    if is_run(out) and not overwrite:
        raise ConfigError(f"{out}: a run already exists; pass --overwrite or choose another -o")
    if out.exists() and overwrite and is_run(out):
        writer.clear()
    cfg = FindConfig.from_dict(dict(src.manifest.config))
    cfg = dataclasses.replace(cfg, data=data)
    setup = prepare(cfg)
    if setup.anatomy.shapes != src.anatomy.shapes:
        raise ConfigError("the new task's model has other prunable weights than the source run")
    rewind = src.weights("rewind")
    model_state = setup.model.state_dict()
    mismatched = [k for k, v in rewind.items() if k in model_state
                  and tuple(v.shape) != tuple(model_state[k].shape)]
    if any(k not in head_parameter_names(setup.model) for k in mismatched):
        raise ConfigError("the new task needs another vocabulary than the source run (e.g. a "
                          "file task on a from-scratch preset); transfer between built-in "
                          "tasks, or with a pretrained model")
    start = {**model_state, **{k: v for k, v in rewind.items()
                               if k in model_state and k not in mismatched}}
    step = src.manifest.rewind.step if src.manifest.rewind is not None else 0
    step = step if step < setup.total_steps else 0
    drawn = src.drawn_units(None)  # (head, neuron) of a structured ticket, else None
    search = _TransferSearch(setup, writer, None, reporter, start=start,
                             ticket=ops.to_torch(src.mask()), step=step,
                             ticket_units=Units(*drawn) if drawn is not None else None)
    rec = search.recorder
    rec.add_extra(transfer={
        "source": str(src.path.resolve()), "source_task": src.task,
        "source_round": src.ticket_round, "source_sparsity": src.ticket.sparsity,
        "head_reinitialised": mismatched,
        **({"teacher": "the dense arm of this transfer (round 0, on the new task)"}
           if cfg.train.distill else {}),
    })
    rec.update(status="running")
    rec.save()
    seed = derive_seed(cfg.seed, "transfer")
    arms = (("dense", ops.ones_like(search.mask(1))), ("ticket", search.mask(1)))
    for i, (label, masks) in enumerate(arms):
        # with --distill the teacher is round 0 of this transfer (written before round 1)
        res = search.trainer.train(ArmSpec(f"transfer: {label}", start, masks, step, seed,
                                           loss_fn=search.arm_loss() if i else None))
        if i == 0:
            rw = writer.weights("rewind", start)
            assert rec.manifest.rewind is not None
            rec.update(rewind=dataclasses.replace(rec.manifest.rewind, weights=rw),
                       weights={"rewind": rw, "dense": writer.weights(0, search.trainer.state())})
        rec.round(i, masks, search.trainer.state(), res, amount=0.0,
                  units=search.units(1) if i and search.kinds else None)
    plan = RandomMask().plan(search, 1)
    mask_rel = writer.mask(RandomMask.name, plan.masks)
    units_rel = None if plan.units is None else writer.units(RandomMask.name, plan.units.head,
                                                             plan.units.neuron)
    res = search.trainer.train(ArmSpec("transfer: random mask", plan.start_state, plan.masks,
                                       step, seed, loss_fn=search.arm_loss()))
    rec.arm(RandomMask.name, ArmRecord(
        sparsity=M.sparsity(plan.masks), metrics=res.metrics, steps=res.steps,
        wall_time_s=res.wall_time_s, ticket_round=1, mask=mask_rel, units=units_rel,
        unit_sparsity=None if plan.units is None else plan.units.sparsity(search.kinds)))
    rec.update(ticket_round=1,
               weights={**rec.manifest.weights, "ticket": writer.paths.rel(writer.paths.weights(1))})
    v = verdict(rec.manifest, cfg.prune.tolerance, required=(RandomMask.name,),
                control_margin=cfg.prune.control_margin)
    rec.update(verdict=v, status="complete")
    rec.save()
    reporter.line(f"[bold]{'TRANSFERS' if v.winning else 'DOES NOT TRANSFER'}[/bold]: "
                  f"{v.reason}")
    return out
