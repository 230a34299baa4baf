"""ticketlens: find and understand lottery tickets in transformer language models.

``import ticketlens as tl`` is light: every public name is imported on first use (the table of
where each lives is :mod:`ticketlens.exports`; :mod:`ticketlens.api` documents the call
shapes), so reading runs never imports torch. This file only re-exports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketlens.core.version import __version__
from ticketlens.exports import __dir__, __getattr__  # noqa: F401  (PEP 562: lazy names)

__all__ = [  # noqa: RUF022  (grouped as in ticketlens.exports.EXPORTS; a test checks both)
    "__version__", "FindConfig", "ModelConfig", "DataConfig", "TrainConfig", "PruneConfig", "Run",
    "open_run", "runs", "find", "transfer", "import_masks", "Manifest", "RoundRecord",
    "ArmRecord", "Verdict", "TicketlensError", "AnalysisError", "ConfigError", "RunFormatError",
    "DataError", "ModelError", "Result", "TicketMasks", "as_inputs", "overlap", "methods_overlap",
    "group_summary", "OverlapResult", "PairOverlap", "LayerOverlap", "GroupSummary", "survival",
    "SurvivalResult", "HeadSurvival", "LayerNeurons", "LayerStates", "sparsity_profile",
    "ProfileResult", "graph", "NetworkResult", "runs_graph", "RunsGraphResult", "sweep_stats",
    "SweepStats", "GroupStats", "Estimate", "PairedTest", "RoundStats", "CrossTask",
    "OverlapMatrix", "early_bird", "EarlyBirdResult", "EarlyBirdDraw", "attribute",
    "AttributionResult", "TokenAttribution", "UnitImportanceResult", "magnitude_mask",
    "MagnitudeMask", "head_roles", "head_roles_over", "HeadRolesResult", "HeadRole",
    "RoleSurvival", "RoleRules", "RolesOverSeedsResult", "RoleOverSeeds", "stability",
    "StabilityResult", "StabilityCurve", "circuit", "CircuitResult", "AblationRow",
    "UnitAgreement", "export",
    "ExportResult", "load_pruned",
    "figure",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from ticketlens.analysis.circuit import AblationRow, CircuitResult, UnitAgreement, circuit
    from ticketlens.analysis.earlybird import EarlyBirdDraw, EarlyBirdResult, early_bird
    from ticketlens.analysis.graph import NetworkResult, RunsGraphResult, graph, runs_graph
    from ticketlens.analysis.head_roles import head_roles, head_roles_over
    from ticketlens.analysis.inputs import TicketMasks, as_inputs
    from ticketlens.analysis.magnitude import MagnitudeMask, magnitude_mask
    from ticketlens.analysis.overlap import (
        GroupSummary,
        LayerOverlap,
        OverlapResult,
        PairOverlap,
        group_summary,
        methods_overlap,
        overlap,
    )
    from ticketlens.analysis.results import (
        AttributionResult,
        TokenAttribution,
        UnitImportanceResult,
    )
    from ticketlens.analysis.roles import (
        HeadRole,
        HeadRolesResult,
        RoleOverSeeds,
        RoleRules,
        RolesOverSeedsResult,
        RoleSurvival,
    )
    from ticketlens.analysis.survival import (
        HeadSurvival,
        LayerNeurons,
        LayerStates,
        ProfileResult,
        SurvivalResult,
        sparsity_profile,
        survival,
    )
    from ticketlens.analysis.sweep import (
        CrossTask,
        Estimate,
        GroupStats,
        OverlapMatrix,
        PairedTest,
        RoundStats,
        SweepStats,
        sweep_stats,
    )
    from ticketlens.api import (
        attribute,
        export,
        figure,
        find,
        import_masks,
        load_pruned,
        runs,
        stability,
        transfer,
    )
    from ticketlens.core.config import (
        DataConfig,
        FindConfig,
        ModelConfig,
        PruneConfig,
        TrainConfig,
    )
    from ticketlens.core.errors import (
        AnalysisError,
        ConfigError,
        DataError,
        ModelError,
        RunFormatError,
        TicketlensError,
    )
    from ticketlens.core.record import ArmRecord, Manifest, RoundRecord, Verdict
    from ticketlens.core.result import Result
    from ticketlens.core.run import Run, open_run
    from ticketlens.exporter import ExportResult
    from ticketlens.pruning.stability import StabilityCurve, StabilityResult
