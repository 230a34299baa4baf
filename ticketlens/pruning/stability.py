"""Instability analysis (Frankle, Dziugaite, Roy & Carbin 2020, "Linear mode connectivity and
the lottery ticket hypothesis").

From a start point (a rewind point), two copies of an arm (the dense model, or a round's mask)
are trained to the end of the round's schedule with different SGD noise: different data orders
and dropout seeds. The trained weights ``A`` and ``B`` are interpolated linearly,
``W(a) = (1 - a) A + a B`` at ``points`` evenly spaced ``a`` in [0, 1], and each ``W(a)`` is
evaluated on the dev split as it is (no training). The *error barrier* (the paper's
instability) is the largest error along the path minus the mean of the two ends' errors::

    barrier = max_a error(W(a)) - (error(A) + error(B)) / 2

An arm is *stable* from a start point when the barrier is about 0; the paper counts it as
stable when the barrier is under 2 percentage points (``STABLE_BELOW``). Error is ``1 -
metric`` for the classification metrics (accuracy, F1, MCC, Pearson: higher is better), and
the dev loss in nats for language modelling (perplexity's log). The same barrier is reported
on the dev loss. open_lth's released code holds no instability branch; this follows the
paper's definition (their Section 2).

Start points (``--rewind``): ``init`` (the initial weights; the pretrained ones for a
pretrained model), ``rewind`` (the run's recorded rewind point and its schedule step),
``reinit`` (a fresh random initialisation of the architecture, step 0), or a step count
(``50it``, ``0.1ep``): the dense round 0 replayed from ``init`` with round 0's seed to that
step, which reproduces the run's own trajectory (a phase is a pure function of its start,
mask and seed). Copies continue the schedule from their start point's step, with the round's
learning rate, length and loss (a pruned round of a ``--distill`` run: distillation from the
run's dense model), as the run's rounds did. Every seed is derived from ``seed`` (the
run's seed by default) and recorded, so a result is reproduced by running it again.

The result is recorded in the run as ``analysis/stability.json`` (one entry per round, the
last computation of a round replacing the previous one; written atomically).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketlens.core.errors import AnalysisError, ConfigError, RunFormatError
from ticketlens.core.result import Result

if TYPE_CHECKING:
    from ticketlens.core.run import Run

STABLE_BELOW = 0.02  # Frankle et al. 2020: "stable" when the error barrier is under 2 points
FORMAT = "ticketlens.stability"
FORMAT_VERSION = 1
NAMED_STARTS = ("init", "rewind", "reinit")


# ----------------------------------------------------------------------------- pure maths
def error_barrier(errors: Sequence[float]) -> float:
    """``max(errors) - (errors[0] + errors[-1]) / 2`` along a path whose ends are the two
    trained copies (Frankle et al. 2020's instability)."""
    e = np.asarray(errors, dtype=np.float64)
    if e.size < 2:
        raise ValueError("a path needs at least its two ends")
    return float(e.max() - (e[0] + e[-1]) / 2.0)


def alphas(points: int) -> np.ndarray:
    """``points`` evenly spaced interpolation coefficients from 0 (copy A) to 1 (copy B)."""
    if points < 2:
        raise ConfigError("--points must be at least 2 (the two ends of the path)")
    return np.linspace(0.0, 1.0, points)


def interpolate(a: Mapping[str, Any], b: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    """``(1 - alpha) * a + alpha * b`` for every floating-point tensor; integer buffers
    (position ids) are taken from ``a``. Weights zero in both (a shared mask) stay zero."""
    out = {}
    for k, va in a.items():
        vb = b[k]
        out[k] = va.lerp(vb, float(alpha)) if va.is_floating_point() else va
    return out


def path_values(a: Mapping[str, Any], b: Mapping[str, Any],
                evaluate: Callable[[dict[str, Any]], tuple[float, float]],
                points: int) -> tuple[list[float], list[float]]:
    """(metric, loss) of ``evaluate(W(alpha))`` at ``points`` evenly spaced ``alpha`` of the
    linear path from ``a`` (alpha 0) to ``b`` (alpha 1)."""
    import torch

    metric, loss = [], []
    with torch.no_grad():
        for alpha in alphas(points):
            m, l_ = evaluate(interpolate(a, b, float(alpha)))
            metric.append(float(m))
            loss.append(float(l_))
    return metric, loss


def error_of(metric: str, value: float) -> float:
    """The error the barrier is measured on: ``1 - metric`` (higher-is-better metrics), or the
    value itself for ``loss`` (language modelling: the dev loss)."""
    return value if metric == "loss" else 1.0 - value


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class StabilityCurve(Result):
    """Two copies from one start point and the linear path between them."""

    start: str  # init | rewind | reinit | a step count ("50it")
    start_step: int  # the schedule step the copies start at
    seeds: tuple[int, int]  # data order and dropout of copy A and copy B
    alphas: tuple[float, ...]
    metric: tuple[float, ...]  # the run's metric at each point (dev)
    loss: tuple[float, ...]  # dev loss at each point
    error: tuple[float, ...]  # the error the barrier is on (``error_of``)
    error_barrier: float
    loss_barrier: float
    train_wall_time_s: float  # both copies (and a replayed dense prefix, if any)
    eval_wall_time_s: float  # every point of the path

    @property
    def stable(self) -> bool:
        return self.error_barrier < STABLE_BELOW

    @property
    def ends_error(self) -> float:
        """The mean error of the path's two ends (the two trained copies)."""
        return (self.error[0] + self.error[-1]) / 2.0

    @property
    def worst_error(self) -> float:
        """The largest error on the path (``ends_error + error_barrier``)."""
        return max(self.error)

    def _data(self) -> Mapping[str, Any]:
        return {**super()._data(), "stable": self.stable}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StabilityCurve:
        return cls(str(d["start"]), int(d["start_step"]), tuple(int(s) for s in d["seeds"]),
                   tuple(map(float, d["alphas"])), tuple(map(float, d["metric"])),
                   tuple(map(float, d["loss"])), tuple(map(float, d["error"])),
                   float(d["error_barrier"]), float(d["loss_barrier"]),
                   float(d.get("train_wall_time_s", 0.0)), float(d.get("eval_wall_time_s", 0.0)))


@dataclass(frozen=True)
class StabilityResult(Result):
    """Instability analysis of one round's arm (round 0: dense) from several start points."""

    run: str
    round: int
    arm: str  # "dense" | "ticket" (a pruned round's mask)
    sparsity: float
    metric: str  # the run's metric
    error: str  # what the barrier is measured on: "1 - accuracy", "loss", ...
    points: int
    seed: int  # every copy's seed is derived from it
    total_steps: int  # the round's schedule
    curves: tuple[StabilityCurve, ...]
    stable_below: float = STABLE_BELOW

    @property
    def judged(self) -> bool:
        """Whether Frankle et al.'s 2-point rule applies: to error rates (``1 - metric``),
        not to a barrier in nats of loss (language modelling)."""
        return self.error != "loss"

    def stable_text(self, curve: StabilityCurve) -> str:
        """``yes`` / ``no`` under the rule, ``n/a`` where it does not apply."""
        return ("yes" if curve.stable else "no") if self.judged else "n/a"

    def findings(self) -> tuple[str, ...]:
        """Plain sentences: each start point's barrier against Frankle et al.'s rule (error
        rates only: a barrier in nats of loss has no such rule and is not judged), and what
        one pair of copies a start point cannot show."""
        out = []
        rate = self.judged
        for c in self.curves:
            ends = f"{self.metric} {c.metric[0]:.4f} and {c.metric[-1]:.4f}"
            base = (f"From {c.start} (step {c.start_step}) the two copies end at {ends}; the "
                    f"worst point of the straight path between them has error "
                    f"{c.worst_error:.4f} against {c.ends_error:.4f} at its ends: an error "
                    f"barrier of {c.error_barrier:+.4f}")
            if not rate:
                out.append(f"{base} nats of loss (Frankle et al.'s 2-point rule is for error "
                           "rates; not judged).")
            elif c.stable:
                out.append(f"{base}: stable (under {self.stable_below:.0%}, Frankle et al.).")
            else:
                out.append(f"{base}: not stable (at least {self.stable_below:.0%}).")
        if self.curves:
            out.append("One pair of copies per start point (their seeds are recorded): the "
                       "barriers have no interval; other --seed values show their spread.")
        return tuple(out)

    def curve(self, start: str) -> StabilityCurve:
        for c in self.curves:
            if c.start == start:
                return c
        raise KeyError(start)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StabilityResult:
        return cls(str(d["run"]), int(d["round"]), str(d["arm"]), float(d["sparsity"]),
                   str(d["metric"]), str(d["error"]), int(d["points"]), int(d["seed"]),
                   int(d["total_steps"]),
                   tuple(StabilityCurve.from_dict(c) for c in d["curves"]),
                   float(d.get("stable_below", STABLE_BELOW)))


def read_stability(run: Any) -> dict[int, StabilityResult]:
    """The stability results stored in ``run`` by round (empty when there are none)."""
    import json

    path = run.paths.stability
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
        return {int(k): StabilityResult.from_dict(v) for k, v in data["rounds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunFormatError(f"{path}: unreadable stability record ({exc})") from None


def save_stability(run: Any, result: StabilityResult) -> None:
    """Add (or replace) ``result``'s round in the run's stability record, atomically."""
    from ticketlens.core.run import RunWriter

    rounds = {r: v.to_dict() for r, v in read_stability(run).items()}
    rounds[result.round] = result.to_dict()
    RunWriter(run.path).stability({"format": FORMAT, "version": FORMAT_VERSION,
                                   "rounds": {str(k): rounds[k] for k in sorted(rounds)}})


# ----------------------------------------------------------------------------- the analysis
def replay_dense(trainer: Any, step: int, reporter: Any = None) -> dict[str, Any]:
    """The dense round 0's weights at ``step``: trained from the initial weights with round
    0's seed (data order, dropout) and schedule, as ``find`` trained them; equal to the run's
    stored rewind point when ``step`` is its rewind step (a phase is a pure function of its
    start, mask and seed)."""
    from ticketlens.pruning import objectives, ops
    from ticketlens.pruning.arms import derive_seed
    from ticketlens.pruning.masking import MaskEnforcer
    from ticketlens.pruning.progress import Reporter
    from ticketlens.pruning.train import train_phase

    s = trainer.s
    reporter = reporter or Reporter()
    round0 = derive_seed(s.cfg.seed, "round", 0)
    trainer.base.load_state_dict(trainer.init_state)
    ones = ops.ones_like({n: trainer.init_state[n] for n in s.anatomy.names})
    with reporter.phase(f"stability: dense to step {step}", step) as on_step:
        train_phase(trainer.acc, trainer.model, MaskEnforcer(trainer.base, ones), s.train,
                    tcfg=s.cfg.train, lr=s.lr, start=0, end=step, total=s.total_steps,
                    seed=round0, pad_id=s.tokenizer.pad_id,
                    batch_fn=objectives.batch_fn(s, s.train, round0), on_step=on_step)
    return trainer.state()


def _starts(run: Run, rewinds: Sequence[str] | None) -> list[str]:
    """The start points asked (default: init, the run's rewind point when it has one that
    differs from init, reinit), checked against the run."""
    rw = run.manifest.rewind
    mode = rw.mode if rw is not None else "init"
    starts = list(rewinds) if rewinds else [
        "init", *(["rewind"] if mode == "step" else []), "reinit"]
    if len(set(starts)) != len(starts):
        raise ConfigError(f"--rewind: a start point is given twice ({', '.join(starts)})")
    if "rewind" in starts and mode == "lr":
        raise ConfigError(f"{run.path}: found with learning-rate rewinding, so it has no rewind "
                          "point; use init, reinit or a step count")
    return starts


def _step_counts(starts: Sequence[str], setup: Any) -> dict[str, int]:
    """The step of each start given as a step count (e.g. 20it, 0.5ep), checked to fall
    inside training; a run found without training (``--steps 0``) is refused: its two
    copies would be trained for no step, the same model, and show a barrier of 0 that says
    nothing about stability."""
    from ticketlens.core.config import Steps

    if setup.total_steps == 0:
        raise ConfigError("the run was found with --steps 0 (no training): two copies "
                          "trained for 0 steps are the same model, so there is no barrier "
                          "to measure")
    steps_of = {}
    for s in starts:
        if s not in NAMED_STARTS:
            steps_of[s] = Steps.parse(s).resolve(setup.steps_per_epoch)
            if steps_of[s] >= setup.total_steps:
                raise ConfigError(f"--rewind {s}: at or past the end of training "
                                  f"({setup.total_steps} steps)")
    return steps_of


def _start_state(start: str, run: Run, trainer: Any, setup: Any, seed: int,
                 steps_of: dict[str, int], reporter: Any) -> tuple[dict[str, Any], int]:
    """The weights both copies start from at ``start``, and its step."""
    from ticketlens.pruning.arms import cpu_state, derive_seed

    rw = run.manifest.rewind
    if start == "init":
        return trainer.init_state, 0
    if start == "rewind":
        return run.weights("rewind"), int(rw.step if rw is not None else 0)
    if start == "reinit":
        from ticketlens.models.load import reinit_like

        return cpu_state(reinit_like(setup.loaded, derive_seed(seed, "stability",
                                                                "reinit"))), 0
    step = steps_of[start]  # replay the dense round 0 from init to that step
    return replay_dense(trainer, step, reporter), step


def stability(run: Run | str | os.PathLike[str], *, round: int | None = None, rewinds: Sequence[str] | None = None,
              points: int = 11, seed: int | None = None, reporter: Any = None,
              save: bool = True) -> StabilityResult:
    """Instability analysis of ``run``'s round ``round`` (default: the ticket; 0: dense) from
    each start in ``rewinds`` (default: ``init``, the run's ``rewind`` point when it differs
    from init, and ``reinit``). See the module doc."""
    from ticketlens.core.config import FindConfig
    from ticketlens.core.run import Run, open_run
    from ticketlens.pruning import objectives, ops
    from ticketlens.pruning.arms import ArmSpec, ArmTrainer, derive_seed
    from ticketlens.pruning.progress import Reporter
    from ticketlens.pruning.setup import prepare
    from ticketlens.pruning.train import make_accelerator, plan_threads, torch_threads

    run = run if isinstance(run, Run) else open_run(run)
    grid = alphas(points)  # checks --points first
    if not run.manifest.config or not run.has_weights:
        raise AnalysisError(f"{run.path}: stability needs a run made by `ticketlens find` "
                             "(its config and rewind weights); imported masks have neither")
    r = run.round_index(round)
    cfg = FindConfig.from_dict(dict(run.manifest.config))
    seed = int(cfg.seed if seed is None else seed)
    reporter = reporter or Reporter()
    starts = _starts(run, rewinds)
    with torch_threads(plan_threads()):
        setup = prepare(cfg)
        steps_of = _step_counts(starts, setup)
        if setup.anatomy.shapes != run.anatomy.shapes:
            raise RunFormatError(f"{run.path}: the model rebuilt from the config does not fit "
                                 "the run's masks")
        acc = make_accelerator(cfg.train)
        trainer = ArmTrainer(setup, acc, reporter)
        names = setup.anatomy.names
        ones = ops.ones_like({n: trainer.init_state[n] for n in names})
        masks = ones if r == 0 else ops.to_torch(run.mask(r))
        loss_fn = None  # pruned rounds of a --distill run trained against the dense teacher
        if cfg.train.distill and r > 0:
            from ticketlens.pruning.distill import teacher_loss

            loss_fn = teacher_loss(setup, run.weights("dense"), acc)
        metric = setup.metric
        error_name = "loss" if metric == "perplexity" else metric
        curves = []
        for start in starts:
            t0 = time.perf_counter()
            state, step = _start_state(start, run, trainer, setup, seed, steps_of, reporter)
            seeds = (derive_seed(seed, "stability", start, "A"),
                     derive_seed(seed, "stability", start, "B"))
            ends = []
            for copy, s in zip("AB", seeds, strict=True):
                trainer.train(ArmSpec(f"stability from {start}: copy {copy}", state, masks,
                                      step, s, loss_fn=loss_fn))
                ends.append(trainer.state())
            t1 = time.perf_counter()

            def evaluate(st: dict[str, Any]) -> tuple[float, float]:
                trainer.base.load_state_dict(st)
                got = objectives.evaluate_metrics(acc, trainer.model, setup,
                                                  cfg.train.eval_batch_size)
                return got[metric], got["loss"]

            m_vals, l_vals = path_values(ends[0], ends[1], evaluate, points)
            errs = [error_of(error_name, v) for v in (l_vals if error_name == "loss"
                                                      else m_vals)]
            curve = StabilityCurve(start, step, seeds, tuple(map(float, grid)), tuple(m_vals),
                                   tuple(l_vals), tuple(errs), error_barrier(errs),
                                   error_barrier(l_vals), float(np.round(t1 - t0, 3)),
                                   float(np.round(time.perf_counter() - t1, 3)))
            reporter.line(f"from {start:<8} (step {step:>5}): error barrier "
                          f"{curve.error_barrier:+.4f}, loss barrier {curve.loss_barrier:+.4f}"
                          f" ({'stable' if curve.stable else 'unstable'})")
            curves.append(curve)
    rec = next(x for x in run.rounds if x.index == r)
    result = StabilityResult(
        str(run.path), r, "dense" if r == 0 else "ticket", float(rec.sparsity), metric,
        "loss" if error_name == "loss" else f"1 - {metric}", points, seed, setup.total_steps,
        tuple(curves))
    if save:
        save_stability(run, result)
    return result
