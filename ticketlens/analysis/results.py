"""Attribution results: torch-free types, so views and reports read stored attribution
(``analysis/attribution.json``, written by ``ticketlens attribute --save``) without importing
torch or captum. Computed by :mod:`ticketlens.analysis.attribution`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketlens.core.errors import RunFormatError
from ticketlens.core.result import Result

if TYPE_CHECKING:
    from ticketlens.core.run import Run


def _float(v: Any) -> float:
    """A stored number: ``to_dict`` writes a missing one (NaN) as None."""
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class UnitImportanceResult(Result):
    kind: str
    importance: np.ndarray  # (layers, units) of the dense model
    alive: np.ndarray  # (layers, units) bool: alive in the ticket
    share_surviving: float  # of the dense importance, held by units alive in the ticket
    share_chance: float  # the share of units alive
    kept: np.ndarray  # (layers, units) the ticket's kept fraction of each unit's weights
    spearman_importance_kept: float  # do important units keep more of their weights?

    def _data(self) -> dict[str, Any]:
        return {"kind": self.kind, "importance": self.importance.tolist(),
                "alive": self.alive.tolist(), "kept": self.kept.tolist(),
                "share_surviving": self.share_surviving, "share_chance": self.share_chance,
                "spearman_importance_kept": self.spearman_importance_kept}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitImportanceResult:
        return cls(str(d["kind"]), np.asarray(d["importance"], dtype=float),
                   np.asarray(d["alive"], dtype=bool), _float(d["share_surviving"]),
                   _float(d["share_chance"]), np.asarray(d["kept"], dtype=float),
                   _float(d["spearman_importance_kept"]))


@dataclass(frozen=True)
class TokenAttribution(Result):
    text: str
    text_pair: str | None
    tokens: tuple[str, ...]
    target: int
    dense: tuple[float, ...]
    ticket: tuple[float, ...]
    dense_delta: float
    ticket_delta: float
    spearman: float
    topk_agreement: float
    evidence: tuple[int, ...]  # token positions that decide the label (built-in tasks)
    evidence_share_dense: float | None
    evidence_share_ticket: float | None
    evidence_chance: float | None
    regression: bool = False  # the target is the model's one output (a score), not a class

    def scaled(self, who: str) -> list[float]:
        """``dense`` or ``ticket`` attributions divided by their largest |value| (in
        [-1, 1]; all zeros stay zeros)."""
        vals = list(getattr(self, who))
        peak = max((abs(v) for v in vals), default=0.0) or 1.0
        return [v / peak for v in vals]

    @property
    def target_text(self) -> str:
        return "the score" if self.regression else f"class {self.target}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenAttribution:
        """Read back what ``to_dict`` wrote (None where a number was NaN)."""
        kinds = {f.name: f.type for f in fields(cls)}
        vals: dict[str, Any] = {}
        for k, v in d.items():
            if k not in kinds:
                continue
            if isinstance(v, list):
                v = tuple(_float(x) for x in v) if k in ("dense", "ticket") else tuple(v)
            elif v is None and kinds[k] == "float":
                v = float("nan")
            vals[k] = v
        return cls(**vals)


@dataclass(frozen=True)
class AttributionResult(Result):
    k: int
    items: tuple[TokenAttribution, ...]
    units: tuple[UnitImportanceResult, ...] = ()

    @property
    def mean_spearman(self) -> float:
        return float(np.nanmean([i.spearman for i in self.items]))

    @property
    def mean_topk_agreement(self) -> float:
        return float(np.mean([i.topk_agreement for i in self.items]))

    def evidence_means(self) -> dict[str, float] | None:
        rows = [i for i in self.items if i.evidence_share_dense is not None]
        if not rows:
            return None
        return {"dense": float(np.mean([i.evidence_share_dense for i in rows])),
                "ticket": float(np.mean([i.evidence_share_ticket for i in rows])),
                "chance": float(np.mean([i.evidence_chance for i in rows])), "n": len(rows)}

    def _data(self) -> dict[str, Any]:
        return {"k": self.k, "mean_spearman": self.mean_spearman,
                "mean_topk_agreement": self.mean_topk_agreement,
                "ground_truth": self.evidence_means(),
                "max_abs_delta": max(max(abs(i.dense_delta), abs(i.ticket_delta))
                                     for i in self.items),
                "items": list(self.items), "units": list(self.units)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributionResult:
        items = tuple(TokenAttribution.from_dict(it) for it in d.get("items", []))
        units = tuple(UnitImportanceResult.from_dict(u) for u in d.get("units", []))
        return cls(int(d.get("k", 0)), items, units)

    def unit(self, kind: str) -> UnitImportanceResult | None:
        """The unit importance of ``kind`` (``head`` or ``neuron``), if computed."""
        return next((u for u in self.units if u.kind == kind), None)


def stored_attribution(run: Run) -> AttributionResult | None:
    """The attribution ``ticketlens attribute --save`` stored in ``run``, or None."""
    path = run.paths.attribution
    return load_attribution(path) if path.is_file() else None


def load_attribution(path: str | os.PathLike[str]) -> AttributionResult:
    """Read a stored attribution; a broken file raises :class:`RunFormatError`."""
    try:
        return AttributionResult.from_dict(json.loads(open(path, encoding="utf-8").read()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RunFormatError(f"{path}: unreadable attribution ({exc})") from None
