"""The early-bird record of a run (``find --early-bird``; drawn by :mod:`ticketlens.pruning.
earlybird`, kept in ``manifest.extra["early_bird"]``) as a typed result for the views.

``early_bird(run)`` -> :class:`EarlyBirdResult`, or None when the run did not use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ticketlens.analysis.inputs import RunsOrMasks, one_run
from ticketlens.core.errors import RunFormatError
from ticketlens.core.result import Result


@dataclass(frozen=True)
class EarlyBirdDraw(Result):
    step: int
    distance: float | None  # normalised Hamming distance to the previous draw (None: first)


@dataclass(frozen=True)
class EarlyBirdResult(Result):
    every: int  # a mask was drawn every this many dense steps
    epsilon: float  # stop when the last ``window`` distances are all below this
    window: int
    draws: tuple[EarlyBirdDraw, ...]
    stopped_at: int | None  # the dense step where the mask settled; None: it never did
    dense_steps: int  # the dense run's planned steps
    steps_saved: int

    @property
    def settled(self) -> bool:
        return self.stopped_at is not None

    @property
    def saved_fraction(self) -> float:
        """The share of the dense run's steps that early-bird saved."""
        return self.steps_saved / self.dense_steps if self.dense_steps else 0.0

    def _data(self) -> dict[str, Any]:
        return {"every": self.every, "epsilon": self.epsilon, "window": self.window,
                "draws": [{"step": d.step, "distance": d.distance} for d in self.draws],
                "stopped_at": self.stopped_at, "dense_steps": self.dense_steps,
                "steps_saved": self.steps_saved, "saved_fraction": self.saved_fraction}


def early_bird(run: RunsOrMasks) -> EarlyBirdResult | None:
    """The run's early-bird record, typed; None when the run was found without it."""
    run = one_run(run, what="early_bird", needs="the early-bird record of its manifest")
    d = run.manifest.extra.get("early_bird")
    if d is None:
        return None
    try:
        if not isinstance(d, Mapping):
            raise TypeError("not a mapping")
        stop = d.get("stopped_at")
        return EarlyBirdResult(
            every=int(d["every"]), epsilon=float(d["epsilon"]), window=int(d["window"]),
            draws=tuple(EarlyBirdDraw(int(x["step"]), None if x.get("distance") is None
                                      else float(x["distance"])) for x in d.get("draws", ())),
            stopped_at=None if stop is None else int(stop), dense_steps=int(d["dense_steps"]),
            steps_saved=int(d.get("steps_saved", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFormatError(f"{run.path}: invalid early-bird record ({exc})") from None
