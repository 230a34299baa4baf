"""Iterative magnitude pruning with rewinding, its controls and the verdict.

Stages, each skipped when its output is already recorded in the manifest (so a killed run
resumes by running the same command again, and ends with the same bytes):

1. round 0: train dense from the initial weights, capturing the rewind point;
2. round r: prune ``rate`` of the remaining weights by magnitude of round r-1's trained
   weights, rewind the survivors, retrain; until ``target_sparsity`` (or a drop, optionally);
   the decisions are the pure functions of ``pruning.rules``. With ``--pattern N:M`` each
   round keeps k of every M (``rules.nm_schedule``); with ``--method magnitude|wanda|
   sparsegpt`` round 1 is the trained dense model pruned in one shot (``pruning.methods``),
   its metric without retraining recorded, then retrained as a ticket, and the search stops;
3. the controls registered in ``pruning.controls`` at the ticket's sparsity, with the
   ticket's schedule and data order;
4. the verdict (``pruning.verdict``).

Training is :class:`~ticketlens.pruning.arms.ArmTrainer`'s; the record (the typed
:class:`~ticketlens.core.record.Manifest` and the files of each round) is the
:class:`~ticketlens.pruning.recorder.Recorder`'s; opening or resuming the run directory is
``pruning.resume``'s; unit importance is ``pruning.structured``'s, the early-bird stop
``pruning.earlybird``'s. :class:`Search` holds what a round reads back (masks, unit masks,
weights) and runs the stages in order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import FindConfig
from ticketlens.core.errors import RunFormatError
from ticketlens.core.record import ArmRecord, Manifest, control_label
from ticketlens.core.run import RunWriter
from ticketlens.pruning import manifest as MF
from ticketlens.pruning import methods, ops, rules, structured
from ticketlens.pruning.arms import ArmResult, ArmSpec, ArmTrainer, cpu_state, derive_seed
from ticketlens.pruning.controls import CONTROLS, required_controls, wanted_controls
from ticketlens.pruning.earlybird import dense_early_bird, stop_line
from ticketlens.pruning.patterns import parse_pattern
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.recorder import Recorder
from ticketlens.pruning.resume import check_can_add_controls, open_or_create
from ticketlens.pruning.setup import Setup, prepare
from ticketlens.pruning.train import (
    Threads,
    check_same_on_all_ranks,
    make_accelerator,
    plan_threads,
    process_rank,
    torch_threads,
)
from ticketlens.pruning.verdict import verdict

__all__ = ["Search", "derive_seed", "find"]


def find(cfg: FindConfig, out: str | Path, *, reporter: Reporter | None = None,
         overwrite: bool = False) -> Path:
    """Run (or resume) a ticket search into the run directory ``out``; returns its path."""
    out = Path(out)
    reporter = reporter or Reporter()
    if process_rank() != 0:  # under torchrun, only rank 0 talks and writes
        reporter = Reporter()
    cfg = methods.resolve_config(cfg)  # --pattern N:M sets the target sparsity
    with torch_threads(plan_threads()) as threads:
        return _find(cfg, out, reporter, overwrite, threads)


def _find(cfg: FindConfig, out: Path, reporter: Reporter, overwrite: bool,
          threads: Threads) -> Path:
    acc = make_accelerator(cfg.train)
    writer = RunWriter(out, main=acc.is_main_process)
    # Under several processes rank 0 alone may clear (--overwrite) or create the directory;
    # the others read what it left, after a barrier.
    manifest = open_or_create(writer, cfg, overwrite) if acc.is_main_process else None
    acc.wait_for_everyone()
    if not acc.is_main_process:
        manifest = open_or_create(writer, cfg, overwrite=False)
    if manifest is not None and manifest.complete and all(
            c in manifest.controls for c in wanted_controls(cfg)):
        reporter.line(f"{out}: already complete; nothing to do")
        return out
    if manifest is not None and manifest.complete:
        check_can_add_controls(writer, manifest, cfg)  # before anything is written
    setup = prepare(cfg)
    structured.check_granularity(setup.anatomy, cfg.prune.granularity)
    methods.check(cfg, setup)
    reporter.line(_start_line(setup, threads, out))
    search = Search(setup, writer, manifest, reporter, acc)
    search.recorder.update(runtime=threads.to_dict())
    search.run()
    return out


def _start_line(setup: Setup, threads: Threads, out: Path) -> str:
    cfg = setup.cfg
    how = "" if cfg.prune.pattern == "unstructured" else f" ({cfg.prune.pattern})"
    how += "" if cfg.prune.method == "imp" else f", one-shot {cfg.prune.method}"
    return (f"ticketlens find: {setup.loaded.name} ({setup.anatomy.family}, "
            f"{setup.anatomy.num_prunable:,} prunable weights) on {setup.task.name} "
            f"({len(setup.train)} train / {len(setup.dev)} dev), seed {cfg.seed}, "
            f"{setup.total_steps} steps a round, rewind {setup.rewind}, "
            f"target sparsity {cfg.prune.target_sparsity:.0%}{how}, {threads.torch_threads} "
            f"torch thread{'s' if threads.torch_threads > 1 else ''} "
            f"({threads.cores_available} cores available) -> {out}")


class Search:
    """One run's IMP search; also the context controls plan against
    (:class:`~ticketlens.pruning.controls.ArmContext`)."""

    def __init__(self, setup: Setup, writer: RunWriter, manifest: Manifest | None,
                 reporter: Reporter, acc: Any = None):
        self.s = setup
        self.cfg = setup.cfg
        self.writer = writer
        self.paths = writer.paths
        self.reporter = reporter
        self.acc = acc or make_accelerator(self.cfg.train)
        self.trainer = ArmTrainer(setup, self.acc, reporter)
        self.names = setup.anatomy.names
        self.shapes = setup.anatomy.shapes
        self.metric = setup.metric
        self.kinds = structured.KINDS.get(self.cfg.prune.granularity, ())
        self.recorder = Recorder(writer, manifest or MF.new_manifest(setup), acc=self.acc,
                                 reporter=reporter, anatomy=setup.anatomy, kinds=self.kinds,
                                 metric=self.metric, tolerance=self.cfg.prune.tolerance)
        self._masks: dict[int, dict[str, torch.Tensor]] = {}
        self._arm_loss: Any = None
        self._units: dict[int, structured.Units] = {}
        self.pattern = parse_pattern(self.cfg.prune.pattern)
        self.nm_schedule = () if self.pattern is None else rules.nm_schedule(
            self.pattern.n, self.pattern.m, self.cfg.prune.rate)

    @property
    def manifest(self) -> Manifest:
        """The run's record so far (the :attr:`recorder`'s)."""
        return self.recorder.manifest

    # ------------------------------------------------------------------ context for arms
    def mask(self, r: int) -> dict[str, torch.Tensor]:
        if r not in self._masks:
            self._masks[r] = ops.to_torch(M.load_masks(self.paths.mask(r),
                                                       expected=self.shapes))
        return self._masks[r]

    def units(self, r: int) -> structured.Units:
        """The unit masks of structured round ``r`` (round 0: every unit kept)."""
        if r not in self._units:
            if r == 0:
                self._units[r] = structured.Units.all(self.s.anatomy)
            else:
                a = self.s.anatomy
                m = M.load_masks(self.paths.units(r), expected={
                    "head": (a.num_layers, a.num_heads),
                    "neuron": (a.num_layers, a.intermediate)})
                self._units[r] = structured.Units(m["head"], m["neuron"])
        return self._units[r]

    def layer_groups(self) -> list[list[str]]:
        """The prunable tensors of each layer (``--scope layer`` for weights)."""
        return ops.layer_groups(self.s.anatomy)

    def load_weights(self, what: str | int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = self.paths.weights(what)
        if not path.is_file():
            raise RunFormatError(f"{path}: missing; the run cannot resume (use --overwrite)")
        return load_file(str(path))

    def start_state(self, r: int) -> dict[str, torch.Tensor]:
        """Weights round ``r`` (>= 1) starts from, before masking."""
        if self.s.rewind.mode == "lr":
            return self.load_weights(r - 1)
        return self.load_weights("rewind")

    def fresh_state(self, seed: int) -> dict[str, torch.Tensor]:
        from ticketlens.models.load import reinit_like

        return cpu_state(reinit_like(self.s.loaded, seed))

    def arm_loss(self) -> Any:
        """The loss pruned rounds and controls train with: ``None`` (the task's own), or with
        ``--distill`` the distillation loss against the trained dense model of round 0."""
        if not self.cfg.train.distill:
            return None
        if self._arm_loss is None:
            from ticketlens.pruning.distill import teacher_loss

            self._arm_loss = teacher_loss(self.s, self.load_weights(0), self.acc)
        return self._arm_loss

    def evaluate_state(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        """Dev metrics of the model with weights ``state`` as they are (no training)."""
        from ticketlens.pruning import objectives

        self.trainer.base.load_state_dict(state)
        return objectives.evaluate_metrics(self.acc, self.trainer.model, self.s,
                                           self.cfg.train.eval_batch_size)

    def importance(self, state: dict[str, torch.Tensor],
                   masks: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
        """Unit scores of trained weights ``state`` under ``masks`` (``--importance``)."""
        return structured.state_scores(self.trainer.base, self.s, self.kinds, state, masks,
                                       seed)

    @property
    def start_step(self) -> int:
        return self.s.rewind_step if self.s.rewind.mode == "step" else 0

    def _done_rounds(self) -> list[int]:
        return [r.index for r in self.manifest.rounds]

    # ------------------------------------------------------------------ stages
    def run(self) -> None:
        rec = self.recorder
        tokenizer = dict(self.manifest.tokenizer or {})
        tokenizer["file"] = self.paths.rel(self.paths.tokenizer)
        # the manifest first: a folder holding one is a run, which the same command resumes
        rec.update(status="running", tokenizer=tokenizer)
        rec.save()
        self.writer.tokenizer(self.s.tokenizer)
        if 0 not in self._done_rounds():
            self._round_zero()
        while not self._finished():
            self._next_round()
        ticket = rules.ticket_round(self.manifest.rounds, self.metric,
                                    self.cfg.prune.tolerance, self.cfg.prune.stop_on_drop)
        rec.update(ticket_round=ticket, weights={
            **self.manifest.weights, "ticket": self.paths.rel(self.paths.weights(ticket))})
        for name in wanted_controls(self.cfg):
            if name not in self.manifest.controls:
                self._control(name, ticket)
        v = verdict(self.manifest, self.cfg.prune.tolerance, required_controls(),
                    self.cfg.prune.control_margin)
        # what a control added later starts from stays: the rewind point, or with lr
        # rewinding the round before the ticket
        self.writer.remove_weights(self._done_rounds(), keep={0, ticket} | (
            {ticket - 1} if self.s.rewind.mode == "lr" else set()))
        rec.update(verdict=v, status="complete")
        rec.save()
        self.reporter.line(f"[bold]{v.label}[/bold]: {v.reason}")

    def _round_zero(self) -> None:
        ones = ops.ones_like({n: self.trainer.init_state[n] for n in self.names})
        capture = self.start_step if self.s.rewind.mode == "step" else None
        bird = dense_early_bird(self.s, self.trainer.base, self.kinds, self.start_step) \
            if self.cfg.prune.early_bird else None
        res = self.trainer.train(ArmSpec("round 0 (dense)", self.trainer.init_state, ones, 0,
                                         derive_seed(self.cfg.seed, "round", 0), capture,
                                         stop_check=bird))
        if bird is not None:
            eb = bird.record(self.s.total_steps)
            self.recorder.add_extra(early_bird=eb)
            self.reporter.line(stop_line(eb))
        rewind_state = res.phase.captured if capture is not None else self.trainer.init_state
        rewind = self.writer.weights("rewind", rewind_state)
        assert self.manifest.rewind is not None
        self.recorder.update(
            rewind=dataclasses.replace(self.manifest.rewind, weights=rewind),
            weights={"rewind": rewind, "dense": self.writer.weights(0, self.trainer.state())})
        self._record_round(0, ones, res, amount=0.0)

    def _amounts_after(self, r: int) -> dict[str, float]:
        """Share of the remaining weights (``{"weight": x}``) or of each kind of unit to
        prune next (``rules.next_amounts``)."""
        if not self.kinds:
            kept = {"weight": M.count_kept(self.mask(r))}
        else:
            u = self.units(r)
            kept = {k: (int(u.get(k).sum()), u.get(k).size) for k in self.kinds}
        return rules.next_amounts(self.cfg.prune, r, kept, self.nm_schedule)

    def _finished(self) -> bool:
        rounds = self.manifest.rounds
        return rules.finished(rounds, self.metric, self.cfg.prune.tolerance,
                              self.cfg.prune.stop_on_drop,
                              max(self._amounts_after(rounds[-1].index).values()))

    def _next_round(self) -> None:
        prev = self.manifest.rounds[-1].index
        r = prev + 1
        amounts = self._amounts_after(prev)
        masks, units, extra, start = self._prune(prev, amounts)
        mask_check = check_same_on_all_ranks(self.acc, masks, self.names, r)
        if mask_check:
            self.recorder.add_extra(processes=mask_check)
        start = self.start_state(r) if start is None else start
        res = self.trainer.train(ArmSpec(f"round {r}", start, masks, self.start_step,
                                         derive_seed(self.cfg.seed, "round", r),
                                         loss_fn=self.arm_loss()))
        self._record_round(r, masks, res, max(amounts.values()), units, extra)

    def _prune(self, prev: int, amounts: dict[str, float]
               ) -> tuple[dict[str, torch.Tensor], structured.Units | None, dict[str, Any],
                          dict[str, torch.Tensor] | None]:
        """The next round's masks (with its unit masks when structured, and the one-shot
        record with ``--method``) from round ``prev``'s trained weights, and the weights the
        round starts from when they are not :meth:`start_state`'s (a one-shot round without
        training: the method's pruned weights)."""
        p = self.cfg.prune
        if p.method != "imp":
            masks, extra, pruned = methods.prune_dense(self, p.method, p.target_sparsity,
                                                       self.pattern)
            o = extra["oneshot"]
            self.reporter.line(
                f"round {prev + 1:>2}  one-shot {p.method} to {o['sparsity']:.1%} "
                f"({o['pattern']}) on {extra['calibration']['count']} calibration examples: "
                f"{self.metric} {o['metrics'][self.metric]:.4f} without retraining")
            return masks, None, extra, (pruned if self.s.total_steps == 0 else None)
        trained = self.load_weights(prev)
        if self.kinds:
            scores = self.importance(trained, self.mask(prev),
                                     derive_seed(self.cfg.seed, "importance", prev))
            units = self.units(prev)
            for k in self.kinds:
                units = units.replace(k, structured.prune_units(
                    scores[k], units.get(k), amounts[k], p.scope))
            return ops.to_torch(units.weight_masks(self.s.anatomy)), units, {}, None
        weights = {n: trained[n] for n in self.names}
        if self.nm_schedule:
            assert self.pattern is not None
            return ops.nm_prune(weights, self.mask(prev), methods.layouts(self.s.anatomy),
                                self.nm_schedule[prev + 1], self.pattern.m), None, {}, None
        return ops.magnitude_prune(weights, self.mask(prev), amounts["weight"], p.scope,
                                   groups=self.layer_groups()), None, {}, None

    def _record_round(self, r: int, masks: dict[str, torch.Tensor], res: ArmResult,
                      amount: float, units: structured.Units | None = None,
                      extra: dict[str, Any] | None = None) -> None:
        self._masks[r] = masks
        for old in [k for k in self._masks if k < r - 1]:  # reloaded from disk if needed
            del self._masks[old]
        if self.kinds:
            self._units[r] = units or structured.Units.all(self.s.anatomy)
        self.recorder.round(r, masks, self.trainer.state(), res, amount,
                            self._units.get(r) if self.kinds else None, extra)

    def _control(self, name: str, ticket: int) -> None:
        plan = CONTROLS[name]().plan(self, ticket)
        seed = derive_seed(self.cfg.seed, "round", ticket)  # same data order as the ticket
        mask_rel = self.writer.mask(name, plan.masks) if plan.own_mask else None
        units_rel = None
        if plan.units is not None and plan.own_mask:
            units_rel = self.writer.units(name, plan.units.head, plan.units.neuron)
        res = self.trainer.train(ArmSpec(f"control: {control_label(name)}", plan.start_state,
                                         plan.masks, self.start_step, seed,
                                         loss_fn=self.arm_loss()))
        rec = ArmRecord(sparsity=M.sparsity(plan.masks), metrics=res.metrics, steps=res.steps,
                        wall_time_s=res.wall_time_s, ticket_round=ticket, mask=mask_rel,
                        units=units_rel, unit_sparsity=None if plan.units is None else
                        plan.units.sparsity(self.kinds), extra=dict(plan.extra or {}))
        self.recorder.arm(name, rec)
        before = ""
        if plan.extra and "oneshot" in plan.extra:
            before = (f"  ({plan.extra['oneshot']['metrics'][self.metric]:.4f} without "
                      "retraining)")
        self.reporter.line(f"control {name:<16} sparsity {rec.sparsity:6.1%}  "
                           f"{self.metric} {res.metrics[self.metric]:.4f}{before}")
