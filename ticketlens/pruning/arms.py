"""Training one arm: start weights + mask + schedule -> trained weights + metrics.

Every trained thing in a run is an arm: an IMP round, a control, a transferred ticket. An
:class:`ArmTrainer` owns the model (prepared by accelerate) and trains one arm at a time; the
caller decides what to record. A phase is a pure function of (start weights, mask, start
step, seed), which is what makes a killed run resume to the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ticketlens.pruning import objectives
from ticketlens.pruning.masking import MaskEnforcer
from ticketlens.pruning.ops import to_torch
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.setup import Setup
from ticketlens.pruning.train import PhaseResult, train_phase


def derive_seed(seed: int, *parts: int | str) -> int:
    """A stable 63-bit seed from a base seed and labels (no Python hash randomisation)."""
    import hashlib

    h = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


@dataclass(frozen=True)
class ArmSpec:
    """What to train: ``label`` for progress, the start weights (a full state dict), the mask
    (prunable tensors only), the first step of the schedule and the seed of data order and
    dropout; ``capture_at`` keeps the weights at that step (the rewind point)."""

    label: str
    start_state: Mapping[str, torch.Tensor]
    masks: Mapping[str, Any]
    start_step: int
    seed: int
    capture_at: int | None = None
    loss_fn: Any = None  # train.LossFn: replaces the model's loss (distillation)
    stop_check: Any = None  # train.StopCheck: ends the phase early (early-bird)


@dataclass(frozen=True)
class ArmResult:
    phase: PhaseResult
    metrics: dict[str, float]  # dev metrics + train_loss (none when no step was taken)

    @property
    def steps(self) -> int:
        return self.phase.steps

    @property
    def wall_time_s(self) -> float:
        return round(self.phase.wall_time_s, 3)


class ArmTrainer:
    """Trains arms of one setup on one accelerator (the model is prepared once)."""

    def __init__(self, setup: Setup, acc: Any, reporter: Reporter):
        self.s = setup
        self.acc = acc
        self.reporter = reporter
        self.model = acc.prepare_model(setup.model)
        self.base = acc.unwrap_model(self.model)
        self.init_state = cpu_state(self.base)

    def train(self, spec: ArmSpec) -> ArmResult:
        self.base.load_state_dict(dict(spec.start_state))
        enforcer = MaskEnforcer(self.base, to_torch(spec.masks))
        total = self.s.total_steps
        cfg = self.s.cfg
        with self.reporter.phase(spec.label, total - spec.start_step) as on_step:
            phase = train_phase(
                self.acc, self.model, enforcer, self.s.train, tcfg=cfg.train, lr=self.s.lr,
                start=spec.start_step, end=total, total=total, seed=spec.seed,
                pad_id=self.s.tokenizer.pad_id,
                batch_fn=objectives.batch_fn(self.s, self.s.train, spec.seed),
                capture_at=spec.capture_at, on_step=on_step, loss_fn=spec.loss_fn,
                stop_check=spec.stop_check)
        metrics = objectives.evaluate_metrics(self.acc, self.model, self.s,
                                              cfg.train.eval_batch_size)
        if not phase.steps:  # --steps 0: evaluated as it is, nothing trained
            return ArmResult(phase, dict(metrics))
        return ArmResult(phase, {**metrics, "train_loss": phase.train_loss})

    def state(self) -> dict[str, torch.Tensor]:
        """The trained weights on the CPU."""
        return cpu_state(self.base)


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
