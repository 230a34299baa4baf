"""Early-bird tickets (You et al. 2020, "Drawing Early-Bird Tickets"; Chen et al. 2021,
EarlyBERT): draw the mask during dense training and stop training once it stops changing.

Every ``every`` steps of the dense run the mask at the target sparsity is drawn from the
current weights (by magnitude for weights; by ``--importance`` for heads and neurons); the
normalised Hamming distance to the previous draw (the share of weights or units whose kept /
pruned state differs) goes into a window of the last ``window`` distances, and dense training
stops when the window is full and its largest distance is below ``epsilon``. The papers'
defaults: ``epsilon = 0.1``, a window (FIFO queue) of 5 draws. The ticket is then the mask
drawn at the stop, trained from the rewind point like any round.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from ticketlens.pruning.setup import Setup


@dataclass
class EarlyBird:
    """The stop check of the dense phase (``train_phase(stop_check=...)``)."""

    draw: Callable[[], np.ndarray]  # the current mask at the target sparsity, flattened
    every: int
    epsilon: float
    window: int
    not_before: int = 0  # never stop before this step (the rewind point must be captured)
    draws: list[dict[str, Any]] = field(default_factory=list)
    stopped_at: int | None = None
    _last: np.ndarray | None = None
    _recent: deque = field(default_factory=deque)

    def __call__(self, step: int) -> bool:
        if step % self.every:
            return False
        mask = self.draw()
        distance = None if self._last is None else float(np.mean(mask != self._last))
        self._last = mask
        self.draws.append({"step": step, "distance": distance})
        if distance is None:
            return False
        self._recent.append(distance)
        while len(self._recent) > self.window:
            self._recent.popleft()
        if (len(self._recent) == self.window and max(self._recent) < self.epsilon
                and step >= self.not_before):
            self.stopped_at = step
            return True
        return False

    def record(self, total_steps: int) -> dict[str, Any]:
        """What the manifest keeps (``extra["early_bird"]``)."""
        stop = self.stopped_at
        return {"every": self.every, "epsilon": self.epsilon, "window": self.window,
                "draws": list(self.draws), "stopped_at": stop, "dense_steps": total_steps,
                "steps_saved": 0 if stop is None else total_steps - stop}


def resolve_every(text: str, total_steps: int, steps_per_epoch: int) -> int:
    """``--early-bird-every``: ``auto`` (5% of the steps) or a step count like 20it / 0.5ep."""
    from ticketlens.core.config import Steps

    if text == "auto":
        return max(1, round(0.05 * total_steps))
    return max(1, Steps.parse(text).resolve(steps_per_epoch))


def dense_early_bird(setup: Setup, model: torch.nn.Module, kinds: Sequence[str],
                     not_before: int = 0) -> EarlyBird:
    """The stop check of ``find --early-bird``'s dense phase: each draw is the mask at the
    target sparsity of ``model``'s weights as they train, by magnitude (``--scope``) for
    weights, by ``--importance`` for the unit ``kinds`` (heads, neurons)."""
    import torch

    from ticketlens.pruning import ops, structured
    from ticketlens.pruning.arms import derive_seed

    p = setup.cfg.prune
    names = setup.anatomy.names
    params = dict(model.named_parameters())

    def draw() -> np.ndarray:
        weights = {n: params[n].detach() for n in names}
        if not kinds:
            ones = ops.ones_like(weights)
            m = ops.magnitude_prune(weights, ones, p.target_sparsity, p.scope,
                                    groups=ops.layer_groups(setup.anatomy))
            return torch.cat([m[n].reshape(-1) for n in names]).numpy()
        scores = structured.model_scores(model, setup, kinds, derive_seed(
            setup.cfg.seed, "early-bird", len(bird.draws)))
        parts = []
        for k in kinds:
            n = scores[k].shape[1]
            keep = round((1 - p.target_sparsity) * (n if p.scope == "layer" else scores[k].size))
            parts.append(structured.prune_units_to(scores[k], keep, p.scope).reshape(-1))
        return np.concatenate(parts)

    bird = EarlyBird(draw, resolve_every(p.early_bird_every, setup.total_steps,
                                         setup.steps_per_epoch),
                     p.early_bird_epsilon, p.early_bird_window, not_before=not_before)
    return bird


def stop_line(record: dict[str, Any]) -> str:
    """What ``find`` prints after the dense phase (``record``: :meth:`EarlyBird.record`)."""
    if record["stopped_at"] is not None:
        return (f"early-bird: the mask settled at step {record['stopped_at']} of "
                f"{record['dense_steps']} ({record['steps_saved']} dense steps saved)")
    return (f"early-bird: the mask did not settle (epsilon {record['epsilon']}, window "
            f"{record['window']}); dense trained all {record['dense_steps']} steps")
