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

Training is :class:`~ticketlens.pruning.arms.ArmTrainer`'s; writing is the run's
:class:`~ticketlens.core.run.RunWriter`'s; the record is the typed
:class:`~ticketlens.core.record.Manifest`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import FindConfig
from ticketlens.core.errors import ConfigError, RunFormatError
from ticketlens.core.record import ArmRecord, Manifest, RoundRecord, control_label
from ticketlens.core.run import RunWriter, is_run, read_manifest
from ticketlens.pruning import manifest as MF
from ticketlens.pruning import methods, ops, rules, structured
from ticketlens.pruning.arms import ArmResult, ArmSpec, ArmTrainer, cpu_state, derive_seed
from ticketlens.pruning.controls import (
    CONTROLS,
    informative_flags,
    merge_flag,
    required_controls,
    wanted_controls,
)
from ticketlens.pruning.patterns import parse_pattern
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.setup import Setup, prepare
from ticketlens.pruning.train import (
    Threads,
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
    manifest = _open_or_create(writer, cfg, overwrite) if acc.is_main_process else None
    acc.wait_for_everyone()
    if not acc.is_main_process:
        manifest = _open_or_create(writer, cfg, overwrite=False)
    if manifest is not None and manifest.complete and all(
            c in manifest.controls for c in wanted_controls(cfg)):
        reporter.line(f"{out}: already complete; nothing to do")
        return out
    if manifest is not None and manifest.complete:
        _check_can_add_controls(writer, manifest, cfg)  # before anything is written
    setup = prepare(cfg)
    structured.check_granularity(setup.anatomy, cfg.prune.granularity)
    methods.check(cfg, setup)
    how = "" if cfg.prune.pattern == "unstructured" else f" ({cfg.prune.pattern})"
    how += "" if cfg.prune.method == "imp" else f", one-shot {cfg.prune.method}"
    reporter.line(
        f"ticketlens find: {setup.loaded.name} ({setup.anatomy.family}, "
        f"{setup.anatomy.num_prunable:,} prunable weights) on {setup.task.name} "
        f"({len(setup.train)} train / {len(setup.dev)} dev), seed {cfg.seed}, "
        f"{setup.total_steps} steps a round, rewind {setup.rewind}, "
        f"target sparsity {cfg.prune.target_sparsity:.0%}{how}, {threads.torch_threads} torch "
        f"thread{'s' if threads.torch_threads > 1 else ''} ({threads.cores_available} cores "
        f"available) -> {out}")
    search = Search(setup, writer, manifest, reporter, acc)
    search.manifest = dataclasses.replace(search.manifest, runtime=threads.to_dict())
    search.run()
    return out


def _open_or_create(writer: RunWriter, cfg: FindConfig, overwrite: bool) -> Manifest | None:
    root = writer.root
    if root.exists() and not is_run(root):
        # empty, or what a run killed while writing its first manifest left (a .tmp-* file)
        if root.is_dir() and set(root.iterdir()) <= set(writer.paths.partial_files()):
            writer.remove_partial()
            return None
        raise ConfigError(f"{root}: exists and is not a ticketlens run; choose another --out")
    if not is_run(root):
        return None
    if overwrite:
        writer.clear()
        return None
    writer.remove_partial()
    manifest = read_manifest(root)
    if not manifest.config:  # imported masks: no config, no weights
        wants = [c for c in wanted_controls(cfg) if CONTROLS[c].needs_dense]
        raise ConfigError(
            f"{root}: holds imported masks without weights"
            + (f"; the {control_label(wants[0])} control prunes the trained dense model, so "
               "it needs a run made by `ticketlens find`" if wants else
               "; `find` cannot resume it: choose another --out"))
    old = FindConfig.from_dict(dict(manifest.config)).to_dict()
    # informative controls (one-shot, --compare-methods) only add to a run: never a conflict
    then = dict(old["prune"])
    for flag in informative_flags():
        old["prune"][flag] = getattr(cfg.prune, flag)
    # --calibration is free until something used it (a one-shot round or method control)
    calibrated = any("calibration" in x.extra for x in (*manifest.rounds,
                                                         *manifest.controls.values()))
    if not calibrated:
        old["prune"]["calibration"] = cfg.prune.calibration
    diff = _first_difference(old, cfg.to_dict())
    if diff:
        raise ConfigError(f"{root}: holds a run with other settings ({diff}); resume with the "
                          "same options, or pass --overwrite, or choose another --out")
    merged = {f: merge_flag(then.get(f), getattr(cfg.prune, f)) for f in informative_flags()}
    if not calibrated:
        merged["calibration"] = cfg.prune.calibration
    if any(merged[f] != then.get(f) for f in merged):
        config = dict(manifest.config)
        config["prune"] = {**config.get("prune", {}), **merged}
        manifest = dataclasses.replace(manifest, config=config)
    return manifest


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    if (list(a) if isinstance(a, tuple | list) else a) != (list(b) if isinstance(
            b, tuple | list) else b):
        return f"{prefix.rstrip('.')}: {a!r} then, {b!r} now"
    return None


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
        self.manifest: Manifest = manifest or MF.new_manifest(setup)
        self._masks: dict[int, dict[str, torch.Tensor]] = {}
        self._arm_loss: Any = None
        self.kinds = structured.KINDS.get(self.cfg.prune.granularity, ())
        self._units: dict[int, structured.Units] = {}
        self.pattern = parse_pattern(self.cfg.prune.pattern)
        self.nm_schedule = () if self.pattern is None else rules.nm_schedule(
            self.pattern.n, self.pattern.m, self.cfg.prune.rate)

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
        groups: dict[int, list[str]] = {}
        for t in self.s.anatomy.tensors:
            groups.setdefault(t.layer, []).append(t.name)
        return list(groups.values())

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

    @property
    def start_step(self) -> int:
        return self.s.rewind_step if self.s.rewind.mode == "step" else 0

    # ------------------------------------------------------------------ bookkeeping
    def save(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.writer.manifest(manifest)
        self.acc.wait_for_everyone()

    def _done_rounds(self) -> list[int]:
        return [r.index for r in self.manifest.rounds]

    # ------------------------------------------------------------------ stages
    def run(self) -> None:
        tokenizer = dict(self.manifest.tokenizer or {})
        tokenizer["file"] = self.paths.rel(self.paths.tokenizer)
        # the manifest first: a folder holding one is a run, which the same command resumes
        self.save(dataclasses.replace(self.manifest, status="running", tokenizer=tokenizer))
        self.writer.tokenizer(self.s.tokenizer)
        if 0 not in self._done_rounds():
            self._round_zero()
        while not self._finished():
            self._next_round()
        ticket = rules.ticket_round(self.manifest.rounds, self.metric,
                                    self.cfg.prune.tolerance, self.cfg.prune.stop_on_drop)
        self.manifest = dataclasses.replace(
            self.manifest, ticket_round=ticket,
            weights={**self.manifest.weights, "ticket": self.paths.rel(
                self.paths.weights(ticket))})
        for name in wanted_controls(self.cfg):
            if name not in self.manifest.controls:
                self._control(name, ticket)
        v = verdict(self.manifest, self.cfg.prune.tolerance, required_controls(),
                    self.cfg.prune.control_margin)
        # what a control added later starts from stays: the rewind point, or with lr
        # rewinding the round before the ticket
        self.writer.remove_weights(self._done_rounds(), keep={0, ticket} | (
            {ticket - 1} if self.s.rewind.mode == "lr" else set()))
        self.save(dataclasses.replace(self.manifest, verdict=v, status="complete"))
        self.reporter.line(f"[bold]{v.label}[/bold]: {v.reason}")

    def _round_zero(self) -> None:
        ones = ops.ones_like({n: self.trainer.init_state[n] for n in self.names})
        capture = self.start_step if self.s.rewind.mode == "step" else None
        bird = self._early_bird() if self.cfg.prune.early_bird else None
        res = self.trainer.train(ArmSpec("round 0 (dense)", self.trainer.init_state, ones, 0,
                                         derive_seed(self.cfg.seed, "round", 0), capture,
                                         stop_check=bird))
        if bird is not None:
            eb = bird.record(self.s.total_steps)
            self.manifest = self.manifest.with_extra(early_bird=eb)
            self.reporter.line(
                f"early-bird: the mask settled at step {eb['stopped_at']} of "
                f"{eb['dense_steps']} ({eb['steps_saved']} dense steps saved)"
                if eb["stopped_at"] is not None else
                f"early-bird: the mask did not settle (epsilon {bird.epsilon}, window "
                f"{bird.window}); dense trained all {eb['dense_steps']} steps")
        rewind_state = res.phase.captured if capture is not None else self.trainer.init_state
        rewind = self.writer.weights("rewind", rewind_state)
        assert self.manifest.rewind is not None
        self.manifest = dataclasses.replace(
            self.manifest, rewind=dataclasses.replace(self.manifest.rewind, weights=rewind),
            weights={"rewind": rewind, "dense": self.writer.weights(0, self.trainer.state())})
        self._record_round(0, ones, res, amount=0.0)

    def _early_bird(self) -> Any:
        """The stop check of the dense phase: the mask at the target sparsity is drawn from
        the weights as they train (``pruning.earlybird``)."""
        import numpy as np

        from ticketlens.pruning.earlybird import EarlyBird, resolve_every

        p = self.cfg.prune
        base = self.trainer.base
        params = dict(base.named_parameters())

        def draw() -> np.ndarray:
            weights = {n: params[n].detach() for n in self.names}
            if not self.kinds:
                ones = ops.ones_like(weights)
                m = ops.magnitude_prune(weights, ones, p.target_sparsity, p.scope,
                                        groups=self.layer_groups())
                return torch.cat([m[n].reshape(-1) for n in self.names]).numpy()
            scores = self.model_scores(derive_seed(self.cfg.seed, "early-bird",
                                                   len(bird.draws)))
            parts = []
            for k in self.kinds:
                n = scores[k].shape[1]
                keep = round((1 - p.target_sparsity) * (n if p.scope == "layer"
                                                         else scores[k].size))
                parts.append(structured.prune_units_to(scores[k], keep, p.scope).reshape(-1))
            return np.concatenate(parts)

        bird = EarlyBird(draw, resolve_every(p.early_bird_every, self.s.total_steps,
                                             self.s.steps_per_epoch),
                         p.early_bird_epsilon, p.early_bird_window,
                         not_before=self.start_step)
        return bird

    def _amount_after(self, r: int) -> float:
        return max(self._amounts_after(r).values())

    def _amounts_after(self, r: int) -> dict[str, float]:
        """Share of the remaining weights (``{"weight": x}``) or of each kind of unit to
        prune next."""
        p = self.cfg.prune
        if p.method != "imp":  # one-shot: round 1 prunes to the target, and is the last
            return {"weight": p.target_sparsity if r == 0 else 0.0}
        if self.nm_schedule:  # k_r of every M kept after round r
            ks = self.nm_schedule
            return {"weight": 0.0 if r + 1 >= len(ks) else 1.0 - ks[r + 1] / ks[r]}
        # early-bird: the ticket is the mask drawn at the stop, at the target in one step
        rate = p.target_sparsity if p.early_bird else p.rate
        if not self.kinds:
            kept, total = M.count_kept(self.mask(r))
            return {"weight": rules.next_amount(kept, total, rate, p.target_sparsity)}
        u = self.units(r)
        return {k: rules.next_amount(int(u.get(k).sum()), u.get(k).size, rate,
                                     p.target_sparsity) for k in self.kinds}

    def _finished(self) -> bool:
        rounds = self.manifest.rounds
        return rules.finished(rounds, self.metric, self.cfg.prune.tolerance,
                              self.cfg.prune.stop_on_drop, self._amount_after(rounds[-1].index))

    def _next_round(self) -> None:
        prev = self.manifest.rounds[-1].index
        r = prev + 1
        trained = self.load_weights(prev)
        amounts = self._amounts_after(prev)
        units = None
        extra: dict[str, Any] = {}
        p = self.cfg.prune
        if p.method != "imp":
            masks, extra = methods.prune_dense(self, p.method, p.target_sparsity, self.pattern)
            o = extra["oneshot"]
            self.reporter.line(
                f"round {r:>2}  one-shot {p.method} to {o['sparsity']:.1%} "
                f"({o['pattern']}) on {extra['calibration']['count']} calibration examples: "
                f"{self.metric} {o['metrics'][self.metric]:.4f} without retraining")
        elif self.kinds:
            units = self._prune_units(prev, trained, amounts)
            masks = ops.to_torch(units.weight_masks(self.s.anatomy))
        elif self.nm_schedule:
            assert self.pattern is not None
            masks = ops.nm_prune({n: trained[n] for n in self.names}, self.mask(prev),
                                 methods.layouts(self.s.anatomy), self.nm_schedule[r],
                                 self.pattern.m)
        else:
            masks = ops.magnitude_prune({n: trained[n] for n in self.names}, self.mask(prev),
                                        amounts["weight"], self.cfg.prune.scope,
                                        groups=self.layer_groups())
        self._check_same_on_all_ranks(masks, r)
        res = self.trainer.train(ArmSpec(f"round {r}", self.start_state(r), masks,
                                         self.start_step, derive_seed(self.cfg.seed, "round", r),
                                         loss_fn=self.arm_loss()))
        self._record_round(r, masks, res, max(amounts.values()), units, extra)

    def importance(self, state: dict[str, torch.Tensor],
                   masks: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
        """Unit scores of trained weights ``state`` under ``masks`` (``--importance``)."""
        if self.cfg.prune.importance == "magnitude":
            return structured.magnitude_importance(self.s.anatomy,
                                                   {n: state[n] for n in self.names},
                                                   self.kinds)
        from ticketlens.pruning.masking import MaskEnforcer

        base = self.trainer.base
        base.load_state_dict(state)
        MaskEnforcer(base, masks).apply_to_weights()
        return self.model_scores(seed)

    def model_scores(self, seed: int) -> dict[str, Any]:
        """Unit scores of the model's weights as they are now (``--importance``; gradient:
        over ``--importance-batches`` training batches drawn with ``seed``)."""
        base = self.trainer.base
        if self.cfg.prune.importance == "magnitude":
            params = dict(base.named_parameters())
            return structured.magnitude_importance(
                self.s.anatomy, {n: params[n].detach() for n in self.names}, self.kinds)
        from ticketlens.data.batching import batch_stream
        from ticketlens.pruning import objectives
        from ticketlens.pruning.train import to_device

        make = objectives.batch_fn(self.s, self.s.train, seed)
        stream = batch_stream(self.s.train, self.cfg.train.batch_size, seed)
        device = next(base.parameters()).device
        batches = (to_device(make(next(stream)), device)
                   for _ in range(self.cfg.prune.importance_batches))
        return structured.gradient_importance(base, self.s.anatomy, self.kinds, batches)

    def _prune_units(self, prev: int, trained: dict[str, torch.Tensor],
                     amounts: dict[str, float]) -> structured.Units:
        scores = self.importance(trained, self.mask(prev),
                                 derive_seed(self.cfg.seed, "importance", prev))
        units = self.units(prev)
        for k in self.kinds:
            units = units.replace(k, structured.prune_units(
                scores[k], units.get(k), amounts[k], self.cfg.prune.scope))
        return units

    def _check_same_on_all_ranks(self, masks: dict[str, torch.Tensor], r: int) -> None:
        """Every process computes the mask from the same synchronised weights; check that
        they agree (a checksum per rank, gathered) before anyone trains on it."""
        world = self.acc.num_processes
        if world == 1:
            return
        import hashlib

        h = hashlib.sha256(b"".join(M.pack(masks[n]).tobytes() for n in self.names))
        mine = torch.tensor([int(h.hexdigest()[:15], 16)], device=self.acc.device)
        sums = self.acc.gather(mine).tolist()
        if len(set(sums)) != 1:
            raise RuntimeError(f"round {r}: the {world} processes computed different masks")
        self.manifest = self.manifest.with_extra(
            processes={"count": world, "mask_check": f"identical on {world} ranks"})

    def _record_round(self, r: int, masks, res: ArmResult, amount: float,
                      units: structured.Units | None = None,
                      extra: dict[str, Any] | None = None) -> None:
        self._masks[r] = masks
        for old in [k for k in self._masks if k < r - 1]:  # reloaded from disk if needed
            del self._masks[old]
        rel = self.writer.mask(r, masks)
        self.writer.weights(r, self.trainer.state())
        unit_rel, unit_sparsity = None, None
        if self.kinds:
            units = units or structured.Units.all(self.s.anatomy)
            self._units[r] = units
            if r:
                unit_rel = self.writer.units(r, units.head, units.neuron)
            unit_sparsity = units.sparsity(self.kinds)
        rec = RoundRecord(index=r, pruned_fraction_of_remaining=amount,
                          sparsity=M.sparsity(masks),
                          sparsity_per_tensor=M.sparsity_per_tensor(masks),
                          metrics=res.metrics, steps=res.steps, wall_time_s=res.wall_time_s,
                          mask=rel, units=unit_rel, unit_sparsity=unit_sparsity,
                          extra=extra or {})
        manifest = self.manifest.with_round(rec)
        self.writer.remove_weights([x.index for x in manifest.rounds], keep=rules.needed_weights(
            manifest.rounds, self.metric, self.cfg.prune.tolerance))
        self.save(manifest)
        self.reporter.line(
            f"round {r:>2}  sparsity {rec.sparsity:6.1%}  {self.metric} "
            f"{res.metrics[self.metric]:.4f}  dev loss {res.metrics['loss']:.4f}  "
            f"{res.steps} steps  {res.wall_time_s:.1f}s")

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
        self.save(self.manifest.with_arm(name, rec))
        before = ""
        if plan.extra and "oneshot" in plan.extra:
            before = (f"  ({plan.extra['oneshot']['metrics'][self.metric]:.4f} without "
                      "retraining)")
        self.reporter.line(f"control {name:<16} sparsity {rec.sparsity:6.1%}  "
                           f"{self.metric} {res.metrics[self.metric]:.4f}{before}")


def _check_can_add_controls(writer: RunWriter, manifest: Manifest, cfg: FindConfig) -> None:
    """A finished run keeps the weights a control starts from; refuse at once if not."""
    paths = writer.paths
    ticket = int(manifest.ticket_round or 0)
    lr = manifest.rewind is not None and manifest.rewind.mode == "lr"
    needed = [paths.weights(ticket - 1) if lr else paths.weights("rewind")]
    if any(CONTROLS[c].needs_dense for c in wanted_controls(cfg) if c not in manifest.controls):
        needed.insert(0, paths.weights(0))
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise ConfigError(f"{paths.root}: a control cannot be added to this finished run "
                          f"({paths.rel(missing[0])} was not kept); run it again with "
                          "--overwrite")
