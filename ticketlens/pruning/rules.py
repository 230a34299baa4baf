"""The search's decisions as pure functions of the recorded rounds (tested directly).

- :func:`next_amount`: how much of the remaining weights the next round prunes;
- :func:`next_amounts`: the same for the search's schedule (one-shot, N:M, early-bird,
  weights or each kind of unit);
- :func:`finished`: whether IMP stops (target reached, or the first drop with
  ``stop_on_drop``);
- :func:`ticket_round`: which round is the ticket;
- :func:`needed_weights`: which rounds' trained weights a resume or the ticket choice may
  still read (the others are deleted as the search goes);
- :func:`nm_schedule`: how IMP reaches an N:M pattern (``--pattern``), round by round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ticketlens.core.config import PruneConfig
from ticketlens.core.masks import prune_amount_for_round
from ticketlens.core.record import RoundRecord
from ticketlens.pruning.verdict import matches_dense


def next_amount(kept: int, total: int, rate: float, target_sparsity: float) -> float:
    """Share of the ``kept`` weights to prune next (0 when the target is reached)."""
    return prune_amount_for_round(kept, total, rate, target_sparsity)


def next_amounts(p: PruneConfig, r: int, kept: Mapping[str, tuple[int, int]],
                 nm: Sequence[int] = ()) -> dict[str, float]:
    """Share of the remaining weights (``{"weight": x}``) or of each kind of unit to prune
    after round ``r``. ``kept``: (kept, total) after round ``r`` of ``"weight"`` or of each
    unit kind; ``nm``: :func:`nm_schedule` with ``--pattern N:M``."""
    if p.method != "imp":  # one-shot: round 1 prunes to the target, and is the last
        return {"weight": p.target_sparsity if r == 0 else 0.0}
    if nm:  # k_r of every M kept after round r
        return {"weight": 0.0 if r + 1 >= len(nm) else 1.0 - nm[r + 1] / nm[r]}
    # early-bird: the ticket is the mask drawn at the stop, at the target in one step
    rate = p.target_sparsity if p.early_bird else p.rate
    return {k: next_amount(n, total, rate, p.target_sparsity) for k, (n, total) in kept.items()}


def last_matching(rounds: Sequence[RoundRecord], metric: str, tolerance: float) -> int | None:
    """The last pruned round within ``tolerance`` of dense (round 0), if any."""
    dense = rounds[0].metrics[metric]
    ok = [r.index for r in rounds[1:]
          if matches_dense(dense, r.metrics[metric], metric, tolerance)]
    return ok[-1] if ok else None


def finished(rounds: Sequence[RoundRecord], metric: str, tolerance: float,
             stop_on_drop: bool, amount_next: float) -> bool:
    """True when IMP stops after the last recorded round: the next round would prune
    nothing (``amount_next`` <= 0), or ``stop_on_drop`` and the last round fell below dense
    by more than ``tolerance``."""
    last = rounds[-1]
    if last.index > 0 and stop_on_drop and not matches_dense(
            rounds[0].metrics[metric], last.metrics[metric], metric, tolerance):
        return True
    return amount_next <= 0.0


def ticket_round(rounds: Sequence[RoundRecord], metric: str, tolerance: float,
                 stop_on_drop: bool) -> int:
    """The ticket: the last round; with ``stop_on_drop`` the last round that matched dense
    (round 1 when none did, round 0 when no round was pruned)."""
    last = rounds[-1].index
    if stop_on_drop and last > 0:
        m = last_matching(rounds, metric, tolerance)
        return m if m is not None else min(1, last)
    return last


def needed_weights(rounds: Sequence[RoundRecord], metric: str, tolerance: float) -> set[int]:
    """Rounds whose trained weights must stay on disk: dense (0), the last two (a resume
    prunes from the last, learning-rate rewinding starts from the one before), and the last
    matching round and the one before (the ticket with ``stop_on_drop``)."""
    last = rounds[-1].index
    keep = {0, last, last - 1}
    m = last_matching(rounds, metric, tolerance)
    if m is not None:
        keep |= {m, m - 1}
    return keep


def nm_schedule(n: int, m: int, rate: float) -> tuple[int, ...]:
    """Weights kept of every ``m`` consecutive ones after each IMP round with ``--pattern
    n:m`` (index = round; round 0 is dense, ``m``): ``k_r = max(n, min(k_{r-1} - 1,
    round(m (1 - rate)^r)))``, so every round prunes at least one weight per group, follows
    the unstructured schedule while it can, and the last round is exactly ``n:m``
    (2:4 at rate 0.2: 4, 3, 2; 4:8: 8, 6, 5, 4)."""
    if not 1 <= n <= m:
        raise ValueError(f"N:M needs 1 <= N <= M, got {n}:{m}")
    ks = [m]
    while ks[-1] > n:
        r = len(ks)
        ks.append(max(n, min(ks[-1] - 1, round(m * (1.0 - rate) ** r))))
    return tuple(ks)
