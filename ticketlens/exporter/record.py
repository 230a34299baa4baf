"""What an export folder records about itself: ``ticketlens.json`` and :class:`ExportResult`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketlens.core.errors import RunFormatError
from ticketlens.core.result import Result
from ticketlens.core.run import Run

EXPORT_FORMAT = "ticketlens.exporter"
META = "ticketlens.json"


@dataclass(frozen=True)
class ExportResult(Result):
    """What ``export`` wrote. ``heads_kept``/``neurons_kept`` count the units that still
    contribute (all of them when not sliced; silent units kept only to pad GQA groups are
    listed per layer in ``ticketlens.json``). Sizes count every parameter (tied ones once);
    bytes are those of the parameters and of the written ``model*.safetensors``."""

    path: str
    run: str
    round: int
    sparsity: float
    sliced: bool
    stock_loadable: bool
    heads_kept: int
    heads_total: int
    neurons_kept: int
    neurons_total: int
    parameters: int
    dense_parameters: int
    parameter_bytes: int
    dense_parameter_bytes: int
    file_bytes: int
    max_abs_diff: float
    tokenizer: bool


def meta_record(run: Run, result: ExportResult, plans) -> dict[str, Any]:
    """The ``ticketlens.json`` of an export (``plans``: the layers' plans when sliced)."""
    import torch
    import transformers

    from ticketlens.core.version import __version__

    info = run.manifest.model
    return {
        "format": EXPORT_FORMAT, "format_version": 1, "ticketlens_version": __version__,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "run": str(run.path.resolve()), "run_name": run.name, "round": result.round,
        "ticket_round": run.ticket_round, "task": run.task, "model": info.name,
        "family": info.family, "objective": info.objective, "sparsity": result.sparsity,
        "sliced": result.sliced, "stock_loadable": result.stock_loadable,
        "units": {"heads": {"kept": result.heads_kept, "total": result.heads_total},
                  "neurons": {"kept": result.neurons_kept, "total": result.neurons_total}},
        "parameters": {"exported": result.parameters, "dense": result.dense_parameters},
        "parameter_bytes": {"exported": result.parameter_bytes,
                            "dense": result.dense_parameter_bytes},
        "file_bytes": result.file_bytes, "max_abs_diff": result.max_abs_diff,
        # per layer: the original indices of the heads, K/V heads and neurons kept, in order
        "layers": [p.units.to_dict() for p in plans] if plans else None,
    }


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``ticketlens.json`` of an export folder, checked (one-line errors)."""
    path = folder / META
    if not folder.is_dir():
        raise RunFormatError(f"{folder}: no such folder")
    if not path.is_file():
        raise RunFormatError(f"{folder}: not written by `ticketlens export` (no {META})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFormatError(f"{path}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise RunFormatError(f"{path}: not a ticketlens export record")
    return meta
