"""ticketlens: find and understand lottery tickets in transformer language models.

``import ticketlens as tl`` is light: every public name below is imported on first use (see
``ticketlens.api`` for the call shapes), so reading runs never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ticketlens.core.version import __version__

# public name -> module that defines it
_EXPORTS = {
    "FindConfig": "ticketlens.core.config",
    "ModelConfig": "ticketlens.core.config",
    "DataConfig": "ticketlens.core.config",
    "TrainConfig": "ticketlens.core.config",
    "PruneConfig": "ticketlens.core.config",
    "Run": "ticketlens.core.run",
    "open_run": "ticketlens.core.run",
    "Manifest": "ticketlens.core.record",
    "RoundRecord": "ticketlens.core.record",
    "ArmRecord": "ticketlens.core.record",
    "Verdict": "ticketlens.core.record",
    "TicketlensError": "ticketlens.core.errors",
    "find": "ticketlens.api",
    "transfer": "ticketlens.api",
    "import_masks": "ticketlens.api",
    "attribute": "ticketlens.api",
    "runs": "ticketlens.api",
    "magnitude_mask": "ticketlens.api",
    "export": "ticketlens.api",
    "load_pruned": "ticketlens.api",
    "overlap": "ticketlens.analysis.overlap",
    "OverlapResult": "ticketlens.analysis.overlap",
    "group_summary": "ticketlens.analysis.overlap",
    "survival": "ticketlens.analysis.survival",
    "SurvivalResult": "ticketlens.analysis.survival",
    "sparsity_profile": "ticketlens.analysis.survival",
    "graph": "ticketlens.analysis.graph",
    "sweep_stats": "ticketlens.analysis.sweep",
    "SweepStats": "ticketlens.analysis.sweep",
    "NetworkResult": "ticketlens.analysis.graph",
    "AttributionResult": "ticketlens.analysis.results",
}
__all__ = [  # noqa: RUF022  (grouped as in _EXPORTS)
    "__version__",
    "FindConfig",
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "PruneConfig",
    "Run",
    "open_run",
    "Manifest",
    "RoundRecord",
    "ArmRecord",
    "Verdict",
    "TicketlensError",
    "find",
    "transfer",
    "import_masks",
    "attribute",
    "runs",
    "magnitude_mask",
    "export",
    "load_pruned",
    "overlap",
    "OverlapResult",
    "group_summary",
    "survival",
    "SurvivalResult",
    "sparsity_profile",
    "graph",
    "sweep_stats",
    "SweepStats",
    "NetworkResult",
    "AttributionResult",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from ticketlens.analysis.graph import NetworkResult, graph
    from ticketlens.analysis.overlap import OverlapResult, group_summary, overlap
    from ticketlens.analysis.results import AttributionResult
    from ticketlens.analysis.survival import SurvivalResult, sparsity_profile, survival
    from ticketlens.analysis.sweep import SweepStats, sweep_stats
    from ticketlens.api import (
        attribute,
        export,
        find,
        import_masks,
        load_pruned,
        magnitude_mask,
        runs,
        transfer,
    )
    from ticketlens.core.config import (
        DataConfig,
        FindConfig,
        ModelConfig,
        PruneConfig,
        TrainConfig,
    )
    from ticketlens.core.errors import TicketlensError
    from ticketlens.core.record import ArmRecord, Manifest, RoundRecord, Verdict
    from ticketlens.core.run import Run, open_run


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ticketlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
