"""The names of ``import ticketlens as tl``: where each is defined, imported on first use.

``ticketlens/__init__.py`` re-exports :func:`__getattr__` and :func:`__dir__` from here (PEP 562), so ``import ticketlens`` (and with it every CLI command,
``ticketlens --help`` included) imports no numpy, torch or scipy: ``tl.overlap`` imports the
overlap module when it is first looked up. Standard library only.

A new public name is one line in :data:`EXPORTS`, its name in ``__all__`` of
``ticketlens/__init__.py`` and, for type checkers, its import in the ``TYPE_CHECKING`` block
there; a result type is also listed in ``docs/api.md``. ``tests/test_api_doc.py`` checks
that the three lists agree.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# public name -> module that defines it, grouped as docs/api.md lists them
EXPORTS: dict[str, str] = {
    # configuration
    "FindConfig": "ticketlens.core.config",
    "ModelConfig": "ticketlens.core.config",
    "DataConfig": "ticketlens.core.config",
    "TrainConfig": "ticketlens.core.config",
    "PruneConfig": "ticketlens.core.config",
    # runs and their records
    "Run": "ticketlens.core.run",
    "open_run": "ticketlens.core.run",
    "runs": "ticketlens.api",
    "find": "ticketlens.api",
    "transfer": "ticketlens.api",
    "import_masks": "ticketlens.api",
    "Manifest": "ticketlens.core.record",
    "RoundRecord": "ticketlens.core.record",
    "ArmRecord": "ticketlens.core.record",
    "Verdict": "ticketlens.core.record",
    # errors
    "TicketlensError": "ticketlens.core.errors",
    "AnalysisError": "ticketlens.core.errors",
    "ConfigError": "ticketlens.core.errors",
    "RunFormatError": "ticketlens.core.errors",
    "DataError": "ticketlens.core.errors",
    "ModelError": "ticketlens.core.errors",
    # the analysis contract: inputs and the result base
    "Result": "ticketlens.core.result",
    "TicketMasks": "ticketlens.analysis.inputs",
    "as_inputs": "ticketlens.analysis.inputs",
    # analyses and their results
    "overlap": "ticketlens.analysis.overlap",
    "methods_overlap": "ticketlens.analysis.overlap",
    "group_summary": "ticketlens.analysis.overlap",
    "OverlapResult": "ticketlens.analysis.overlap",
    "PairOverlap": "ticketlens.analysis.overlap",
    "LayerOverlap": "ticketlens.analysis.overlap",
    "GroupSummary": "ticketlens.analysis.overlap",
    "survival": "ticketlens.analysis.survival",
    "SurvivalResult": "ticketlens.analysis.survival",
    "HeadSurvival": "ticketlens.analysis.survival",
    "LayerNeurons": "ticketlens.analysis.survival",
    "LayerStates": "ticketlens.analysis.survival",
    "sparsity_profile": "ticketlens.analysis.survival",
    "ProfileResult": "ticketlens.analysis.survival",
    "graph": "ticketlens.analysis.graph",
    "NetworkResult": "ticketlens.analysis.graph",
    "runs_graph": "ticketlens.analysis.graph",
    "RunsGraphResult": "ticketlens.analysis.graph",
    "sweep_stats": "ticketlens.analysis.sweep",
    "SweepStats": "ticketlens.analysis.sweep",
    "GroupStats": "ticketlens.analysis.sweep",
    "Estimate": "ticketlens.analysis.sweep",
    "PairedTest": "ticketlens.analysis.sweep",
    "RoundStats": "ticketlens.analysis.sweep",
    "CrossTask": "ticketlens.analysis.sweep",
    "OverlapMatrix": "ticketlens.analysis.sweep",
    "early_bird": "ticketlens.analysis.earlybird",
    "EarlyBirdResult": "ticketlens.analysis.earlybird",
    "EarlyBirdDraw": "ticketlens.analysis.earlybird",
    "attribute": "ticketlens.api",
    "AttributionResult": "ticketlens.analysis.results",
    "TokenAttribution": "ticketlens.analysis.results",
    "UnitImportanceResult": "ticketlens.analysis.results",
    "magnitude_mask": "ticketlens.analysis.magnitude",
    "MagnitudeMask": "ticketlens.analysis.magnitude",
    "head_roles": "ticketlens.analysis.head_roles",
    "head_roles_over": "ticketlens.analysis.head_roles",
    "HeadRolesResult": "ticketlens.analysis.roles",
    "HeadRole": "ticketlens.analysis.roles",
    "RoleSurvival": "ticketlens.analysis.roles",
    "RoleRules": "ticketlens.analysis.roles",
    "RolesOverSeedsResult": "ticketlens.analysis.roles",
    "RoleOverSeeds": "ticketlens.analysis.roles",
    "stability": "ticketlens.api",
    "StabilityResult": "ticketlens.pruning.stability",
    "StabilityCurve": "ticketlens.pruning.stability",
    "circuit": "ticketlens.analysis.circuit",
    "CircuitResult": "ticketlens.analysis.circuit",
    "AblationRow": "ticketlens.analysis.circuit",
    "UnitAgreement": "ticketlens.analysis.circuit",
    # a smaller model to ship
    "export": "ticketlens.api",
    "ExportResult": "ticketlens.exporter",
    "load_pruned": "ticketlens.api",
    # the report's figure of a run or a result, for a notebook
    "figure": "ticketlens.api",
}

def __getattr__(name: str) -> Any:
    """``ticketlens.<name>``: imported from its module on first use, then cached on the
    package (the next lookup is a plain attribute)."""
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ticketlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    setattr(sys.modules["ticketlens"], name, value)
    return value


def __dir__() -> list[str]:
    return sorted(["__version__", *EXPORTS])
