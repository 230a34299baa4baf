"""The run directory: the only module that knows its file names (format version 1).

::

    RUN/
      manifest.json                  everything but tensors (see docs/format.md)
      tokenizer.json                 the tokenizer used (HF tokenizers JSON), when built-in
      masks/round_000.safetensors    bit-packed masks, one file per IMP round (0 = dense)
      masks/control_random_mask.safetensors  (and control_oneshot.safetensors)
      masks/round_NNN.units.safetensors  structured rounds: the unit masks drawn (heads
                                     (layers, heads), neurons (layers, ffn)), 1-bit
      weights/rewind.safetensors     the rewind point
      weights/round_000.safetensors  the trained dense model
      weights/round_NNN.safetensors  the trained ticket (the manifest's weights.ticket)
      compress.json                  `ticketlens compress`: the 8-cell table (optional)
      analysis/attribution.json      `ticketlens attribute --save` (optional)
      analysis/stability.json        `ticketlens stability`: error barriers by round (optional)
      analysis/roles.json            `ticketlens roles --save` (optional)
      analysis/circuit.json          `ticketlens circuit --save`: the ablation table (optional)

The manifest's ``files`` records the SHA-256 of every other file the run wrote (the writer
hashes the bytes it writes); ``verify`` checks them, and every mask reader checks the kept
counts against the recorded sparsity, so a file changed afterwards is named.

``open_run(path)`` is the public, read-only way in; it needs numpy and safetensors only
(torch is imported by :meth:`Run.weights` alone). :class:`RunWriter` is the only code that
creates or changes a run directory: the engine, transfer, importers and ``attribute`` write
through it, every file atomically (``core.io``), mask files byte-reproducibly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import RunFormatError
from ticketlens.core.io import TMP_PREFIX, json_bytes, write_bytes_atomic, write_json_atomic
from ticketlens.core.masks import Masks, load_masks, mask_file_bytes
from ticketlens.core.record import (
    CONTROL_NAMES,
    FORMAT,
    FORMAT_VERSION,
    ArmRecord,
    Manifest,
    RoundRecord,
    Verdict,
    control_label,
)

if TYPE_CHECKING:
    import torch

__all__ = ["CONTROL_NAMES", "FORMAT", "FORMAT_VERSION", "Run", "RunPaths", "RunWriter",
           "control_label", "find_runs", "is_run", "open_run", "read_manifest"]

RoundInfo = RoundRecord  # the name of wave 1


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

    @property
    def stability(self) -> Path:
        """``ticketlens stability``'s record (``pruning.stability``), one entry per round."""
        return self.root / "analysis" / "stability.json"

    @property
    def roles(self) -> Path:
        """``ticketlens roles --save``: head roles and survival by role."""
        return self.root / "analysis" / "roles.json"

    @property
    def circuit(self) -> Path:
        """``ticketlens circuit --save``'s table (``analysis.circuit.CircuitResult``)."""
        return self.root / "analysis" / "circuit.json"

    @property
    def compress(self) -> Path:
        """``ticketlens compress``'s table (``compress.result.CompressResult``)."""
        return self.root / "compress.json"

    def mask(self, round_index: int) -> Path:
        return self.root / "masks" / f"round_{round_index:03d}.safetensors"

    def control_mask(self, control: str) -> Path:
        return self.root / "masks" / f"control_{control}.safetensors"

    def units(self, where: int | str) -> Path:
        """The unit masks of a structured round (an int) or control (a name)."""
        stem = f"round_{where:03d}" if isinstance(where, int) else f"control_{where}"
        return self.root / "masks" / f"{stem}.units.safetensors"

    def weights(self, what: str | int) -> Path:
        """``"rewind"`` or a round index."""
        name = what if isinstance(what, str) else f"round_{what:03d}"
        return self.root / "weights" / f"{name}.safetensors"

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def partial_files(self) -> list[Path]:
        """The ``.tmp-*`` files writes killed before their rename left (readers ignore them)."""
        return [p for d in (self.root, self.root / "masks", self.root / "weights")
                if d.is_dir() for p in d.glob(f"{TMP_PREFIX}*")]


def read_manifest(root: str | os.PathLike[str]) -> Manifest:
    """The typed manifest of the run at ``root`` (errors name the file and the field)."""
    paths = RunPaths(root)
    if not paths.root.exists():
        raise RunFormatError(f"{paths.root}: no such run directory")
    if not paths.manifest.is_file():
        raise RunFormatError(f"{paths.root}: not a ticketlens run (no manifest.json)")
    try:  # ValueError: bad JSON, or an integer of over 4,300 digits
        data = json.loads(paths.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise RunFormatError(f"{paths.manifest}: unreadable manifest ({exc})") from None
    if _depth(data) > MAX_DEPTH:  # JSON allows ~1000 levels; copying or printing them fails
        raise RunFormatError(f"{paths.manifest}: nested deeper than {MAX_DEPTH} levels")
    return Manifest.read(data, str(paths.manifest))


MAX_DEPTH = 32  # a manifest written by ticketlens nests 5 levels deep


def _depth(value: Any) -> int:
    """How deeply JSON lists and objects nest in ``value`` (0 for a scalar)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d + 1)
            todo.extend((c, d + 1) for c in v)
    return deepest


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


class Run:
    """A run directory opened read-only. Masks are loaded lazily and cached."""

    def __init__(self, root: str | os.PathLike[str]):
        self.paths = RunPaths(root)
        self.manifest: Manifest = read_manifest(root)
        self._masks: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, rounds={len(self.rounds)})"

    @property
    def path(self) -> Path:
        return self.paths.root

    @property
    def name(self) -> str:
        return self.paths.root.name

    @property
    def anatomy(self) -> Anatomy:
        return self.manifest.anatomy

    @property
    def task(self) -> str:
        return self.manifest.task.name

    @property
    def model_name(self) -> str:
        return self.manifest.model.name

    @property
    def seed(self) -> int | None:
        return self.manifest.seed

    @property
    def metric(self) -> str:
        return self.manifest.metric

    @property
    def rounds(self) -> tuple[RoundRecord, ...]:
        return self.manifest.rounds

    @property
    def complete(self) -> bool:
        return self.manifest.complete

    @property
    def controls(self) -> Mapping[str, ArmRecord]:
        return self.manifest.controls

    @property
    def verdict(self) -> Verdict | None:
        return self.manifest.verdict

    @property
    def ticket_round(self) -> int:
        tr = self.manifest.ticket_round
        return int(tr) if tr is not None else self.rounds[-1].index

    @property
    def structured(self) -> bool:
        """True for runs whose mask files hold head/FFN masks (imported structured masks)."""
        return (self.manifest.mask_kind or "weights") == "structured"

    def round_index(self, round_index: int | None = None) -> int:
        """A round given as None (the ticket), a negative index or a round number, checked."""
        if not self.rounds:
            raise RunFormatError(f"{self.path}: has no rounds yet")
        r = self.ticket_round if round_index is None else round_index
        if -len(self.rounds) <= r < 0:
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
    def ticket(self) -> RoundRecord:
        """The ticket round's record (sparsity, metrics, ...)."""
        if not self.rounds:
            raise RunFormatError(f"{self.path}: has no rounds yet")
        return next((r for r in self.rounds if r.index == self.ticket_round), self.rounds[-1])

    def control_metric(self, control: str) -> float | None:
        """The run's metric for a control (``random_mask``, ``random_reinit``, ``oneshot``),
        if run."""
        c = self.controls.get(control)
        return None if c is None else c.metric(self.metric)

    def mask(self, round_index: int | None = None) -> Masks:
        """Boolean weight masks (numpy) of a round (default: the ticket round), keyed by
        parameter name and validated against the run's anatomy."""
        r = self.round_index(round_index)
        if r not in self._masks:
            if self.structured:
                from ticketlens.core.structure import expand_structured

                sm = self._structured(r)
                masks = expand_structured(self.anatomy, sm["heads"], sm["ffn"])
                per_tensor = None  # structured imports record the expanded total only
            else:
                masks = load_masks(self.paths.mask(r), expected=self.anatomy.shapes)
                per_tensor = self._round(r).sparsity_per_tensor
            # the cheap check every reader makes: the kept counts are the recorded ones
            check_kept_counts(self.paths.mask(r), masks, self._round(r).sparsity, per_tensor)
            self._masks[r] = masks
        return self._masks[r]

    def _round(self, r: int) -> RoundRecord:
        return next(x for x in self.rounds if x.index == r)

    def packed_mask(self, round_index: int | None = None) -> dict[str, Any]:
        """The round's weight masks bit-packed (``numpy.packbits`` per tensor, as on disk);
        read without unpacking for weight-mask runs (the fast path of overlap analyses)."""
        from ticketlens.core.masks import load_packed, pack

        r = self.round_index(round_index)
        if self.structured or r in self._masks:
            return {n: pack(m) for n, m in self.mask(r).items()}
        packed = load_packed(self.paths.mask(r), expected=self.anatomy.shapes)
        check_kept_counts(self.paths.mask(r), packed, self._round(r).sparsity,
                          self._round(r).sparsity_per_tensor, shapes=self.anatomy.shapes)
        return packed

    def read_packed_into(self, out: dict[str, Any], round_index: int | None = None) -> None:
        """:meth:`packed_mask` written into ``out`` (name -> ``uint8`` buffer of the packed
        size): straight from the file for weight-mask runs (no copy), else packed."""
        from ticketlens.core.masks import read_packed_into

        r = self.round_index(round_index)
        if self.structured or r in self._masks:
            for name, packed in self.packed_mask(r).items():
                out[name][...] = packed
        else:
            read_packed_into(self.paths.mask(r), out, expected=self.anatomy.shapes)
            rec = self._round(r)  # the cheap check every reader makes
            check_kept_counts(self.paths.mask(r), {n: out[n] for n in self.anatomy.shapes},
                              rec.sparsity, rec.sparsity_per_tensor, shapes=self.anatomy.shapes)

    def units(self, round_index: int | None = None):
        """:class:`~ticketlens.core.structure.UnitMasks` (alive heads, neurons, FFN blocks)."""
        import numpy as np

        from ticketlens.core.structure import UnitMasks, unit_masks

        r = self.round_index(round_index)
        key = ("units", r)
        rec = next(x for x in self.rounds if x.index == r)
        if key not in self._masks and rec.units:
            drawn = self.drawn_units(r)
            assert drawn is not None
            head, neuron = drawn
            self._masks[key] = UnitMasks(head, neuron, neuron.any(axis=1))
        if key not in self._masks:
            if self.structured:
                sm = self._structured(r)
                neuron = np.repeat(sm["ffn"][:, None], self.anatomy.intermediate, axis=1)
                self._masks[key] = UnitMasks(sm["heads"], neuron, sm["ffn"])
            else:
                self._masks[key] = unit_masks(self.anatomy, self.mask(r))
        return self._masks[key]

    def drawn_units(self, round_index: int | None = None) -> tuple[Any, Any] | None:
        """The (head, neuron) unit masks a structured round was drawn with (True = kept),
        as recorded; ``None`` for weight-granularity rounds."""
        r = self.round_index(round_index)
        rec = next(x for x in self.rounds if x.index == r)
        if not rec.units:
            return None
        key = ("drawn", r)
        if key not in self._masks:
            a = self.anatomy
            m = load_masks(self.paths.units(r), expected={
                "head": (a.num_layers, a.num_heads), "neuron": (a.num_layers, a.intermediate)})
            self._masks[key] = (m["head"], m["neuron"])
        return self._masks[key]

    def control_mask(self, control: str) -> Masks:
        key = ("control", control)
        if key not in self._masks:
            path = self.paths.control_mask(control)
            masks = load_masks(path, expected=self.anatomy.shapes)
            arm = self.controls.get(control)
            if arm is not None and arm.mask is not None:
                check_kept_counts(path, masks, arm.sparsity, None)
            self._masks[key] = masks
        return self._masks[key]

    @property
    def has_weights(self) -> bool:
        w = self.manifest.weights
        return bool(w) and all((self.path / rel).is_file() for rel in w.values())

    def weights(self, which: str = "ticket") -> dict[str, torch.Tensor]:
        """State dict of ``"rewind"``, ``"dense"`` or ``"ticket"`` (safetensors, no pickle)."""
        from safetensors.torch import load_file

        rel = self.manifest.weights.get(which)
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


def _popcount(packed: Any) -> int:
    """Set bits of a bit-packed mask, counted in 16 MiB blocks (little memory at any size),
    8 bytes at a time (5x faster than byte by byte: `compare` counts every ticket's bits)."""
    flat = np.asarray(packed, dtype=np.uint8).reshape(-1)
    whole = flat.size // 8 * 8
    words = flat[:whole].view(np.uint64)
    step = 1 << 21  # words: a block's count < 2**27 fits the uint32 sum
    return sum(int(np.bitwise_count(words[i:i + step]).sum(dtype=np.uint32))
               for i in range(0, words.size, step)) + int(np.bitwise_count(flat[whole:]).sum())


def check_kept_counts(where: Path, masks: Mapping[str, Any], sparsity: float | None,
                      per_tensor: Mapping[str, float] | None, *,
                      shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """Raise :class:`RunFormatError` naming ``where`` unless the masks keep as many weights,
    in all and per tensor, as the recorded sparsity says. ``shapes`` given: the masks are
    bit-packed (``Run.packed_mask``). Recorded sparsities are exact counts as float64, so
    the kept count is recovered exactly (up to 2**52 weights)."""
    kept, total = {}, {}
    for name, m in masks.items():
        if shapes is None:
            kept[name], total[name] = int(np.count_nonzero(m)), int(np.size(m))
        else:
            kept[name] = _popcount(m)
            total[name] = math.prod(shapes[name])
    all_kept, all_total = sum(kept.values()), sum(total.values())
    if sparsity is not None and round((1.0 - float(sparsity)) * all_total) != all_kept:
        raise RunFormatError(
            f"{where}: the mask keeps {all_kept:,} of {all_total:,} weights, the manifest "
            f"records {float(sparsity):.6%} sparse ({round((1.0 - float(sparsity)) * all_total):,}"
            " kept): the file or the manifest was changed after the run wrote it")
    for name, recorded in (per_tensor or {}).items():
        if name not in kept:
            raise RunFormatError(f"{where}: the manifest records sparsity of {name}, which "
                                 "the mask does not hold")
        if round((1.0 - float(recorded)) * total[name]) != kept[name]:
            raise RunFormatError(
                f"{where}: {name} keeps {kept[name]:,} of {total[name]:,} weights, the "
                f"manifest records {float(recorded):.6%} sparse")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run directory written by ``ticketlens find`` or ``ticketlens import``."""
    return Run(path)


class RunWriter:
    """The only code that creates or changes a run directory.

    Every file is written atomically and its SHA-256 kept: the next manifest written records
    it (``files``). A file written after the run (``attribute --save``, ``compress``) goes
    through :meth:`file`, which records its hash in the manifest on disk at once.
    ``main=False`` (the other ranks under torchrun) makes every write a no-op that still
    returns the file's relative path, so all ranks keep the same record."""

    def __init__(self, root: str | os.PathLike[str], *, main: bool = True):
        self.paths = RunPaths(root)
        self.main = main
        self._hashes: dict[str, str] = {}  # files this writer wrote: path -> SHA-256

    @property
    def root(self) -> Path:
        return self.paths.root

    def clear(self) -> None:
        """Delete the run (``--overwrite``)."""
        if self.main and self.root.exists():
            shutil.rmtree(self.root)
        self._hashes.clear()

    def _write(self, path: Path, data: bytes) -> str:
        rel = self.paths.rel(path)
        if self.main:
            write_bytes_atomic(path, data)
            self._hashes[rel] = hashlib.sha256(data).hexdigest()
        return rel

    def manifest(self, manifest: Manifest) -> None:
        """Write ``manifest`` with ``files``: the hashes it carries and those of the files
        this writer wrote, less the files no longer there (removed weights)."""
        if self.main:
            files = {**(manifest.files or {}), **self._hashes}
            files = {k: v for k, v in sorted(files.items()) if (self.root / k).is_file()}
            write_json_atomic(self.paths.manifest,
                              dataclasses.replace(manifest, files=files).to_dict())

    def file(self, path: str | os.PathLike[str], data: bytes) -> str:
        """A file of the run written after it (an analysis, a table): written atomically and
        its hash recorded in the manifest on disk (a run written before ticketlens recorded
        hashes stays without them). ``path``: in the run; returns it relative to the run."""
        p = Path(path)
        rel = self._write(p if p.is_relative_to(self.root) else self.root / p, data)
        if self.main and self.paths.manifest.is_file():
            m = read_manifest(self.root)
            if m.files is not None:
                files = {**m.files, rel: self._hashes[rel]}
                write_json_atomic(self.paths.manifest,
                                  dataclasses.replace(m, files=dict(sorted(files.items())))
                                  .to_dict())
        return rel

    def mask(self, where: int | str, masks: Mapping[str, Any], **meta: str) -> str:
        """Round ``where`` (an int) or control ``where`` (a name); returns the relative path."""
        path = self.paths.mask(where) if isinstance(where, int) else \
            self.paths.control_mask(where)
        tag = {"round": str(where)} if isinstance(where, int) else {"control": where}
        data = mask_file_bytes(masks, **tag, **meta) if self.main else b""
        return self._write(path, data)

    def units(self, where: int | str, head: Any, neuron: Any) -> str:
        """The unit masks (True = kept) of a structured round or control; the relative path."""
        path = self.paths.units(where)
        tag = {"round": str(where)} if isinstance(where, int) else {"control": where}
        data = mask_file_bytes({"head": head, "neuron": neuron}, kind="units", **tag) \
            if self.main else b""
        return self._write(path, data)

    def weights(self, what: str | int, state: Mapping[str, Any]) -> str:
        """A state dict (torch tensors) as safetensors; returns the relative path."""
        path = self.paths.weights(what)
        if not self.main:
            return self.paths.rel(path)
        from safetensors.torch import save

        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        return self._write(path, save(tensors, metadata={"format": "ticketlens.weights"}))

    def remove_partial(self) -> None:
        """Delete what killed writes left (``.tmp-*``): a resumed run ends without them."""
        if self.main:
            for p in self.paths.partial_files():
                p.unlink(missing_ok=True)

    def remove_weights(self, rounds: list[int], keep: set[int]) -> None:
        if self.main:
            for r in rounds:
                if r not in keep:
                    self.paths.weights(r).unlink(missing_ok=True)
                    self._hashes.pop(self.paths.rel(self.paths.weights(r)), None)

    def tokenizer(self, tokenizer: Any) -> str:
        """``tokenizer.save(path)`` (a ``TextTokenizer``) into the run."""
        rel = self.paths.rel(self.paths.tokenizer)
        if self.main:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            tokenizer.save(self.paths.tokenizer)
            self._hashes[rel] = sha256_file(self.paths.tokenizer)
        return rel

    def attribution(self, data: Mapping[str, Any]) -> Path:
        self.file(self.paths.attribution, json_bytes(data))
        return self.paths.attribution

    def circuit(self, data: Mapping[str, Any]) -> Path:
        self.file(self.paths.circuit, json_bytes(data))
        return self.paths.circuit

    def stability(self, data: Mapping[str, Any]) -> Path:
        self.file(self.paths.stability, json_bytes(data))
        return self.paths.stability

    def roles(self, data: Mapping[str, Any]) -> Path:
        self.file(self.paths.roles, json_bytes(data))
        return self.paths.roles
