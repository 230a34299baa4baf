"""Overlap between tickets of one architecture, with chance levels.

``overlap(items, by=...)`` takes runs (or ``(name, anatomy, weight masks)`` tuples) and compares
their masks at weight level (strata = tensors) or unit level (heads, neurons: strata = layers;
FFN blocks: one stratum). For every pair: Jaccard, overlap coefficient (intersection over the
smaller), normalised Hamming distance, and what two *independent* masks with the same kept
count per stratum would give: the expected intersection is the hypergeometric mean
``sum_s k_a k_b / n`` per stratum, and the p-value is ``P(I >= observed)``: exact
(``scipy.stats.hypergeom``) for one stratum, else a normal approximation of the sum of the
per-stratum hypergeometric variables (their means and variances from ``scipy.stats``).
For the set: Fleiss' kappa over items (computed from the pairwise counts) beside its value
under independence, and *super-survivors* (items kept by every mask) observed vs expected.
Each pair also says how much of ``a`` the mask ``b`` keeps (``a_kept_by_b = I / |A|``) and
its chance level ``E[I] / |A|``.

Inputs are read by :mod:`ticketlens.analysis.inputs` (runs, typed masks, ``(run, arm)``: the
mask of a control of the run, ``"oneshot"``, ``"method_wanda"``, ..., or ``"ticket"``);
:func:`method_items` lists a run's ticket and its
one-shot arms (``find --compare-methods``), :func:`methods_overlap` compares them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ticketlens.analysis.bits import Bits, from_bool, from_readers
from ticketlens.analysis.inputs import (
    Input,
    RunsOrMasks,
    TicketMasks,
    arm_masks,
    as_inputs,
    check_by,
    label,
    one_run,
)
from ticketlens.core.errors import AnalysisError
from ticketlens.core.result import Result
from ticketlens.core.run import Run

BY = ("weight", "head", "neuron", "ffn")


@dataclass(frozen=True)
class PairOverlap(Result):
    a: str
    b: str
    kept_a: int
    kept_b: int
    intersection: int
    union: int
    total: int
    jaccard: float
    overlap_coefficient: float
    hamming: float
    expected_intersection: float
    jaccard_chance: float
    p_value: float
    a_kept_by_b: float = math.nan  # |A & B| / |A|: how much of a's kept items b keeps
    a_kept_by_b_chance: float = math.nan  # its value for independent masks, E[I] / |A|


@dataclass(frozen=True)
class LayerOverlap(Result):
    layer: int
    jaccard_mean: float
    jaccard_chance_mean: float


@dataclass(frozen=True)
class OverlapResult(Result):
    by: str
    names: tuple[str, ...]
    total: int
    pairs: tuple[PairOverlap, ...]
    fleiss_kappa: float
    fleiss_kappa_chance: float
    super_survivors_observed: int
    super_survivors_expected: float
    per_layer: tuple[LayerOverlap, ...]

    def _data(self) -> dict[str, Any]:
        return {
            "by": self.by, "names": list(self.names), "total": self.total,
            "pairs": list(self.pairs),
            "fleiss_kappa": self.fleiss_kappa,
            "fleiss_kappa_chance": self.fleiss_kappa_chance,
            "super_survivors": {"observed": self.super_survivors_observed,
                                "expected": self.super_survivors_expected},
            "per_layer": list(self.per_layer),
        }

    def matrix(self, field: str = "jaccard") -> np.ndarray:
        """(m, m) matrix of a pair field (diagonal 1 for similarities, 0 for hamming)."""
        idx = {n: i for i, n in enumerate(self.names)}
        diag = 0.0 if field == "hamming" else (1.0 if field in ("jaccard",
                                                               "overlap_coefficient") else np.nan)
        out = np.full((len(self.names),) * 2, diag)
        for p in self.pairs:
            out[idx[p.a], idx[p.b]] = out[idx[p.b], idx[p.a]] = getattr(p, field)
        return out


# ----------------------------------------------------------------------------- statistics
def chance_intersection(k_a: np.ndarray, k_b: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the intersection of two independent random masks with ``k_a`` and
    ``k_b`` kept of ``n`` items per stratum (hypergeometric per stratum, summed)."""
    # vectorised hypergeom.stats(n, k_a, k_b): mean k_b k_a / n,
    # variance k_b (k_a / n)(1 - k_a / n)(n - k_b) / (n - 1)  (tests check against scipy)
    n = n.astype(np.float64)
    ka, kb = k_a.astype(np.float64), k_b.astype(np.float64)
    live = n > 0
    p = np.where(live, ka / np.where(live, n, 1), 0.0)
    mean = float((kb * p).sum())
    var = float(np.where(n > 1, kb * p * (1 - p) * (n - kb) / np.where(n > 1, n - 1, 1),
                         0.0).sum())
    return mean, var


def intersection_p_value(observed: int, k_a: np.ndarray, k_b: np.ndarray,
                         n: np.ndarray) -> float:
    """One-sided P(I >= observed) under independence (see the module doc)."""
    live = n > 0
    if live.sum() == 1:
        i = int(np.flatnonzero(live)[0])
        from scipy import stats  # imported here: reading runs stays light

        return float(stats.hypergeom.sf(observed - 1, int(n[i]), int(k_a[i]), int(k_b[i])))
    mean, var = chance_intersection(k_a, k_b, n)
    if var <= 0:
        return 1.0 if observed <= mean else 0.0
    z = (observed - 0.5 - mean) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2.0))  # the standard normal's survival function


def fleiss_kappa_from_counts(kept: np.ndarray, inter_sum: float, n_items: int,
                             m: int) -> float:
    """Fleiss' kappa, two categories (kept / pruned), m raters, from aggregate counts.

    With ``c_i`` the number of masks keeping item i: ``sum_i c_i = sum_a |A|`` and
    ``sum_i c_i^2 = sum_a |A| + 2 sum_{a<b} |A & B|``, so per-item agreement needs no pass
    over items. ``kept``: (m,) kept per mask; ``inter_sum``: sum over pairs a<b of |A & B|.
    """
    s1 = float(kept.sum())
    s2 = s1 + 2.0 * inter_sum
    # sum_i sum_j n_ij^2 = sum_i [c_i^2 + (m - c_i)^2] = 2 s2 - 2 m s1 + N m^2
    sq = 2 * s2 - 2 * m * s1 + n_items * m * m
    p_bar = (sq - n_items * m) / (n_items * m * (m - 1))
    p_kept = s1 / (n_items * m)
    p_e = p_kept**2 + (1 - p_kept) ** 2
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


# ----------------------------------------------------------------------------- inputs
def _bits_for(items: Sequence[Input], by: str,
              round: int | None = None) -> tuple[list[str], Bits]:
    """Names and bits of runs / typed masks at level ``by``."""
    names = [label(it) for it in items]
    a0 = items[0].anatomy
    for it, n in zip(items[1:], names[1:]):
        a = it.anatomy
        if a.shapes != a0.shapes or (a.num_layers, a.num_heads) != (a0.num_layers, a0.num_heads):
            raise AnalysisError(f"{n} is of another architecture than {names[0]}; overlap "
                                "needs tickets of one architecture")
    if by == "weight":
        layers = {t.name: t.layer for t in a0.tensors}
        sizes = {t.name: int(np.prod(t.shape)) for t in a0.tensors}
        readers = [partial(it.read_packed_into, round_index=round) for it in items]
        return names, from_readers(readers, sizes, layers)
    units = [it.units(round) for it in items]
    if by == "ffn":
        return names, from_bool([{"ffn": np.asarray(u.ffn)} for u in units], {"ffn": -1})
    field = {"head": "head", "neuron": "neuron"}[by]
    per_layer = [{f"L{layer}": np.asarray(getattr(u, field)[layer])
                  for layer in range(a0.num_layers)} for u in units]
    return names, from_bool(per_layer, {f"L{la}": la for la in range(a0.num_layers)})


ONESHOT_ARMS = ("method_magnitude", "method_wanda", "method_sparsegpt", "oneshot")


def arm_item(run: Run, arm: str, label: str | None = None) -> TicketMasks:
    """The masks of a run's arm: ``"ticket"`` (the ticket round) or a control that trained a
    mask of its own (any other arm: a one-line :class:`AnalysisError`). Kept for callers of
    the tuple era: it is :func:`ticketlens.analysis.inputs.arm_masks`."""
    return arm_masks(run, arm, label)


def method_items(run: RunsOrMasks) -> list[TicketMasks]:
    """The run's ticket, then each one-shot arm it trained (``--compare-methods`` controls,
    the one-shot magnitude control), labelled ``ticket``, ``Wanda``, ..."""
    from ticketlens.core.record import control_label

    r = one_run(run, what="methods overlap", needs="its one-shot method controls")
    arms = [a for a in ONESHOT_ARMS if a in r.controls and r.controls[a].mask]
    if not arms:
        raise AnalysisError(f"{r.path}: has no one-shot method controls; add them with "
                            f"`ticketlens find ... --compare-methods wanda,sparsegpt,magnitude "
                            f"--out {r.path}` (the same options as the run)")
    return [arm_masks(r, "ticket", "ticket"),
            *(arm_masks(r, a, control_label(a)) for a in arms)]


def methods_overlap(run: RunsOrMasks, *, by: str = "weight") -> OverlapResult:
    """How much of the run's ticket each one-shot method keeps (pairs ``ticket`` vs each
    method first: ``a_kept_by_b``), and the methods among themselves, with chance levels."""
    return overlap(method_items(run), by=by)


# ----------------------------------------------------------------------------- analysis
def overlap(runs_or_masks: RunsOrMasks, *, by: str = "weight",
            round: int | None = None) -> OverlapResult:
    """Pairwise and set-level overlap of two or more tickets (see the module doc): runs (at
    ``round``, default each run's ticket), typed masks or ``(run, arm)`` pairs, in any form
    :func:`ticketlens.analysis.inputs.as_inputs` reads."""
    check_by(by, BY, what="overlap")
    items = as_inputs(runs_or_masks, what="overlap")
    if len(items) < 2:
        raise AnalysisError("overlap needs at least two tickets")
    names, bits = _bits_for(items, by, round)
    return overlap_bits(names, bits, by)


def overlap_bits(names: Sequence[str], bits: Bits, by: str) -> OverlapResult:
    m = bits.m
    n = bits.sizes
    total = int(n.sum())
    inter = bits.intersections()  # (m, m, S)
    kept = np.stack([inter[a, a] for a in range(m)])  # (m, S)
    pairs = []
    exp_sum = 0.0
    obs_sum = 0.0
    for a in range(m):
        for b in range(a + 1, m):
            i = int(inter[a, b].sum())
            ka, kb = int(kept[a].sum()), int(kept[b].sum())
            union = ka + kb - i
            e, _ = chance_intersection(kept[a], kept[b], n)
            pairs.append(PairOverlap(
                a=names[a], b=names[b], kept_a=ka, kept_b=kb, intersection=i, union=union,
                total=total, jaccard=i / union if union else 1.0,
                overlap_coefficient=i / min(ka, kb) if min(ka, kb) else 1.0,
                hamming=(union - i) / total,
                expected_intersection=e,
                jaccard_chance=e / (ka + kb - e) if ka + kb - e > 0 else 1.0,
                p_value=intersection_p_value(i, kept[a], kept[b], n),
                a_kept_by_b=i / ka if ka else 1.0, a_kept_by_b_chance=e / ka if ka else 1.0))
            obs_sum += i
            exp_sum += e
    kappa = fleiss_kappa_from_counts(kept.sum(axis=1), obs_sum, total, m)
    kappa_chance = fleiss_kappa_from_counts(kept.sum(axis=1), exp_sum, total, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = np.where(n > 0, kept / np.maximum(n, 1), 0.0)  # (m, S)
    super_expected = float((n * dens.prod(axis=0)).sum())
    return OverlapResult(by, tuple(names), total, tuple(pairs), kappa, kappa_chance,
                         int(bits.all_kept().sum()), super_expected,
                         _per_layer(bits, kept, inter))


def _per_layer(bits: Bits, kept: np.ndarray, inter: np.ndarray) -> tuple[LayerOverlap, ...]:
    out = []
    upper = np.triu_indices(bits.m, 1)  # the pairs a < b, in the order of ``pairs``
    for layer in sorted(set(bits.layers.tolist()) - {-1}):
        sel = bits.layers == layer
        n = np.maximum(bits.sizes[sel], 1)
        k = kept[:, sel]  # (m, s)
        i = inter[:, :, sel].sum(axis=-1)[upper]  # (pairs,)
        ka, kb = k.sum(axis=-1)[upper[0]], k.sum(axis=-1)[upper[1]]
        u = ka + kb - i
        e = (k[:, None, :] * k[None, :, :] / n).sum(axis=-1)[upper]  # chance intersection
        with np.errstate(divide="ignore", invalid="ignore"):
            js = np.where(u > 0, i / u, 1.0)
            cs = np.where(ka + kb - e > 0, e / (ka + kb - e), 1.0)
        out.append(LayerOverlap(int(layer), float(np.mean(js)), float(np.mean(cs))))
    return tuple(out)


@dataclass(frozen=True)
class GroupSummary(Result):
    """Mean pair figures within groups (e.g. tasks) and across them; with seeds given, the
    pairs across groups split into those of one seed (the seed held fixed: the same
    initialisation and data order) and those of two (the report's "seed-fixed" and
    "cross-seed")."""

    within_jaccard: float
    within_chance: float
    within_pairs: int
    across_jaccard: float
    across_chance: float
    across_pairs: int
    same_seed_jaccard: float = float("nan")
    same_seed_chance: float = float("nan")
    same_seed_pairs: int = 0
    cross_seed_jaccard: float = float("nan")
    cross_seed_chance: float = float("nan")
    cross_seed_pairs: int = 0


def group_summary(result: OverlapResult, groups: dict[str, str],
                  seeds: dict[str, Any] | None = None) -> GroupSummary:
    """``groups`` maps each name of ``result`` to its group (e.g. its task); ``seeds``, when
    given, each name to its seed (a pair across groups is seed-fixed when both seeds are
    known and equal)."""
    within = [p for p in result.pairs if groups[p.a] == groups[p.b]]
    across = [p for p in result.pairs if groups[p.a] != groups[p.b]]

    def mean(ps: list[PairOverlap], field: str) -> float:
        return float(np.mean([getattr(p, field) for p in ps])) if ps else float("nan")

    split: tuple = ()
    if seeds is not None:
        same = [p for p in across if seeds.get(p.a) is not None and
                seeds.get(p.a) == seeds.get(p.b)]
        cross = [p for p in across if p not in same]
        split = (mean(same, "jaccard"), mean(same, "jaccard_chance"), len(same),
                 mean(cross, "jaccard"), mean(cross, "jaccard_chance"), len(cross))
    return GroupSummary(mean(within, "jaccard"), mean(within, "jaccard_chance"), len(within),
                        mean(across, "jaccard"), mean(across, "jaccard_chance"), len(across),
                        *split)
