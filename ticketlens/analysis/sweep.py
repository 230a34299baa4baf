"""Statistics over seeds: ``sweep_stats(runs) -> SweepStats``.

Runs are grouped by task, model and settings (everything in the run's configuration but the
seed). Per group:

- mean and a ``confidence`` interval (Student's t, ``scipy.stats.t``) of the ticket's
  sparsity, the dense metric, the ticket's and each control's;
- the sweep-level verdict, with the single-run verdict's rules lifted to seeds:
  *inconclusive* with fewer than 2 seeds, when a seed's dense model did not beat a constant
  prediction clearly (``pruning.verdict.learned_margin``), when the ticket or a control beats
  dense on average by more than the tolerance (dense under-trained), when a required control
  is missing, or when dense, the ticket and the required controls all sit at the metric's
  maximum on every seed (too easy to tell them apart). Otherwise the two claims are decided
  as statistics (``analysis.equivalence``): the ticket matches dense by TOST at the
  tolerance (the 1 - 2 ``alpha`` interval of ticket - dense within ±tolerance), and beats
  each required control by more than the margin (one-sided paired t-test at ``alpha``).
  *winning* when both hold; *not winning* only on evidence (the ticket worse than dense by
  more than the tolerance, or a required control shown not beaten); else *inconclusive*
  with the seeds that would decide it at the observed spread (``seeds_needed``) and the
  deciding reason in one line (``headline``);
- seed agreement: Fleiss' kappa of the group's tickets against its value under
  independence (``analysis.overlap``);
- per IMP round (round 0 = dense): mean and interval of the round's sparsity and metric over
  the seeds that reached it (the curve a report draws with a band).

Across tasks (same model and settings): the mean Jaccard of ticket pairs of different tasks
**with the seed held fixed** against pairs of different tasks **and** seeds, each beside its
chance level -- cross-task overlap measured across seeds conflates task and seed -- and the
seed x task matrix of those Jaccards, runs ordered by task then seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ticketlens.analysis.equivalence import decide, equivalence, superiority
from ticketlens.analysis.inputs import RunsOrMasks, as_runs, check_by
from ticketlens.analysis.overlap import BY, overlap
from ticketlens.core.config import flatten
from ticketlens.core.errors import AnalysisError
from ticketlens.core.record import HIGHER_IS_BETTER
from ticketlens.core.result import Result
from ticketlens.pruning.verdict import CONTROLS, at_ceiling, learned_margin


@dataclass(frozen=True)
class Estimate(Result):
    mean: float
    low: float  # the confidence interval (NaN with one value)
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN with one value): what ``mean ± half`` prints."""
        return (self.high - self.low) / 2

    def _data(self) -> dict[str, Any]:
        return {**asdict(self), "half_width": self.half_width}


def estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class PairedTest(Result):
    control: str
    test: str  # what was computed, in words
    statistic: float
    p_value: float
    n: int
    mean_difference: float  # ticket minus control (relative for perplexity)
    margin: float
    beats: bool


@dataclass(frozen=True)
class RoundStats(Result):
    index: int  # the IMP round (0 = dense)
    sparsity: Estimate
    metric: Estimate  # over the seeds that reached this round (``metric.n``)

    def _data(self) -> dict[str, Any]:
        return {"round": self.index, "sparsity": self.sparsity.to_dict(),
                "metric": self.metric.to_dict()}


@dataclass(frozen=True)
class GroupStats(Result):
    task: str
    model: str
    settings: str  # the settings that tell this group from the others ("" if none)
    metric: str
    seeds: tuple[int | None, ...]
    sparsity: Estimate
    dense: Estimate
    ticket: Estimate
    controls: Mapping[str, Estimate]
    tests: tuple[PairedTest, ...]
    verdict: str  # winning | not winning | inconclusive
    reason: str
    seed_kappa: float
    seed_kappa_chance: float
    rounds: tuple[RoundStats, ...] = ()
    headline: str = ""  # the verdict's reason in one line (what decided it)
    seeds_needed: int | None = None  # inconclusive: seeds for 80% power at the spread seen

    def _data(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "settings": self.settings,
                "metric": self.metric, "seeds": list(self.seeds),
                "sparsity": self.sparsity.to_dict(), "dense": self.dense.to_dict(),
                "ticket": self.ticket.to_dict(),
                "controls": {k: v.to_dict() for k, v in self.controls.items()},
                "tests": [t.to_dict() for t in self.tests], "verdict": self.verdict,
                "reason": self.reason, "seed_kappa": self.seed_kappa,
                "seed_kappa_chance": self.seed_kappa_chance,
                "rounds": [r.to_dict() for r in self.rounds], "headline": self.headline,
                "seeds_needed": self.seeds_needed}


@dataclass(frozen=True)
class CrossTask(Result):
    model: str
    settings: str
    same_seed_jaccard: float
    same_seed_chance: float
    same_seed_pairs: int
    cross_seed_jaccard: float
    cross_seed_chance: float
    cross_seed_pairs: int


@dataclass(frozen=True)
class OverlapMatrix(Result):
    """Weight Jaccard of the tickets of every pair of runs of one model and settings, rows and
    columns ordered by task then seed (diagonal 1), and each pair's chance level."""

    model: str
    settings: str
    names: tuple[str, ...]  # TASK/sSEED
    tasks: tuple[str, ...]  # of each row
    seeds: tuple[int | None, ...]
    jaccard: tuple[tuple[float, ...], ...]
    chance: tuple[tuple[float, ...], ...]

    def _data(self) -> dict[str, Any]:
        return {**asdict(self), "names": list(self.names), "tasks": list(self.tasks),
                "seeds": list(self.seeds), "jaccard": [list(r) for r in self.jaccard],
                "chance": [list(r) for r in self.chance]}


@dataclass(frozen=True)
class SweepStats(Result):
    confidence: float
    alpha: float
    groups: tuple[GroupStats, ...]
    cross_task: tuple[CrossTask, ...]
    matrices: tuple[OverlapMatrix, ...] = ()
    by: str = "weight"  # the level of the seed agreement and the cross-task overlap

    def _data(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "alpha": self.alpha,
                "groups": list(self.groups), "cross_task": list(self.cross_task),
                "matrices": list(self.matrices)}


def _settings_key(run: Any) -> str:
    cfg = json.loads(json.dumps(dict(run.manifest.config)))  # plain, deep copy
    cfg.pop("seed", None)
    cfg.get("data", {}).pop("task", None)
    cfg.get("model", {}).pop("model", None)
    return json.dumps(cfg, sort_keys=True)


def _settings_labels(keys: Sequence[str]) -> dict[str, str]:
    """Each settings key as the fields that differ between the keys ("" when one key)."""
    flat = {k: flatten(json.loads(k)) for k in keys}
    varying = sorted({f for d in flat.values() for f in d
                      if len({json.dumps(x.get(f)) for x in flat.values()}) > 1})
    return {k: ",".join(f"{f.split('.')[-1]}={flat[k].get(f)}" for f in varying) for k in keys}


def _improvement(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """How much ``a`` is better than ``b`` (relative to ``b`` for lower-is-better)."""
    return a - b if HIGHER_IS_BETTER.get(metric, True) else (b - a) / b


def _paired(control: str, ticket: np.ndarray, other: np.ndarray, metric: str,
            margin: float, alpha: float) -> PairedTest:
    from scipy import stats

    d = _improvement(ticket, other, metric)
    shifted = d - margin
    if len(d) < 2:
        return PairedTest(control, "none (needs 2 seeds)", math.nan, math.nan, len(d),
                          float(d.mean()) if len(d) else math.nan, margin, False)
    if np.allclose(shifted, shifted[0]):  # no spread: the t statistic is undefined
        p = 0.0 if shifted[0] > 0 else 1.0
        return PairedTest(control, "paired differences all equal (no test)",
                          math.inf if shifted[0] > 0 else -math.inf, p, len(d),
                          float(d.mean()), margin, p < alpha)
    res = stats.ttest_1samp(shifted, 0.0, alternative="greater")
    p = float(res.pvalue)
    return PairedTest(control, "one-sided paired t-test of (ticket - control - margin) > 0",
                      float(res.statistic), p, len(d), float(d.mean()), margin, p < alpha)


def sweep_stats(runs: RunsOrMasks, *, by: str = "weight", confidence: float = 0.95,
                alpha: float = 0.05, tolerance: float | None = None,
                control_margin: float | None = None,
                required: tuple[str, ...] = CONTROLS) -> SweepStats:
    """Statistics over the seeds of ``runs`` (complete runs of ``find``, in any form
    :mod:`ticketlens.analysis.inputs` reads, e.g. a sweep's folder; see the module doc).
    ``by`` is the level at which the seed agreement and the cross-task overlap compare the
    tickets (``overlap``'s levels). ``tolerance`` and ``control_margin`` default to each
    run's own settings."""
    check_by(by, BY, what="sweep_stats")
    runs = [r for r in as_runs(runs, what="sweep_stats", needs="their metrics and controls")
            if r.complete and r.rounds and r.rounds[0].metrics]
    if not runs:
        raise AnalysisError("no complete runs with metrics to summarise")
    keys = {id(r): _settings_key(r) for r in runs}
    labels = _settings_labels(sorted(set(keys.values())))
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for r in runs:
        groups.setdefault((r.task, r.model_name, keys[id(r)]), []).append(r)
    out = []
    for (task, model, key), members in sorted(groups.items()):
        members.sort(key=lambda r: (r.seed is None, r.seed))
        out.append(_group(task, model, labels[key], members, confidence, alpha, tolerance,
                          control_margin, required, by))
    cross, matrices = _across_tasks(groups, labels, by)
    return SweepStats(confidence, alpha, tuple(out), cross, matrices, by)


def _group(task: str, model: str, label: str, runs: list[Any], confidence: float,
           alpha: float, tolerance: float | None, control_margin: float | None,
           required: tuple[str, ...], by: str = "weight") -> GroupStats:
    metric = runs[0].metric
    prune = runs[0].manifest.config.get("prune", {})
    tol = float(prune.get("tolerance", 0.01)) if tolerance is None else tolerance
    margin = control_margin if control_margin is not None else float(
        prune.get("control_margin", -1.0))
    margin = tol if margin < 0 else margin
    dense = np.array([r.rounds[0].metrics[metric] for r in runs])
    ticket = np.array([r.ticket.metrics[metric] for r in runs])
    names = sorted({c for r in runs for c in r.controls})
    controls = {c: [r.control_metric(c) for r in runs] for c in names}
    tests = tuple(_paired(c, ticket[[v is not None for v in vals]],
                          np.array([v for v in vals if v is not None]), metric, margin, alpha)
                  for c, vals in controls.items())
    diff = estimate(_improvement(ticket, dense, metric), confidence)
    chance = [r.manifest.task.chance for r in runs]
    need = learned_margin(tol)
    parts, status = [], None
    if len(runs) < 2:
        status = "inconclusive"
        parts.append("one seed: a sweep verdict needs at least 2 (--seeds)")
    not_learned = [r.seed for r, d, c in zip(runs, dense, chance, strict=True)
                   if c is not None and d < c + need - 1e-12]
    if not_learned:
        status = "inconclusive"
        parts.append(f"the dense model did not learn the task clearly on seed(s) "
                     f"{', '.join(map(str, not_learned))} (by {need:g} over a constant "
                     "prediction): train longer (--steps) or try another --lr")
    beaten = [("the ticket", diff.mean)] if diff.mean > tol else []
    beaten += [(f"the {c} control", float(np.mean(_improvement(
        np.array([v for v in vals if v is not None]), dense[[v is not None for v in vals]],
        metric)))) for c, vals in controls.items() if any(v is not None for v in vals)]
    beaten = [(who, d) for who, d in beaten if d > tol]
    if beaten:
        status = "inconclusive"
        parts.append("the dense model is under-trained: " + ", ".join(
            f"{who} beats it by {d:+.4f} on average" for who, d in beaten)
            + f" (tolerance {tol:g}): train longer (--steps) or try another --lr")
    missing = [c for c in required if c not in controls]
    if missing:
        status = "inconclusive"
        parts.append(f"required controls not run: {', '.join(missing)}")
    req_values = [v for c in required for v in controls.get(c, [])]
    if at_ceiling(metric, [*dense, *ticket, *req_values]) and not missing:
        status = "inconclusive"
        parts.append(f"dense, the ticket and the required controls all reach the maximum "
                     f"{metric} on every seed: the task is too easy to tell a ticket from a "
                     "random subnetwork")
    blocked = tuple(parts) if status else ()
    decision = decide(
        equivalence(_improvement(ticket, dense, metric), tol, alpha),
        [superiority(c, _improvement(ticket[[v is not None for v in vals]], np.array(
            [v for v in vals if v is not None]), metric), margin, alpha)
         for c, vals in controls.items()], required, blocked)
    parts += decision.parts
    status = decision.status
    o = overlap(runs, by=by) if len(runs) >= 2 else None
    return GroupStats(
        task, model, label, metric, tuple(r.seed for r in runs),
        estimate([r.ticket.sparsity for r in runs], confidence), estimate(dense, confidence),
        estimate(ticket, confidence),
        {c: estimate([v for v in vals if v is not None], confidence)
         for c, vals in controls.items()},
        tests, status, "; ".join(parts),
        o.fleiss_kappa if o else math.nan, o.fleiss_kappa_chance if o else math.nan,
        _rounds(runs, metric, confidence), decision.headline, decision.seeds_needed)


def _rounds(runs: list[Any], metric: str, confidence: float) -> tuple[RoundStats, ...]:
    by_index: dict[int, list[Any]] = {}
    for r in runs:
        for rd in r.rounds:
            if metric in rd.metrics:
                by_index.setdefault(rd.index, []).append(rd)
    return tuple(RoundStats(i, estimate([rd.sparsity for rd in rds], confidence),
                            estimate([rd.metrics[metric] for rd in rds], confidence))
                 for i, rds in sorted(by_index.items()))


def _across_tasks(groups: Mapping[tuple[str, str, str], list[Any]], labels: Mapping[str, str],
                  by: str = "weight") -> tuple[tuple[CrossTask, ...], tuple[OverlapMatrix, ...]]:
    by_model: dict[tuple[str, str], list[Any]] = {}
    for (_, model, key), runs in groups.items():
        by_model.setdefault((model, key), []).extend(runs)
    out, matrices = [], []
    for (model, key), runs in sorted(by_model.items()):
        if len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda r: (r.task, r.seed is None, r.seed))
        o = overlap(runs, by=by)
        matrices.append(OverlapMatrix(
            model, labels[key], o.names, tuple(r.task for r in runs),
            tuple(r.seed for r in runs),
            tuple(map(tuple, o.matrix("jaccard").tolist())),
            tuple(map(tuple, o.matrix("jaccard_chance").tolist()))))
        if len({r.task for r in runs}) < 2:
            continue
        index = {name: r for name, r in zip(o.names, runs, strict=True)}
        same, cross = [], []
        for p in o.pairs:
            a, b = index[p.a], index[p.b]
            if a.task == b.task:
                continue
            (same if a.seed == b.seed else cross).append(p)
        if not same and not cross:
            continue

        def mean(ps: list, f: str) -> float:
            return float(np.mean([getattr(p, f) for p in ps])) if ps else math.nan

        out.append(CrossTask(model, labels[key], mean(same, "jaccard"),
                             mean(same, "jaccard_chance"), len(same), mean(cross, "jaccard"),
                             mean(cross, "jaccard_chance"), len(cross)))
    return tuple(out), tuple(matrices)
