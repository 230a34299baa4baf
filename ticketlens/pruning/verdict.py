"""The verdict: is the ticket a winning ticket? Pure functions of a run's manifest.

Three answers (``Verdict.status``):

- **inconclusive** when the run cannot tell, with the remedy in the reason: the dense model
  did not beat a constant prediction (``task.chance``) by a clear margin
  (:func:`learned_margin`: 5 points, or twice the tolerance if larger); or the ticket or a
  control beat it by more than the tolerance (the dense model is under-trained: a pruned
  network cannot be said to "match" a baseline it beats); or a required control is missing;
  or dense, the ticket and the required controls all reach the metric's maximum (the task
  is too easy to tell a ticket from a random subnetwork, :func:`at_ceiling`);
- **winning** when the ticket's metric is no more than the tolerance below dense (relative
  for perplexity) and it beats every required control by more than ``control_margin``
  (default: the tolerance);
- **not winning** otherwise.

Informative controls (the one-shot control) are reported, never required. Every clause of the
reason states the numbers it compares. One seed cannot measure the seed-to-seed spread, so
when the ticket is within the tolerance of dense the reason says that one seed cannot show
the match beyond seed noise and points at ``ticketlens sweep`` (``analysis.equivalence``
decides it over seeds).
"""

from __future__ import annotations

from collections.abc import Iterable

from ticketlens.core.record import HIGHER_IS_BETTER, Manifest, Verdict, control_label

CONTROLS = ("random_mask", "random_reinit")  # the required controls (pruning.controls)
LEARNED_MARGIN = 0.05  # dense must beat a constant prediction by this much (absolute)
METRIC_BEST = {"accuracy": 1.0, "f1": 1.0, "mcc": 1.0, "pearson": 1.0, "spearman": 1.0,
               "perplexity": 1.0}  # the metric's best possible value (its ceiling)


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


def at_ceiling(metric: str, values: Iterable[float | None]) -> bool:
    """Every value (Nones skipped; at least one) sits at ``metric``'s best possible value."""
    best = METRIC_BEST.get(metric)
    vals = [v for v in values if v is not None]
    return best is not None and bool(vals) and all(abs(v - best) <= 1e-9 for v in vals)


def gain(a: float, b: float, metric: str) -> float:
    """How much ``a`` is better than ``b``: ``a - b``, or ``(b - a) / b`` for perplexity."""
    return a - b if _higher(metric) else (b - a) / b


def _d(a: float, b: float, metric: str) -> str:
    """``a`` against ``b`` as a signed difference: ``a - b``, or ``a / b - 1`` in percent
    for lower-is-better metrics (perplexity)."""
    return f"{a - b:+.4f}" if _higher(metric) else f"{a / b - 1:+.2%} relative"


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
    ceiling = (not missing and not beaten_by
               and at_ceiling(metric, [dense, ticket, *(controls[c] for c in required)]))
    if ceiling:
        parts.append(f"dense, the ticket and the required controls all reach {metric} "
                     f"{_f(dense)}, its maximum: the task is too easy to tell a ticket from a "
                     "random subnetwork (try a harder task or a higher --target-sparsity)")
    g = gain(ticket, dense, metric)
    compared = (f"at {sparsity:.1%} sparsity the ticket reaches {metric} {_f(ticket)} against "
                f"dense {_f(dense)} ({_d(ticket, dense, metric)}")
    if g > tolerance + 1e-12:
        parts.append(f"{compared}: better than dense by more than the tolerance "
                     f"{tolerance:g}{rel}, see above)")
    elif matches:
        parts.append(f"{compared}, within the tolerance {tolerance:g}{rel} of dense; "
                     "one seed cannot tell a difference this small from seed-to-seed noise: "
                     "`ticketlens sweep --seeds 0-9` can)")
    else:
        parts.append(f"{compared}: more than the tolerance {tolerance:g}{rel} below dense)")
    for c, v in controls.items():
        parts.append(f"{'beats' if beats[c] else 'does not beat'} the {control_label(c)} "
                     f"control: {_f(ticket)} against {_f(v)} ({_d(ticket, v, metric)}, "
                     f"{'more than' if beats[c] else 'not more than'} the margin {margin:g}"
                     f"{rel}{'' if c in required else '; informative'})")
    if missing:
        parts.append(f"required control{'s' if len(missing) > 1 else ''} not run ("
                     f"{', '.join(control_label(c) for c in missing)})")
    if not learned or beaten_by or missing or ceiling:
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
