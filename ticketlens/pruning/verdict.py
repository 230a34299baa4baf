"""The verdict: is the ticket a winning ticket? Pure functions of a run's manifest.

Winning when the dense model learned the task (beats a constant prediction, ``task.chance``,
by more than the tolerance), the ticket's metric is within the tolerance of dense (relative
for perplexity), and the ticket beats every required control. Other controls (the one-shot
control) are reported, not required.
"""

from __future__ import annotations

from ticketlens.core.record import Manifest, Verdict, control_label
from ticketlens.pruning.metrics import HIGHER_IS_BETTER

CONTROLS = ("random_mask", "random_reinit")  # the required controls (pruning.controls)


def matches_dense(dense: float, ticket: float, metric: str, tol: float) -> bool:
    if HIGHER_IS_BETTER.get(metric, True):
        return ticket >= dense - tol - 1e-12
    return ticket <= dense * (1 + tol) + 1e-12  # perplexity: a relative tolerance


def _better(a: float, b: float, metric: str) -> bool:
    return a > b if HIGHER_IS_BETTER.get(metric, True) else a < b


def verdict(manifest: Manifest, tolerance: float,
            required: tuple[str, ...] = CONTROLS) -> Verdict:
    """Winning when the dense model learned the task (beats a constant prediction by more
    than ``tolerance``), the ticket is within ``tolerance`` of dense and it beats every
    ``required`` control (both by default: random mask and random re-init)."""
    metric = manifest.metric
    rounds = {r.index: r for r in manifest.rounds}
    ticket_round = manifest.ticket_round if manifest.ticket_round is not None else max(rounds)
    dense = rounds[0].metrics[metric]
    ticket = rounds[ticket_round].metrics[metric]
    sparsity = rounds[ticket_round].sparsity
    controls = {c: v.metrics[metric] for c, v in manifest.controls.items()}
    matches = matches_dense(dense, ticket, metric, tolerance)
    beats = {c: _better(ticket, v, metric) for c, v in controls.items()}
    chance = manifest.task.chance
    learned = chance is None or dense > chance + tolerance
    winning = learned and matches and all(beats.get(c, False) for c in required)
    parts = [] if learned else [
        f"the dense model did not learn the task ({metric} {dense:.4f}; a constant "
        f"prediction scores {chance:.4f}), so no ticket can be called winning: train longer "
        "(--steps) or check the data"]
    parts += [f"at {sparsity:.1%} sparsity the ticket reaches {metric} {ticket:.4f} "
             f"(dense {dense:.4f}; {'within' if matches else 'outside'} the tolerance "
             f"{tolerance:g})"]
    for c, v in controls.items():
        parts.append(f"{'beats' if beats[c] else 'does not beat'} the "
                     f"{control_label(c)} control ({v:.4f})"
                     + ("" if c in required else ", informative"))
    if any(c not in controls for c in required):
        parts.append("controls were not run, so no ticket can be called winning")
    return Verdict(winning=winning, metric=metric, tolerance=tolerance,
                   ticket_round=ticket_round, sparsity=sparsity, dense=dense, ticket=ticket,
                   controls=controls, matches_dense=matches, chance=chance,
                   dense_learned=learned, beats_controls=beats, reason="; ".join(parts))
