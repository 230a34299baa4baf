"""The run directory: the only module that knows its file names (format version 1).

::

    RUN/
      manifest.json                  everything but tensors (see docs/format.md)
      tokenizer.json                 the tokenizer used (HF tokenizers JSON), when built-in
      masks/round_000.safetensors    bit-packed masks, one file per IMP round (0 = dense)
      masks/control_random_mask.safetensors  (and control_oneshot.safetensors)
      weights/rewind.safetensors     the rewind point
      weights/round_000.safetensors  the trained dense model
      weights/round_NNN.safetensors  the trained ticket (the manifest's weights.ticket)

``open_run(path)`` is the public, read-only way in. Writers (the engine, importers) go through
:class:`RunPaths` and :func:`write_manifest`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import RunFormatError
from ticketlens.core.io import write_json_atomic
from ticketlens.core.masks import Masks, load_masks

CONTROL_NAMES = {"random_mask": "random mask", "random_reinit": "random reinit",
                 "oneshot": "one-shot magnitude"}


def control_label(control: str) -> str:
    """How views and messages name a control (``oneshot`` -> ``one-shot magnitude``)."""
    return CONTROL_NAMES.get(control, control.replace("_", " "))

FORMAT = "ticketlens.run"
FORMAT_VERSION = 1


class RunPaths:
    """File names inside a run directory."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer.json"

    @property
    def attribution(self) -> Path:
        return self.root / "analysis" / "attribution.json"

    def mask(self, round_index: int) -> Path:
        return self.root / "masks" / f"round_{round_index:03d}.safetensors"

    def control_mask(self, control: str) -> Path:
        return self.root / "masks" / f"control_{control}.safetensors"

    def weights(self, what: str | int) -> Path:
        """``"rewind"`` or a round index."""
        name = what if isinstance(what, str) else f"round_{what:03d}"
        return self.root / "weights" / f"{name}.safetensors"

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    paths = RunPaths(root)
    if not paths.root.exists():
        raise RunFormatError(f"{paths.root}: no such run directory")
    if not paths.manifest.is_file():
        raise RunFormatError(f"{paths.root}: not a ticketlens run (no manifest.json)")
    try:
        manifest = json.loads(paths.manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFormatError(f"{paths.manifest}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RunFormatError(f"{paths.manifest}: not a ticketlens run manifest")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise RunFormatError(
            f"{paths.root}: run format {manifest['format_version']} is newer than this "
            f"ticketlens reads ({FORMAT_VERSION}); upgrade ticketlens"
        )
    for key in ("anatomy", "rounds"):
        if key not in manifest:
            raise RunFormatError(f"{paths.manifest}: manifest has no '{key}'")
    return manifest


def write_manifest(root: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
    write_json_atomic(RunPaths(root).manifest, manifest)


def is_run(path: str | os.PathLike[str]) -> bool:
    return RunPaths(path).manifest.is_file()


def find_runs(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` itself when it is a run, else the runs below it (sorted), else an error."""
    p = Path(path)
    if is_run(p):
        return [p]
    if not p.is_dir():
        raise RunFormatError(f"{p}: no such run directory")
    runs = sorted(m.parent for m in p.rglob("manifest.json") if is_run(m.parent))
    if not runs:
        raise RunFormatError(f"{p}: not a ticketlens run and holds none")
    return runs


@dataclass(frozen=True)
class RoundInfo:
    index: int
    sparsity: float
    metrics: dict[str, float]
    steps: int
    wall_time_s: float
    sparsity_per_tensor: dict[str, float]


class Run:
    """A run directory opened read-only. Masks are loaded lazily and cached."""

    def __init__(self, root: str | os.PathLike[str]):
        self.paths = RunPaths(root)
        self.manifest = read_manifest(root)
        self._masks: dict[Any, Masks] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, rounds={len(self.rounds)})"

    @property
    def path(self) -> Path:
        return self.paths.root

    @property
    def name(self) -> str:
        return self.paths.root.name

    @cached_property
    def anatomy(self) -> Anatomy:
        try:
            return Anatomy.from_dict(self.manifest["anatomy"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFormatError(f"{self.paths.manifest}: invalid anatomy ({exc})") from None

    @property
    def task(self) -> str:
        return str(self.manifest.get("task", {}).get("name", "?"))

    @property
    def model_name(self) -> str:
        return str(self.manifest.get("model", {}).get("name", "?"))

    @property
    def seed(self) -> int | None:
        return self.manifest.get("seed")

    @property
    def metric(self) -> str:
        return str(self.manifest.get("task", {}).get("metric", "accuracy"))

    @cached_property
    def rounds(self) -> list[RoundInfo]:
        return [
            RoundInfo(
                index=int(r["round"]),
                sparsity=float(r["sparsity"]),
                metrics=dict(r.get("metrics", {})),
                steps=int(r.get("steps", 0)),
                wall_time_s=float(r.get("wall_time_s", 0.0)),
                sparsity_per_tensor=dict(r.get("sparsity_per_tensor", {})),
            )
            for r in self.manifest["rounds"]
        ]

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"

    @property
    def controls(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest.get("controls", {}))

    @property
    def verdict(self) -> dict[str, Any] | None:
        return self.manifest.get("verdict")

    @property
    def ticket_round(self) -> int:
        tr = self.manifest.get("ticket_round")
        return int(tr) if tr is not None else self.rounds[-1].index

    @property
    def structured(self) -> bool:
        """True for runs whose mask files hold head/FFN masks (imported structured masks)."""
        return self.manifest.get("mask_kind", "weights") == "structured"

    def _round(self, round_index: int | None) -> int:
        r = self.ticket_round if round_index is None else round_index
        if r < 0:
            r = self.rounds[r].index
        if not any(ri.index == r for ri in self.rounds):
            raise RunFormatError(f"{self.path}: has no round {r}")
        return r

    def _structured(self, r: int) -> Masks:
        key = ("structured", r)
        if key not in self._masks:
            a = self.anatomy
            self._masks[key] = load_masks(
                self.paths.mask(r), expected={"heads": (a.num_layers, a.num_heads),
                                              "ffn": (a.num_layers,)})
        return self._masks[key]

    @property
    def ticket(self) -> RoundInfo:
        """The ticket round's info (sparsity, metrics, ...)."""
        return next((r for r in self.rounds if r.index == self.ticket_round), self.rounds[-1])

    def control_metric(self, control: str) -> float | None:
        """The run's metric for a control (``random_mask``, ``random_reinit``, ``oneshot``),
        if run."""
        c = self.controls.get(control)
        return None if c is None else c.get("metrics", {}).get(self.metric)

    def mask(self, round_index: int | None = None) -> Masks:
        """Boolean weight masks of a round (default: the ticket round), keyed by parameter
        name and validated against the run's anatomy."""
        r = self._round(round_index)
        if r not in self._masks:
            if self.structured:
                from ticketlens.core.structure import expand_structured

                sm = self._structured(r)
                self._masks[r] = expand_structured(self.anatomy, sm["heads"], sm["ffn"])
            else:
                self._masks[r] = load_masks(self.paths.mask(r), expected=self.anatomy.shapes)
        return self._masks[r]

    def packed_mask(self, round_index: int | None = None) -> dict[str, Any]:
        """The round's weight masks bit-packed (``numpy.packbits`` per tensor, as on disk);
        read without unpacking for weight-mask runs (the fast path of overlap analyses)."""
        from ticketlens.core.masks import load_packed, pack

        r = self._round(round_index)
        if self.structured or r in self._masks:
            return {n: pack(m) for n, m in self.mask(r).items()}
        return load_packed(self.paths.mask(r), expected=self.anatomy.shapes)

    def units(self, round_index: int | None = None):
        """:class:`~ticketlens.core.structure.UnitMasks` (alive heads, neurons, FFN blocks)."""
        from ticketlens.core.structure import UnitMasks, unit_masks

        r = self._round(round_index)
        key = ("units", r)
        if key not in self._masks:
            if self.structured:
                sm = self._structured(r)
                neuron = sm["ffn"][:, None].expand(-1, self.anatomy.intermediate).clone()
                self._masks[key] = UnitMasks(sm["heads"], neuron, sm["ffn"])  # type: ignore
            else:
                self._masks[key] = unit_masks(self.anatomy, self.mask(r))  # type: ignore
        return self._masks[key]

    def control_mask(self, control: str) -> Masks:
        key = ("control", control)
        if key not in self._masks:
            self._masks[key] = load_masks(
                self.paths.control_mask(control), expected=self.anatomy.shapes
            )
        return self._masks[key]

    @property
    def has_weights(self) -> bool:
        w = self.manifest.get("weights") or {}
        return bool(w) and all((self.path / rel).is_file() for rel in w.values())

    def weights(self, which: str = "ticket") -> dict[str, torch.Tensor]:
        """State dict of ``"rewind"``, ``"dense"`` or ``"ticket"`` (safetensors, no pickle)."""
        from safetensors.torch import load_file

        rel = (self.manifest.get("weights") or {}).get(which)
        if rel is None:
            raise RunFormatError(
                f"{self.path}: this run has no {which} weights (imported masks carry none); "
                "this analysis needs a run made by `ticketlens find`"
            )
        path = self.path / rel
        if not path.is_file():
            raise RunFormatError(f"{path}: weights file missing")
        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors' own error types
            raise RunFormatError(f"{path}: corrupt weights file ({exc})") from None


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run directory written by ``ticketlens find`` or ``ticketlens import``."""
    return Run(path)
