"""The manifest of a new run: what was run, with what, on what (an artifact explains itself)."""

from __future__ import annotations

import datetime as dt
import platform
from importlib import metadata
from typing import Any

from ticketlens.core.record import FORMAT, FORMAT_VERSION, Manifest
from ticketlens.core.version import __version__

LIBRARIES = ("torch", "transformers", "tokenizers", "accelerate", "safetensors", "numpy")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def new_manifest(setup: Any) -> Manifest:
    """The record of a new run (``setup`` is a :class:`ticketlens.pruning.setup.Setup`)."""
    s = setup
    model = s.loaded
    return Manifest.from_dict({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ticketlens_version": __version__,
        "versions": library_versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "running",
        "seed": s.cfg.seed,
        "config": s.cfg.to_dict(),
        "model": {
            "name": model.name, "source": model.source, "pretrained": model.pretrained,
            "family": s.anatomy.family, "objective": s.objective,
            "num_parameters": sum(p.numel() for p in model.model.parameters()),
            "num_prunable": s.anatomy.num_prunable,
            "config": model.config_dict,
        },
        "anatomy": s.anatomy.to_dict(),
        "tokenizer": {"kind": s.tokenizer.kind, "vocab_size": s.tokenizer.vocab_size},
        "task": {**s.task.info(), "metric": s.metric,
                 "chance": s.task.chance() if s.objective == "classification" else None},
        "schedule": {
            "total_steps": s.total_steps, "lr": s.lr, "warmup": s.cfg.train.warmup,
            "batch_size": s.cfg.train.batch_size,
        },
        "rewind": {"mode": s.rewind.mode, "step": s.rewind_step, "spec": s.cfg.prune.rewind},
        "rounds": [],
        "controls": {},
        "weights": {},
        "ticket_round": None,
        "verdict": None,
    })
