"""One-shot magnitude masks: the baseline a ticket is compared with.

``magnitude_mask(run_or_weights, sparsity, scope=...)`` -> :class:`MagnitudeMask`: the
weights with the smallest magnitude pruned at once (``pruning.ops.magnitude_prune``, which
reproduces ``torch.nn.utils.prune``), ranked across all tensors (``global``) or per tensor
(``tensor``). From a run it prunes the run's rewind weights (its pretrained or early
weights, what the ticket was drawn from) and carries the anatomy, so the result is an input
of every analysis: ``tl.overlap([run, tl.magnitude_mask(run, run.ticket.sparsity)])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticketlens.analysis.inputs import MaskMapping, RunsOrMasks, TicketMasks, label, one_run
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import AnalysisError
from ticketlens.core.result import Result

SCOPES = ("global", "tensor")


@dataclass(frozen=True, eq=False)
class MagnitudeMask(Result, MaskMapping):
    """One-shot magnitude masks (numpy bool, True = kept) by tensor name. A read-only
    mapping name -> mask (as ``magnitude_mask`` returned before it was typed); with an
    ``anatomy`` (from a run, or given) also an analysis input (:meth:`as_ticket`)."""

    name: str
    masks: Mapping[str, np.ndarray] = field(repr=False)
    sparsity: float  # asked for; ``achieved_sparsity`` is what the rounding gave
    scope: str
    anatomy: Anatomy | None = field(default=None, repr=False)

    @property
    def achieved_sparsity(self) -> float:
        return self.pruned_fraction

    def as_ticket(self) -> TicketMasks:
        """The masks as an analysis input (needs the anatomy)."""
        if self.anatomy is None:
            raise AnalysisError(f"{self.name}: magnitude masks of bare weights have no "
                                "anatomy; pass a run, or anatomy=, to analyse them")
        return TicketMasks(self.name, self.anatomy, self.masks)

    def _data(self) -> dict[str, Any]:
        return {"name": self.name, "sparsity": self.sparsity, "scope": self.scope,
                "achieved_sparsity": self.achieved_sparsity, "kept": self.kept,
                "total": self.total,
                "kept_per_tensor": self.kept_per_tensor()}


def magnitude_mask(run_or_weights: RunsOrMasks | Mapping[str, Any], sparsity: float, *,
                   scope: str = "global", name: str | None = None,
                   anatomy: Anatomy | None = None) -> MagnitudeMask:
    """Prune ``sparsity`` of the weights by magnitude at once (see the module doc).

    ``run_or_weights``: a run (any form :mod:`ticketlens.analysis.inputs` reads; its rewind
    weights of the prunable tensors), or weights by name (tensors or arrays, e.g. a run's
    ``weights("rewind")`` restricted to its prunable names). ``anatomy`` makes masks of bare
    weights an analysis input; ``name`` labels them in results."""
    from ticketlens.core.masks import as_bool
    from ticketlens.pruning import ops

    if scope not in SCOPES:
        raise AnalysisError(f"magnitude_mask: scope must be one of {', '.join(SCOPES)}; "
                            f"got {scope!r}")
    if not 0.0 <= sparsity <= 1.0:
        raise AnalysisError(f"magnitude_mask: sparsity must be in [0, 1]; got {sparsity}")
    if isinstance(run_or_weights, Mapping) and not isinstance(run_or_weights, TicketMasks):
        weights = _as_tensors(run_or_weights)
        default = "magnitude"
    else:
        run = one_run(run_or_weights, what="magnitude_mask", needs="its rewind weights")
        rewind = run.weights("rewind")
        weights = {n: rewind[n] for n in run.anatomy.names}
        anatomy = anatomy or run.anatomy
        default = f"{label(run)} magnitude"
    masks = ops.magnitude_prune(weights, ops.ones_like(weights), sparsity, scope)
    return MagnitudeMask(name or default, {n: as_bool(m) for n, m in masks.items()},
                         float(sparsity), scope, anatomy)


def _as_tensors(weights: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    return {n: w if isinstance(w, torch.Tensor) else torch.as_tensor(np.asarray(w))
            for n, w in weights.items()}
