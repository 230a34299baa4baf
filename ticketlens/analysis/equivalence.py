"""The sweep verdict over seeds as an equivalence question, with the seeds a decision needs.

A winning ticket makes two claims over seeds, decided here on the per-seed paired differences:

1. **It matches dense** -- an *equivalence* question. Two one-sided tests (TOST, Schuirmann
   1987) at the tolerance ``tol``: the mean of ``d = ticket - dense`` is above ``-tol``
   (one-sided t-test at ``alpha``) *and* below ``+tol`` (same); equivalently the
   ``1 - 2 alpha`` (90% for ``alpha = 0.05``) Student-t interval of the mean lies within
   ``±tol``. *Worse* only on evidence: the one-sided test that the mean is below ``-tol``
   rejects at ``alpha`` (the whole ``1 - 2 alpha`` interval lies below ``-tol``).
2. **It beats each required control by more than the margin** ``m`` -- a one-sided paired
   t-test of ``d - m > 0`` (``d = ticket - control``) at ``alpha``. *Not beaten* only on
   evidence: either the one-sided test that the mean of ``d`` is below ``m`` rejects at
   ``alpha``, or the mean is at most ``m`` with seeds enough to see an advantage of that
   size -- a true advantage of the margin over the margin (``d = 2m``) would have been
   detected with 80% power at the observed spread -- and none was seen.

Anything else is *undecided*, and the group verdict is *inconclusive* with the number of seeds
that would decide it with 80% power at the observed spread ``s`` (the sample standard
deviation of the paired differences) and the observed mean difference:

- equivalence (TOST), true difference ``delta``, ``|delta| < tol``: the smallest ``n`` whose
  exact TOST power reaches 80%. The large-sample form is
  ``n ≈ (z_{1-alpha} + z_{1-beta/2})² s² / tol²`` for ``delta = 0`` and
  ``n ≈ (z_{1-alpha} + z_{1-beta})² s² / (tol - |delta|)²`` otherwise (Chow, Shao & Wang,
  *Sample Size Calculations in Clinical Research*, 2008, §3.2); we iterate on the exact
  power instead, which for small ``n`` matters (the t quantile and the chance that the
  interval is wider than the equivalence band):
  ``power(n) = E_V[max(0, Φ((tol - c S/√n - delta)√n/σ) - Φ((-tol + c S/√n - delta)√n/σ))]``
  with ``S = σ √(V/(n-1))``, ``V ~ χ²(n-1)``, ``c = t_{1-alpha, n-1}`` (the mean and the
  sample sd are independent for normal data), integrated numerically over ``V``. With
  ``|delta| >= tol`` no number of seeds reaches 80% (reported as ``None``).
- beating a control, true advantage ``delta > m``: the smallest ``n`` with
  ``P(T > t_{1-alpha, n-1}) >= 0.8``, ``T`` noncentral t with ``n - 1`` degrees of freedom
  and noncentrality ``(delta - m)√n / s``; large-sample ``n ≈ (z_{1-alpha} + z_{1-beta})² s²
  / (delta - m)²``. When ``delta <= m``, the seeds that would show the control *not* beaten
  (power 80% against ``d = 2m``, the evidence rule above).

``tests/test_equivalence.py`` checks these powers and seed counts against Monte-Carlo
simulations of the tests themselves, and the tests against ``scipy.stats.ttest_1samp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ticketlens.core.result import Result

POWER = 0.8  # the power a seed count is planned for
MAX_SEEDS = 100_000  # beyond this, "more seeds" is not an answer (reported as None)


# --------------------------------------------------------------------------- power
def tost_power(n: int, delta: float, sd: float, tol: float, alpha: float = 0.05) -> float:
    """Exact power of TOST at ``±tol`` with ``n`` paired differences ~ N(delta, sd²)."""
    from scipy import integrate, stats

    if n < 2:
        return 0.0
    if sd <= 0:
        return 1.0 if abs(delta) < tol else 0.0
    df = n - 1
    c = float(stats.t.ppf(1 - alpha, df))
    se = sd / math.sqrt(n)

    def given_v(v: float) -> float:
        half = tol - c * se * math.sqrt(v / df)  # the mean must lie in (-half, +half)
        if half <= 0:
            return 0.0
        return float(stats.norm.cdf((half - delta) / se) - stats.norm.cdf((-half - delta) / se))

    # the integrand is 0 beyond v_max (the interval wider than the band)
    v_max = df * (tol / (c * se)) ** 2
    lo, hi = stats.chi2.ppf([1e-12, 1 - 1e-12], df)
    hi = min(float(hi), v_max)
    if hi <= lo:
        return 0.0
    val, _ = integrate.quad(lambda v: given_v(v) * stats.chi2.pdf(v, df), float(lo), hi,
                            limit=200, points=[float(df)] if lo < df < hi else None)
    return float(min(1.0, max(0.0, val)))


def superiority_power(n: int, delta: float, sd: float, margin: float,
                      alpha: float = 0.05) -> float:
    """Exact power of the one-sided t-test of ``mean - margin > 0`` with ``n`` paired
    differences ~ N(delta, sd²) (noncentral t)."""
    from scipy import stats

    if n < 2:
        return 0.0
    if sd <= 0:
        return 1.0 if delta > margin else 0.0
    df = n - 1
    c = float(stats.t.ppf(1 - alpha, df))
    return float(stats.nct.sf(c, df, (delta - margin) * math.sqrt(n) / sd))


def _smallest_n(power_at: Any, target: float = POWER) -> int | None:
    """The smallest n >= 2 with ``power_at(n) >= target`` (power rises with n), else None."""
    if power_at(2) >= target:
        return 2
    lo, hi = 2, 4
    while power_at(hi) < target:
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS:
            return None
    while hi - lo > 1:  # power(lo) < target <= power(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_at(mid) >= target else (mid, hi)
    return hi


def seeds_for_equivalence(delta: float, sd: float, tol: float, alpha: float = 0.05,
                          power: float = POWER) -> int | None:
    """Seeds for TOST at ``±tol`` to reach ``power`` when the true difference is ``delta``
    and the spread ``sd`` (None when ``|delta| >= tol``: no number of seeds)."""
    if abs(delta) >= tol:
        return None
    return _smallest_n(lambda n: tost_power(n, delta, sd, tol, alpha), power)


def seeds_for_superiority(delta: float, sd: float, margin: float, alpha: float = 0.05,
                          power: float = POWER) -> int | None:
    """Seeds for the one-sided test of ``mean > margin`` to reach ``power`` when the true
    mean is ``delta`` (None when ``delta <= margin``)."""
    if delta <= margin:
        return None
    return _smallest_n(lambda n: superiority_power(n, delta, sd, margin, alpha), power)


# --------------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class Equivalence(Result):
    """TOST of the mean paired difference (ticket - dense) against ``±tol``."""

    n: int
    mean: float
    sd: float  # sample standard deviation of the differences (NaN with one seed)
    tolerance: float
    alpha: float
    low: float  # the 1 - 2 alpha interval of the mean (NaN with one seed)
    high: float
    p_lower: float  # H0: mean <= -tol
    p_upper: float  # H0: mean >= +tol
    p_below: float  # H0: mean >= -tol (small: evidence that the ticket is worse)
    decision: str  # equivalent | worse | undecided
    seeds_needed: int | None  # for 80% power at the observed mean and spread (undecided)

    @property
    def p(self) -> float:
        """TOST's p value: the larger of the two one-sided ones."""
        return max(self.p_lower, self.p_upper)

    @property
    def level(self) -> float:
        """The interval's confidence level, ``1 - 2 alpha``."""
        return 1 - 2 * self.alpha

    def _data(self) -> dict[str, Any]:
        return {**asdict(self), "p": self.p, "level": self.level}


@dataclass(frozen=True)
class Superiority(Result):
    """One-sided test that the ticket beats a control by more than ``margin`` on average."""

    control: str
    n: int
    mean: float  # ticket - control
    sd: float
    margin: float
    alpha: float
    statistic: float  # t of (mean - margin); ±inf without spread
    p: float  # H0: mean <= margin
    p_not: float  # H0: mean >= margin (small: evidence that it is not beaten)
    power_at_twice: float  # power these seeds had against mean = 2 margin
    decision: str  # beats | not beaten | undecided
    seeds_needed: int | None


def _clean(values: Sequence[float]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)


def _t_parts(d: np.ndarray) -> tuple[int, float, float, float]:
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    se = sd / math.sqrt(n) if n > 1 else math.nan
    return n, mean, sd, se


def _one_sided(mean: float, se: float, n: int, shift: float, greater: bool) -> float:
    """p of the one-sided t-test of mean > shift (``greater``) or mean < shift; exact 0/1
    without spread (a difference every seed shows)."""
    from scipy import stats

    if se == 0:
        return 0.0 if (mean > shift if greater else mean < shift) else 1.0
    t = (mean - shift) / se
    return float(stats.t.sf(t, n - 1) if greater else stats.t.cdf(t, n - 1))


def equivalence(differences: Sequence[float], tol: float, alpha: float = 0.05) -> Equivalence:
    """TOST of the paired differences ``ticket - dense`` at ``±tol`` (see the module doc)."""
    from scipy import stats

    d = _clean(differences)
    n, mean, sd, se = _t_parts(d)
    if n < 2:
        return Equivalence(n, mean, sd, tol, alpha, math.nan, math.nan, math.nan, math.nan,
                           math.nan, "undecided", None)
    half = float(stats.t.ppf(1 - alpha, n - 1)) * se
    p_lower = _one_sided(mean, se, n, -tol, greater=True)
    p_upper = _one_sided(mean, se, n, tol, greater=False)
    p_below = _one_sided(mean, se, n, -tol, greater=False)
    if max(p_lower, p_upper) < alpha:
        decision, need = "equivalent", None
    elif p_below < alpha:
        decision, need = "worse", None
    else:
        decision, need = "undecided", seeds_for_equivalence(mean, sd, tol, alpha)
    return Equivalence(n, mean, sd, tol, alpha, mean - half, mean + half, p_lower, p_upper,
                       p_below, decision, need)


def superiority(control: str, differences: Sequence[float], margin: float,
                alpha: float = 0.05) -> Superiority:
    """Does the ticket beat ``control`` by more than ``margin`` over seeds (module doc)?"""
    d = _clean(differences)
    n, mean, sd, se = _t_parts(d)
    if n < 2:
        return Superiority(control, n, mean, sd, margin, alpha, math.nan, math.nan, math.nan,
                           math.nan, "undecided", None)
    if se == 0:
        stat = math.inf if mean > margin else (-math.inf if mean < margin else 0.0)
    else:
        stat = (mean - margin) / se
    p = _one_sided(mean, se, n, margin, greater=True)
    p_not = _one_sided(mean, se, n, margin, greater=False)
    power2 = superiority_power(n, 2 * margin, sd, margin, alpha) if margin > 0 else math.nan
    if p < alpha:
        decision, need = "beats", None
    elif p_not < alpha or (mean <= margin and margin > 0 and power2 >= POWER):
        decision, need = "not beaten", None
    elif mean > margin:
        decision, need = "undecided", seeds_for_superiority(mean, sd, margin, alpha)
    else:  # the seeds that would show it not beaten (80% power against 2 margin)
        decision = "undecided"
        need = seeds_for_superiority(2 * margin, sd, margin, alpha) if margin > 0 else None
    return Superiority(control, n, mean, sd, margin, alpha, float(stat), p, p_not,
                       float(power2), decision, need)


# --------------------------------------------------------------------------- the verdict
@dataclass(frozen=True)
class SweepDecision(Result):
    """The sweep verdict from the two claims (``status``), the clauses of its reason, the one
    line that says why (``headline``) and, when inconclusive, the seeds that would decide it
    at the observed spread with 80% power (None: none would, or it is decided)."""

    status: str  # winning | not winning | inconclusive
    parts: tuple[str, ...]
    headline: str
    seeds_needed: int | None

    def _data(self) -> dict[str, Any]:
        return {**asdict(self), "parts": list(self.parts)}


def _label(control: str) -> str:
    from ticketlens.core.record import control_label

    return control_label(control)


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def _equivalence_clause(e: Equivalence) -> str:
    head = (f"ticket - dense {e.mean:+.4f} ({e.level:.0%} CI {e.low:+.4f} to {e.high:+.4f}, "
            f"sd {e.sd:.4f} over {e.n} seeds")
    if e.decision == "equivalent":
        return f"{head}): matches dense, the interval within ±{e.tolerance:g} (TOST p {_p(e.p)})"
    if e.decision == "worse":
        return (f"{head}): worse than dense, the interval below -{e.tolerance:g} "
                f"(p {_p(e.p_below)})")
    return f"{head}): not yet shown within ±{e.tolerance:g} (TOST p {_p(e.p)})"


def _control_clause(s: Superiority) -> str:
    name = f"the {_label(s.control)} control"
    if s.decision == "beats":
        return f"beats {name} by {s.mean:+.4f} on average, more than {s.margin:g} (p {_p(s.p)})"
    if s.decision == "not beaten":
        if s.p_not < s.alpha:
            why = f"below the margin, p {_p(s.p_not)}"
        else:
            why = (f"{s.n} seeds would have seen an advantage of {2 * s.margin:g} with "
                   f"{s.power_at_twice:.0%} power")
        return (f"does not beat {name} by more than {s.margin:g}: {s.mean:+.4f} on average "
                f"({why})")
    return (f"{name}: {s.mean:+.4f} on average, not yet shown above {s.margin:g} "
            f"(p {_p(s.p)})")


def decide(eq: Equivalence, controls: Sequence[Superiority], required: Sequence[str],
           blocked: Sequence[str] = ()) -> SweepDecision:
    """The sweep verdict (module doc). ``blocked``: the reasons, already stated, why the
    seeds cannot be judged at all (dense did not learn, is under-trained, a required control
    missing, one seed, the task at the metric's ceiling): then *inconclusive* whatever the
    tests say."""
    by = {s.control: s for s in controls}
    parts = [_equivalence_clause(eq) if eq.n >= 2 else "ticket - dense: needs 2 seeds"]
    parts += [_control_clause(s) + ("" if s.control in required else ", informative")
              for s in controls if s.n >= 2]
    req = [by[c] for c in required if c in by]
    if blocked:
        return SweepDecision("inconclusive", tuple(parts), "; ".join(blocked), None)
    against = ([_equivalence_clause(eq)] if eq.decision == "worse" else []) + [
        _control_clause(s) for s in req if s.decision == "not beaten"]
    if against:
        return SweepDecision("not winning", tuple(parts), "; ".join(against), None)
    if eq.decision == "equivalent" and all(s.decision == "beats" for s in req):
        return SweepDecision("winning", tuple(parts), "; ".join(
            [_equivalence_clause(eq)] + [_control_clause(s) for s in req]), None)
    open_ = ([eq] if eq.decision == "undecided" else []) + [
        s for s in req if s.decision == "undecided"]
    needs = [x.seeds_needed for x in open_]
    clauses = [_equivalence_clause(x) if isinstance(x, Equivalence) else _control_clause(x)
               for x in open_]
    if needs and all(n is not None for n in needs):
        need = max(n for n in needs if n is not None)
        clauses.append(f"about {need} seeds would decide it (80% power at the observed mean "
                       "and spread; `ticketlens sweep --seeds`)")
    else:
        need = None
        clauses.append("no number of seeds would decide it at the observed mean difference "
                       "(it sits on the tolerance or the margin)")
    return SweepDecision("inconclusive", tuple(parts), "; ".join(clauses), need)
