"""The run record: typed, frozen views of ``manifest.json`` (format 1, docs/format.md).

Every part has ``from_dict`` (validating: a bad manifest raises :class:`RunFormatError`
naming the field) and ``to_dict`` (the on-disk JSON). Keys this version does not know are
kept in ``extra`` and written back unchanged, so a newer minor writer's fields survive a
round trip. Views and analyses read these records; nobody parses the manifest's JSON by hand.

Records are immutable: the engine makes a new one with :func:`dataclasses.replace` and hands
it to the run's one writer (``core.run.RunWriter``).
"""

# ruff: noqa: RUF009  (_f returns a dataclasses.field, which ruff cannot see)
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import RunFormatError

FORMAT = "ticketlens.run"
FORMAT_VERSION = 1

# which way each metric is better (the verdict and the sweep statistics compare by it)
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "mcc": True, "pearson": True,
                    "spearman": True, "perplexity": False}

CONTROL_NAMES = {"random_mask": "random mask", "random_reinit": "random reinit",
                 "oneshot": "one-shot magnitude", "method_magnitude": "magnitude (per matrix)",
                 "method_wanda": "Wanda", "method_sparsegpt": "SparseGPT"}


def control_label(control: str) -> str:
    """How views and messages name a control (``oneshot`` -> ``one-shot magnitude``)."""
    return CONTROL_NAMES.get(control, control.replace("_", " "))


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


def _plain(v: Any) -> Any:
    """JSON-ready copy of a value (mapping proxies and tuples become dicts and lists)."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


class _Record:
    """``from_dict`` / ``to_dict`` driven by the dataclass fields.

    A field's metadata may name its JSON key (``key``) and a record type for its value
    (``record``), a mapping of records (``record_map``) or a tuple of records
    (``record_list``). Unknown keys go to ``extra``."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "manifest") -> Any:
        if not isinstance(d, Mapping):
            raise RunFormatError(f"{where}: expected an object, got {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        known = set()
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            key = f.metadata.get("key", f.name)
            known.add(key)
            if key not in d:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise RunFormatError(f"{where}: missing '{key}'")
                continue
            v = d[key]
            try:
                kwargs[f.name] = _convert(f, v, f"{where}.{key}")
            except RunFormatError:
                raise
            except _EntryError as exc:
                raise RunFormatError(f"{where}.{key}.{exc.key}: invalid ({exc})") from None
            except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
                raise RunFormatError(f"{where}.{key}: invalid ({exc})") from None
        kwargs["extra"] = _frozen({k: v for k, v in d.items() if k not in known})
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None and f.metadata.get("omit_none"):
                continue
            key = f.metadata.get("key", f.name)
            if isinstance(v, _Record | Anatomy):
                out[key] = v.to_dict()
            elif f.metadata.get("record_map"):
                out[key] = {k: r.to_dict() for k, r in v.items()}
            elif f.metadata.get("record_list"):
                out[key] = [r.to_dict() for r in v]
            else:
                out[key] = _plain(v)
        out.update(_plain(self.extra))  # type: ignore[attr-defined]
        return out


def _convert(f: dataclasses.Field, v: Any, where: str) -> Any:
    if v is None:
        if f.default is None:  # an optional value (rewind, verdict, seed, ...)
            return None
        raise TypeError("null where a value is required")
    kind = f.metadata.get("record")
    if kind is not None:
        if kind is Anatomy:
            return Anatomy.from_dict(v)
        return kind.from_dict(v, where)
    if f.metadata.get("record_map"):
        rec = f.metadata["record_map"]
        if not isinstance(v, Mapping):
            raise RunFormatError(f"{where}: expected an object")
        return _frozen({str(k): rec.from_dict(x, f"{where}.{_shown(str(k))}")
                        for k, x in v.items()})
    if f.metadata.get("record_list"):
        rec = f.metadata["record_list"]
        if not isinstance(v, list | tuple):
            raise RunFormatError(f"{where}: expected a list")
        return tuple(rec.from_dict(x, f"{where}[{i}]") for i, x in enumerate(v))
    conv = f.metadata.get("conv")
    return conv(v) if conv is not None else v


def _shown(key: str) -> str:
    """A key as an error message shows it: quoted when it would not print on one line."""
    return key if key.isprintable() else repr(key)


def _metrics(v: Any) -> Mapping[str, float]:
    if not isinstance(v, Mapping):
        raise TypeError("metrics must be an object")
    return _frozen({str(k): (float(x) if x is not None else math.nan) for k, x in v.items()})


def _floats(v: Any) -> Mapping[str, float]:
    if not isinstance(v, Mapping):
        raise TypeError("expected an object of numbers")
    return _frozen({str(k): float(x) for k, x in v.items()})


def _bools(v: Any) -> Mapping[str, bool]:
    if not isinstance(v, Mapping):
        raise TypeError("expected an object of booleans")
    return _frozen({str(k): bool(x) for k, x in v.items()})


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _path(v: Any) -> str:
    """A file of the run, relative to its folder ("masks/round_001.safetensors"): a string
    that stays inside the run (a number, an absolute path or ``..`` is refused)."""
    if not isinstance(v, str):
        raise TypeError(f"a file path must be a string, got {type(v).__name__} {_short(v)}")
    parts = v.replace("\\", "/").split("/")
    if not v or v.startswith("/") or ":" in parts[0] or ".." in parts or "" in parts:
        raise ValueError(f"{_short(v)} is not a file path inside the run")
    return v


def _entries(v: Any, what: str, check: Any) -> Mapping[str, Any]:
    """An object whose every entry ``check(key, value)`` accepts (its result is kept); a bad
    entry is named ``field.key`` in the error."""
    if not isinstance(v, Mapping):
        raise TypeError(f"expected an object of {what}")
    out = {}
    for k, x in v.items():
        try:
            out[str(k)] = check(k, x)
        except (TypeError, ValueError) as exc:
            raise _EntryError(_shown(str(k)), str(exc)) from None
    return _frozen(out)


class _EntryError(ValueError):
    """An entry of an object field is invalid: the message names ``field.key``."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _paths(v: Any) -> Mapping[str, str]:
    """Named files of the run (``weights``: rewind, dense, ticket -> path)."""
    return _entries(v, "file paths", lambda _, x: _path(x))


HEX = frozenset("0123456789abcdef")


def _sha256(path: Any, digest: Any) -> str:
    _path(path)
    if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= HEX):
        raise ValueError(f"not a SHA-256 in hex: {_short(digest)}")
    return digest


def _hashes(v: Any) -> Mapping[str, str]:
    """``files``: each file the run wrote (path relative to the run) -> its SHA-256 (hex)."""
    return _entries(v, "file path -> SHA-256", _sha256)


def _short(v: Any) -> str:
    """A value as a one-line message shows it (at most 40 characters)."""
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _meta(key: str | None = None, **kw: Any) -> dict[str, Any]:
    return {**({"key": key} if key else {}), **kw}


def _f(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
       key: str | None = None, **kw: Any) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=_meta(key, **kw))
    return field(default=default, metadata=_meta(key, **kw))


def _empty() -> Mapping[str, Any]:
    return _frozen({})


# ----------------------------------------------------------------------------- parts
@dataclass(frozen=True)
class TaskRecord(_Record):
    name: str = _f("?", conv=str)
    source: str = _f("", conv=str)
    metric: str | None = _f(None, conv=str)
    chance: float | None = _f(None, conv=float)
    num_labels: int | None = _f(None, conv=int, omit_none=True)
    label_names: tuple[str, ...] | None = _f(None, conv=lambda v: tuple(map(str, v)),
                                             omit_none=True)
    extra: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class ModelRecord(_Record):
    name: str = _f("?", conv=str)
    source: str = _f("", conv=str)
    family: str = _f("", conv=str)
    objective: str = _f("classification", conv=str)
    pretrained: bool | None = _f(None, conv=bool, omit_none=True)
    num_parameters: int | None = _f(None, conv=int, omit_none=True)
    num_prunable: int | None = _f(None, conv=int, omit_none=True)
    config: Mapping[str, Any] = _f(factory=_empty, conv=_frozen)
    extra: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class RewindRecord(_Record):
    mode: str = _f("init", conv=str)
    step: int = _f(0, conv=int)
    spec: str = _f("", conv=str)
    weights: str | None = _f(None, conv=_path, omit_none=True)
    extra: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class RoundRecord(_Record):
    """One IMP round (round 0 = dense). ``index`` is the JSON key ``round``."""

    index: int = _f(key="round", conv=int)
    sparsity: float = _f(conv=float)
    metrics: Mapping[str, float] = _f(factory=_empty, conv=_metrics)
    steps: int = _f(0, conv=int)
    wall_time_s: float = _f(0.0, conv=float)
    sparsity_per_tensor: Mapping[str, float] = _f(factory=_empty, conv=_floats)
    pruned_fraction_of_remaining: float | None = _f(None, conv=float, omit_none=True)
    mask: str | None = _f(None, conv=_path, omit_none=True)
    # structured rounds (find --granularity head|neuron|unit): the unit masks' file and the
    # share of heads / neurons pruned
    units: str | None = _f(None, conv=_path, omit_none=True)
    unit_sparsity: Mapping[str, float] | None = _f(None, conv=_floats, omit_none=True)
    extra: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class ArmRecord(_Record):
    """A trained arm beside the IMP rounds: a control (random mask, random re-init, one-shot)
    or any registered arm. ``mask`` is set when the arm trained a mask of its own."""

    sparsity: float = _f(conv=float)
    metrics: Mapping[str, float] = _f(factory=_empty, conv=_metrics)
    steps: int = _f(0, conv=int)
    wall_time_s: float = _f(0.0, conv=float)
    ticket_round: int | None = _f(None, conv=int, omit_none=True)
    mask: str | None = _f(None, conv=_path, omit_none=True)
    units: str | None = _f(None, conv=_path, omit_none=True)
    unit_sparsity: Mapping[str, float] | None = _f(None, conv=_floats, omit_none=True)
    extra: Mapping[str, Any] = field(default_factory=_empty)

    def metric(self, name: str) -> float | None:
        v = self.metrics.get(name)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


@dataclass(frozen=True)
class Verdict(_Record):
    """Is the ticket a winning ticket (see ``pruning.verdict``)?

    ``status`` is ``winning``, ``not winning`` or ``inconclusive`` (the dense baseline is
    under-trained, or required controls are missing); ``winning`` is ``status == "winning"``.
    """

    winning: bool = _f(conv=bool)
    metric: str = _f(conv=str)
    tolerance: float = _f(conv=float)
    ticket_round: int = _f(conv=int)
    sparsity: float = _f(conv=float)
    dense: float = _f(conv=float)
    ticket: float = _f(conv=float)
    reason: str = _f("", conv=str)
    controls: Mapping[str, float] = _f(factory=_empty, conv=_floats)
    beats_controls: Mapping[str, bool] = _f(factory=_empty, conv=_bools)
    matches_dense: bool = _f(False, conv=bool)
    chance: float | None = _f(None, conv=float, omit_none=True)
    dense_learned: bool | None = _f(None, conv=bool, omit_none=True)
    dense_under_trained: bool | None = _f(None, conv=bool, omit_none=True)
    control_margin: float | None = _f(None, conv=float, omit_none=True)
    status: str | None = _f(None, conv=str, omit_none=True)
    extra: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def state(self) -> str:
        """``winning``, ``not winning`` or ``inconclusive`` (verdicts written before wave 2
        carry no status: winning or not)."""
        return self.status or ("winning" if self.winning else "not winning")

    @property
    def label(self) -> str:
        """``WINNING TICKET``, ``NO WINNING TICKET`` or ``INCONCLUSIVE``."""
        return {"winning": "WINNING TICKET", "inconclusive": "INCONCLUSIVE"}.get(
            self.state, "NO WINNING TICKET")


# ----------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class Manifest(_Record):
    """Everything about a run but its tensors. ``config`` is the ``FindConfig`` as a dict
    (absent for imported runs): ``ticketlens.core.config.FindConfig.from_dict`` types it."""

    anatomy: Anatomy = _f(record=Anatomy)
    rounds: tuple[RoundRecord, ...] = _f(factory=tuple, record_list=RoundRecord)
    format: str = _f(FORMAT, conv=str)
    format_version: int = _f(FORMAT_VERSION, conv=int)
    ticketlens_version: str = _f("", conv=str)
    versions: Mapping[str, str] = _f(factory=_empty, conv=_frozen)
    created: str = _f("", conv=str)
    status: str = _f("running", conv=str)
    seed: int | None = _f(None, conv=int)
    mask_kind: str | None = _f(None, conv=str, omit_none=True)
    config: Mapping[str, Any] = _f(factory=_empty, conv=_frozen, omit_none=True)
    model: ModelRecord = _f(factory=ModelRecord, record=ModelRecord)
    tokenizer: Mapping[str, Any] | None = _f(None, conv=_frozen, omit_none=True)
    task: TaskRecord = _f(factory=TaskRecord, record=TaskRecord)
    schedule: Mapping[str, Any] | None = _f(None, conv=_frozen, omit_none=True)
    rewind: RewindRecord | None = _f(None, record=RewindRecord, omit_none=True)
    controls: Mapping[str, ArmRecord] = _f(factory=_empty, record_map=ArmRecord)
    weights: Mapping[str, str] = _f(factory=_empty, conv=_paths)
    ticket_round: int | None = _f(None, conv=int)
    verdict: Verdict | None = _f(None, record=Verdict)
    # how the last session ran: torch threads, cores available, OMP_NUM_THREADS, processes
    runtime: Mapping[str, Any] | None = _f(None, conv=_frozen, omit_none=True)
    # the SHA-256 of every file the run wrote (path -> hex), kept by ``core.run.RunWriter``;
    # None in runs written before ticketlens recorded them (``verify`` says so)
    files: Mapping[str, str] | None = _f(None, conv=_hashes, omit_none=True)
    extra: Mapping[str, Any] = field(default_factory=_empty)

    @classmethod
    def read(cls, d: Any, where: str) -> Manifest:
        """Validate the format header, then build the record (errors name ``where``)."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise RunFormatError(f"{where}: not a ticketlens run manifest")
        try:
            version = int(d.get("format_version", 0))
        except (TypeError, ValueError, OverflowError):
            raise RunFormatError(f"{where}: invalid format_version") from None
        if version > FORMAT_VERSION:
            raise RunFormatError(
                f"{where}: run format {version} is newer than this ticketlens reads "
                f"({FORMAT_VERSION}); upgrade ticketlens")
        for key in ("anatomy", "rounds"):
            if key not in d:
                raise RunFormatError(f"{where}: manifest has no '{key}'")
        try:
            m = cls.from_dict(d, where)
        except RunFormatError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RunFormatError(f"{where}: invalid manifest ({exc})") from None
        if m.rounds and m.rounds[0].index != 0:
            raise RunFormatError(f"{where}: the first round is not round 0")
        if len({r.index for r in m.rounds}) != len(m.rounds):
            raise RunFormatError(f"{where}: a round is recorded twice")
        return m

    # ------------------------------------------------------------------ conveniences
    def round(self, index: int) -> RoundRecord:
        for r in self.rounds:
            if r.index == index:
                return r
        raise RunFormatError(f"manifest has no round {index}")

    @property
    def metric(self) -> str:
        return self.task.metric or "accuracy"

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def with_round(self, rec: RoundRecord) -> Manifest:
        rounds = (*(r for r in self.rounds if r.index != rec.index), rec)
        return dataclasses.replace(self, rounds=tuple(sorted(rounds, key=lambda r: r.index)))

    def with_arm(self, name: str, rec: ArmRecord) -> Manifest:
        return dataclasses.replace(self, controls=_frozen({**self.controls, name: rec}))

    def with_extra(self, **items: Any) -> Manifest:
        return dataclasses.replace(self, extra=_frozen({**self.extra, **items}))
