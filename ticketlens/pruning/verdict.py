"""The verdict: is the ticket a winning ticket? Pure functions of a run's manifest.

Three answers (``Verdict.status``):

- **inconclusive** when the dense baseline cannot be trusted, with the remedy in the reason:
  it did not beat a constant prediction (``task.chance``) by a clear margin
  (:func:`learned_margin`: 5 points, or twice the tolerance if larger), or the ticket or a
  control beat it by more than the tolerance (the dense model is under-trained: a pruned
  network cannot be said to "match" a baseline it beats); or a required control is missing;
- **winning** when the ticket's metric is within the tolerance of dense (relative for
  perplexity) and it beats every required control by more than ``control_margin`` (default:
  the tolerance);
- **not winning** otherwise.

Informative controls (the one-shot control) are reported, never required. The reason states
every number compared.
"""

from __future__ import annotations

from ticketlens.core.record import HIGHER_IS_BETTER, Manifest, Verdict, control_label

CONTROLS = ("random_mask", "random_reinit")  # the required controls (pruning.controls)
LEARNED_MARGIN = 0.05  # dense must beat a constant prediction by this much (absolute)


def _higher(metric: str) -> bool:
    return HIGHER_IS_BETTER.get(metric, True)


def matches_dense(dense: float, ticket: float, metric: str, tol: float) -> bool:
    if _higher(metric):
        return ticket >= dense - tol - 1e-12
    return ticket <= dense * (1 + tol) + 1e-12  # perplexity: a relative tolerance


def better_by(a: float, b: float, metric: str, margin: float) -> bool:
    """``a`` is better than ``b`` by more than ``margin`` (relative for lower-is-better
    metrics such as perplexity: ``a * (1 + margin) < b``)."""
    if _higher(metric):
        return a > b + margin + 1e-12
    return a * (1 + margin) < b - 1e-12


def learned_margin(tolerance: float) -> float:
    return max(LEARNED_MARGIN, 2 * tolerance)


def _f(x: float) -> str:
    return f"{x:.4f}"


def verdict(manifest: Manifest, tolerance: float, required: tuple[str, ...] = CONTROLS,
            control_margin: float | None = None) -> Verdict:
    """The verdict on ``manifest``'s ticket (see the module doc)."""
    margin = tolerance if control_margin is None or control_margin < 0 else control_margin
    metric = manifest.metric
    rounds = {r.index: r for r in manifest.rounds}
    ticket_round = manifest.ticket_round if manifest.ticket_round is not None else max(rounds)
    dense = rounds[0].metrics[metric]
    ticket = rounds[ticket_round].metrics[metric]
    sparsity = rounds[ticket_round].sparsity
    controls = {c: v.metrics[metric] for c, v in manifest.controls.items()}
    chance = manifest.task.chance
    rel = "" if _higher(metric) else " (relative)"

    need = learned_margin(tolerance)
    learned = chance is None or dense >= chance + need - 1e-12
    beaten_by = {name: v for name, v in [("the ticket", ticket), *(
        (f"the {control_label(c)} control", v) for c, v in controls.items())]
        if better_by(v, dense, metric, tolerance)}
    matches = matches_dense(dense, ticket, metric, tolerance)
    beats = {c: better_by(ticket, v, metric, margin) for c, v in controls.items()}
    missing = [c for c in required if c not in controls]

    parts = []
    if not learned:
        parts.append(
            f"the dense model did not learn the task clearly ({metric} {_f(dense)}; a "
            f"constant prediction scores {_f(chance)}, and dense must beat it by {need:g}): "
            "train longer (--steps) or try another learning rate (--lr), or check the data")
    if beaten_by:
        who = ", ".join(f"{k} ({_f(v)})" for k, v in beaten_by.items())
        parts.append(
            f"the dense model is under-trained: {who} beat{'s' if len(beaten_by) == 1 else ''}"
            f" dense ({_f(dense)}) by more than the tolerance {tolerance:g}{rel}: train longer "
            "(--steps) or try another learning rate (--lr)")
    parts.append(f"at {sparsity:.1%} sparsity the ticket reaches {metric} {_f(ticket)} "
                 f"(dense {_f(dense)}; {'within' if matches else 'outside'} the tolerance "
                 f"{tolerance:g}{rel})")
    for c, v in controls.items():
        parts.append(f"{'beats' if beats[c] else 'does not beat'} the {control_label(c)} "
                     f"control ({_f(v)}) by more than {margin:g}{rel}"
                     + ("" if c in required else ", informative"))
    if missing:
        parts.append(f"required control{'s' if len(missing) > 1 else ''} not run ("
                     f"{', '.join(control_label(c) for c in missing)})")
    if not learned or beaten_by or missing:
        status = "inconclusive"
    elif matches and all(beats[c] for c in required):
        status = "winning"
    else:
        status = "not winning"
    return Verdict(winning=status == "winning", status=status, metric=metric,
                   tolerance=tolerance, control_margin=margin, ticket_round=ticket_round,
                   sparsity=sparsity, dense=dense, ticket=ticket, controls=controls,
                   matches_dense=matches, chance=chance, dense_learned=learned,
                   dense_under_trained=bool(beaten_by), beats_controls=beats,
                   reason="; ".join(parts))
