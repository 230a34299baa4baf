"""Fuzzing the readers: run manifests, mask files and every import format (hypothesis).

The property, for any input: a reader returns a sane result (masks of the declared shapes, the
masks that were imported) or raises a one-line :class:`RunFormatError` naming the file; the
CLI exits 0, or 2 with one line ``ticketlens: error: ...`` on stderr. Never a traceback, an
``internal error`` (exit 1), a hang, a large allocation or an unpickled object.

Each family draws real files mutated (bytes flipped, truncated, JSON fields replaced), files
built from odd parts, and plain random bytes. This default run is short; ``make fuzz``
(``tests/fuzz/fuzz_readers.py``) runs the same properties on over 10,000 inputs. Every bug
the fuzzing found is kept below as a named regression input (``*_REGRESSIONS``; the few marked
"held" are the brief's edge cases, which passed before).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import pickle
import re
import shutil
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from conftest import SAMPLE_MASKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as st_save

from ticketlens.cli.main import main
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import RunFormatError
from ticketlens.core.io import safetensors_bytes
from ticketlens.core.masks import (
    MASK_FORMAT,
    load_masks,
    load_packed,
    mask_file_bytes,
    read_packed_into,
    save_masks,
    unpack,
)
from ticketlens.core.run import open_run

SAMPLE = SAMPLE_MASKS / "sentiment-s0"
MANIFEST = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
MASK_BYTES = (SAMPLE / "masks" / "round_003.safetensors").read_bytes()
MASK_HEADER_END = 8 + struct.unpack("<Q", MASK_BYTES[:8])[0]
SHAPES = Anatomy.from_dict(MANIFEST["anatomy"]).shapes  # tiny-bert: 24 tensors
BASES = {"weights": MANIFEST,  # the sample run, and the same run as structured masks
         "structured": {**MANIFEST, "mask_kind": "structured", "controls": {}}}
# Unpickling a Trap creates this file: any reader that unpickles fails the import property.
TRAP = Path(tempfile.gettempdir()) / f"ticketlens-fuzz-unpickled-{os.getpid()}"


class Trap:
    def __reduce__(self):
        return (Path.touch, (TRAP,))


# Few examples in the default run (~25 s in all on 2 cores); `make fuzz` runs thousands.
# (hypothesis keeps failing examples in .hypothesis/, which ignores itself in git.)
def fuzz_settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ============================================================================ the CLI, in-process
def cli(*argv: str) -> tuple[int, str]:
    """``ticketlens ARGV`` in this process: (exit code, stderr with any warnings shown)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(list(argv))
    shown = "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    return rc, err.getvalue() + shown


def assert_clean_exit(rc: int, err: str) -> None:
    """Exit 2 with one ``ticketlens: error:`` line, or exit 0 with nothing on stderr but
    warnings (a report of a run with a layer of no prunable tensor warns of an empty mean)."""
    assert "internal error" not in err and "Traceback" not in err, err
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert err.startswith("ticketlens: error: ") and err.count("\n") == 1, err
    else:
        assert all(re.match(r"\w+Warning: ", line) for line in err.splitlines()), err


def assert_one_line(exc: Exception, names: Path) -> None:
    assert "\n" not in str(exc) and str(names) in str(exc), str(exc)


# ============================================================================ generic strategies
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TEXT
           | st.sampled_from([10**400, -1, 0, 1, 2**63, "", "\n", "a\nb", "complete",
                              "structured", "linear", "conv1d", "q", "ffn_in", "other"]))
JSON = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4)
                    | st.dictionaries(TEXT, c, max_size=4), max_leaves=10)


def _near(v: Any) -> list[Any]:
    """Values bit rot or a careless writer would leave in place of ``v``."""
    out = [None, [v], {"value": v}, str(v), "", True, -1, 0, 2.5, 10**400, math.inf, math.nan]
    if isinstance(v, int | float) and not isinstance(v, bool):
        out += [-v, v + 1, v - 1, v * 1_000_003]
    if isinstance(v, list):
        out += [[], v[:-1], v + v[:1], v[::-1]]
    if isinstance(v, dict):
        out += [{}, dict(list(v.items())[:-1])]
    return out


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with 1-3 values somewhere in it replaced, deleted or added."""
    doc = copy.deepcopy(doc)
    rnd = draw(st.randoms(use_true_random=True))  # seeded by hypothesis; unbiased picks
    for _ in range(draw(st.integers(1, 3))):
        parent, key, node = None, None, doc
        while isinstance(node, dict | list) and node and rnd.random() < 0.9:
            key = rnd.choice(list(node) if isinstance(node, dict) else range(len(node)))
            parent, node = node, node[key]
        op = draw(st.sampled_from(["replace", "near", "near", "delete", "add"]))
        new = draw(JSON) if op in ("replace", "add") else draw(st.sampled_from(_near(node)))
        if parent is None:
            doc = new
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(TEXT)] = new
        else:
            parent[key] = new
    return doc


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes, hot: int | None = None) -> bytes:
    """``data`` truncated, or with bytes flipped, set, inserted or deleted (half of the edits
    in its first ``hot`` bytes: a file's header)."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        end = len(b) if hot is None or draw(st.booleans()) else min(hot, len(b))
        i = draw(st.integers(0, max(end - 1, 0)))
        op = draw(st.sampled_from(["flip", "flip", "set", "insert", "delete", "truncate"]))
        if op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del b[i:i + draw(st.integers(1, 16))]
        elif b:
            b[i] = b[i] ^ (1 << draw(st.integers(0, 7))) if op == "flip" else \
                draw(st.integers(0, 255))
    return bytes(b)


def _bits(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """A random bool array (its seed drawn, so big arrays cost one draw)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return np.asarray(rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 1.0])))


# ============================================================================ 1. manifests
def make_run_dirs(root: Path) -> dict[str, Path]:
    """A weight-mask run (the sample's mask files) and a structured one (heads/FFN masks for
    the same rounds); each example writes its own manifest.json into them."""
    dirs = {"weights": root / "weights", "structured": root / "structured"}
    shutil.copytree(SAMPLE / "masks", dirs["weights"] / "masks")
    rng = np.random.default_rng(0)
    a = MANIFEST["anatomy"]
    for r in MANIFEST["rounds"]:
        save_masks(dirs["structured"] / "masks" / f"round_{r['round']:03d}.safetensors",
                   {"heads": rng.random((a["num_layers"], a["num_heads"])) < 0.7,
                    "ffn": rng.random(a["num_layers"]) < 0.7})
    return dirs


def manifest_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    """(which run, manifest.json bytes)."""
    def of(kind: str) -> st.SearchStrategy[tuple[str, bytes]]:
        text = json.dumps(BASES[kind], indent=2).encode()
        return st.tuples(st.just(kind), st.one_of(
            mutated_json(BASES[kind]).map(lambda d: json.dumps(d).encode()),
            mutated_json(BASES[kind]).map(lambda d: json.dumps(d).encode()),
            mutated_bytes(text),
            JSON.map(lambda d: json.dumps(d).encode()),
            st.binary(max_size=64)))
    return st.sampled_from(list(BASES)).flatmap(of)


def check_manifest(run_dirs: dict[str, Path], kind: str, data: bytes) -> None:
    """The commands that read a run (inspect reads what report does) exit 0 or 2 on it."""
    run_dir = run_dirs[kind]
    (run_dir / "manifest.json").write_bytes(data)
    run, html = str(run_dir), str(run_dir.parent / "report.html")
    for argv in (["info", run], ["info", run, "--json"], ["info", run, "--network"],
                 ["verify", run],
                 ["compare", run, str(SAMPLE), "--json"],
                 ["compare", run, str(SAMPLE), "--by", "head"], ["report", run, "-o", html]):
        assert_clean_exit(*cli(*argv))
    check_run_readers(run_dir)


def check_run_readers(run_dir: Path) -> None:
    """What info, compare, report and inspect read from a run: a sane value or one line."""
    try:
        run = open_run(run_dir)
    except RunFormatError as exc:
        assert_one_line(exc, run_dir)
        return
    a = run.anatomy
    assert all(isinstance(r.index, int) and isinstance(r.sparsity, float) for r in run.rounds)
    readers = {"ticket": lambda: run.ticket, "verdict": lambda: run.verdict,
               "mask": run.mask, "packed": run.packed_mask, "units": run.units,
               "controls": lambda: {c: run.control_mask(c) for c in run.controls}}
    for what, read in readers.items():
        try:
            got = read()
        except RunFormatError as exc:
            assert_one_line(exc, run_dir)
            continue
        if what == "ticket":
            assert got in run.rounds
        elif what == "verdict":
            assert got is None or got.label in ("WINNING TICKET", "NO WINNING TICKET",
                                                "INCONCLUSIVE")
        elif what == "mask":
            assert {n: (m.shape, m.dtype) for n, m in got.items()} == \
                {n: (s, np.dtype(bool)) for n, s in a.shapes.items()}
        elif what == "packed":
            assert {n: (p.dtype, p.shape) for n, p in got.items()} == \
                {n: (np.dtype(np.uint8), ((math.prod(s) + 7) // 8,)) for n, s in
                 a.shapes.items()}
        elif what == "units":
            assert got.head.shape == (a.num_layers, a.num_heads)
            assert got.neuron.shape == (a.num_layers, a.intermediate)
            assert got.ffn.shape == (a.num_layers,)


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory) -> dict[str, Path]:
    return make_run_dirs(tmp_path_factory.mktemp("fuzz-runs"))


@fuzz_settings(100)  # each input runs seven commands (verify reads the weights too)
@given(inp=manifest_inputs())
def test_any_manifest_reads_or_fails_in_one_line(run_dirs, inp):
    check_manifest(run_dirs, *inp)


def _set(path: tuple, value: Any, kind: str = "weights") -> tuple[str, bytes]:
    """The base manifest with the value at ``path`` (keys and indices) set, as an input."""
    doc = copy.deepcopy(BASES[kind])
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return kind, json.dumps(doc).encode()


# json.loads reads 600 levels (under pytest too); copying or printing them recursed too deep
DEEP = "[" * 600 + "]" * 600
MANIFEST_REGRESSIONS = {  # found by the fuzzing: exit 1 (internal error) or a second line
    "round-infinity": _set(("rounds", 0, "round"), math.inf),
    "format-version-infinity": _set(("format_version",), math.inf),
    "float-of-a-400-digit-int": _set(("rounds", 0, "sparsity"), 10**400),
    "int-of-5000-digits": ("weights", b'{"format": "ticketlens.run", "x": ' + b"1" * 5000 + b"}"),
    "task-metric-a-number": _set(("task", "metric"), 5),
    "newline-in-a-control-name": _set(("controls", "a\nb"), 5),
    "anatomy-null": _set(("anatomy",), None),
    "model-null": _set(("model",), None),
    "deep-nesting-in-a-control": ("weights", json.dumps(MANIFEST).replace(
        '"controls": {', '"controls": {"x": {"sparsity": 0.5, "deep": ' + DEEP + "}, ", 1)
        .encode()),
    "ticket-round-minus-100": _set(("ticket_round",), -100),
    "no-rounds": _set(("rounds",), []),
    "num-layers-a-string": _set(("anatomy", "num_layers"), "4"),
    "num-kv-heads-0": _set(("anatomy", "num_kv_heads"), 0),
    "intermediate-5": _set(("anatomy", "intermediate"), 5),
    "head-dim-of-400-digits": _set(("anatomy", "head_dim"), 10**400),  # report: overflow
    "shape-a-string": _set(("anatomy", "tensors", 0, "shape"), "ab"),  # held
    "a-billion-layers": _set(("anatomy", "num_layers"), 10**9),
    # the 2,000-invocation mutation fuzz of issue 23: file paths that are not strings
    "rewind-weights-a-number": _set(("weights", "rewind"), -1e-09),
    "control-mask-a-number": _set(("controls", "random_mask", "mask"), 5),
    "round-mask-outside-the-run": _set(("rounds", 1, "mask"), "../../x.safetensors"),
    "file-hash-a-number": _set(("files",), {"masks/round_000.safetensors": 7}),
    "num-layers-0-with-layered-tensors": _set(("anatomy", "num_layers"), 0),  # info --network
}


@pytest.mark.parametrize("name", MANIFEST_REGRESSIONS)
def test_manifest_regressions(run_dirs, name):
    check_manifest(run_dirs, *MANIFEST_REGRESSIONS[name])


def test_info_prints_strings_literally(run_dirs):
    check_manifest(run_dirs, *_set(("status",), "[/]"))


# ============================================================================ 2. mask files
@dataclass(frozen=True)
class MaskInput:
    data: bytes
    masks: dict[str, np.ndarray] | None = None  # what reading must give, when known


def _split_safetensors(b: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def _join_safetensors(header: Any, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


@st.composite
def header_mutations(draw: st.DrawFn) -> MaskInput:
    """The real mask file with its JSON header, or the shapes JSON in its metadata, mutated."""
    header, data = _split_safetensors(MASK_BYTES)
    if draw(st.booleans()):
        header = draw(mutated_json(header))
    else:
        shapes = draw(mutated_json(json.loads(header["__metadata__"]["shapes"])))
        header["__metadata__"]["shapes"] = json.dumps(shapes)
    return MaskInput(_join_safetensors(header, data))


NAMES = st.sampled_from(list(SHAPES)) | TEXT.filter(lambda s: s != "__metadata__")
DIMS = st.lists(st.integers(-2, 70) | st.sampled_from([2**31, 2**40, 2**64, 10**30]) |
                st.sampled_from([1.5, "3", None, True, [2]]), max_size=5)


@st.composite
def built_mask_files(draw: st.DrawFn) -> MaskInput:
    """Tensors of any dtype and shape under metadata of any kind (shapes of the wrong type,
    negative or huge dimensions, sizes that do not match the tensors)."""
    arrays = draw(st.dictionaries(NAMES, hnp.arrays(
        st.sampled_from(["uint8", "uint8", "bool", "int8", "int32", "float16", "float64"]),
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6)), max_size=3))
    shapes = draw(st.one_of(
        st.fixed_dictionaries({n: DIMS for n in arrays}).map(json.dumps),
        st.dictionaries(NAMES, DIMS, max_size=3).map(json.dumps),
        JSON.map(json.dumps), TEXT))
    meta = {"format": draw(st.sampled_from([MASK_FORMAT, MASK_FORMAT, "ticketlens.run", ""])),
            "format_version": draw(st.sampled_from(["1", "1", "0", "2", "-1", "x", "", "١",
                                                    "1" * 5000]) | TEXT),
            "bitorder": draw(st.sampled_from(["big", "little"])), "shapes": shapes}
    if draw(st.booleans()):
        del meta[draw(st.sampled_from(list(meta)))]
    return MaskInput(safetensors_bytes(arrays, meta))


@st.composite
def valid_mask_files(draw: st.DrawFn) -> MaskInput:
    """Files save_masks writes: reading gives back exactly these masks."""
    masks = {}
    for name in draw(st.lists(NAMES, max_size=3, unique=True)):
        shape = draw(st.sampled_from([SHAPES.get(name, (3,))]) |
                     hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
        masks[name] = _bits(draw, shape)
    return MaskInput(mask_file_bytes(masks), masks)


def mask_inputs() -> st.SearchStrategy[MaskInput]:
    return st.one_of(mutated_bytes(MASK_BYTES, hot=MASK_HEADER_END).map(MaskInput),
                     header_mutations(), built_mask_files(), valid_mask_files(),
                     st.binary(max_size=128).map(MaskInput))


def check_mask_file(folder: Path, inp: MaskInput) -> None:
    """load_masks and load_packed, with and without the model's shapes, agree: the masks
    of the declared shapes (the masks written, when known) or one line naming the file."""
    path = folder / "round_001.safetensors"
    path.write_bytes(inp.data)
    for expected in (None, SHAPES):
        try:
            masks = load_masks(path, expected=expected)
        except RunFormatError as exc:
            assert_one_line(exc, path)
            masks = None
        try:
            packed = load_packed(path, expected=expected)
        except RunFormatError as exc:
            assert_one_line(exc, path)
            packed = None
        assert (masks is None) == (packed is None)
        if masks is None:
            continue
        into = {n: np.empty_like(p) for n, p in packed.items()}
        read_packed_into(path, into, expected=expected)  # the overlap fast path: the same
        assert all(np.array_equal(into[n], packed[n]) for n in packed)
        if expected is not None:
            assert set(masks) == set(expected)
        if inp.masks is not None:
            assert set(masks) == set(inp.masks)
        for name, m in masks.items():
            assert m.dtype == bool and np.array_equal(unpack(packed[name], m.shape), m)
            if expected is not None:
                assert m.shape == expected[name]
            if inp.masks is not None:
                assert m.shape == inp.masks[name].shape and np.array_equal(m, inp.masks[name])


@fuzz_settings(300)
@given(inp=mask_inputs())
def test_any_mask_file_reads_or_fails_in_one_line(inp):
    with tempfile.TemporaryDirectory() as d:
        check_mask_file(Path(d), inp)


def _with_meta(**meta: str) -> MaskInput:
    header, data = _split_safetensors(MASK_BYTES)
    header["__metadata__"].update(meta)
    return MaskInput(_join_safetensors(header, data))


def _one_tensor(shape: list, data: bytes = b"\xff") -> MaskInput:
    return MaskInput(safetensors_bytes({"w": np.frombuffer(data, np.uint8)}, {
        "format": MASK_FORMAT, "format_version": "1", "shapes": json.dumps({"w": shape})}))


MASK_REGRESSIONS = {
    "format-version-not-a-number": _with_meta(format_version="x"),
    "newer-format-version": _with_meta(format_version="2"),  # held
    "shapes-nested-too-deep": _with_meta(shapes="[" * 100_000),
    "negative-dimensions": _one_tensor([-2, -4]),
    "too-many-dimensions": _one_tensor([1] * 65),
    "huge-dimensions": _one_tensor([2**40, 2**40]),  # held
    "a-2d-packed-tensor": MaskInput(safetensors_bytes({"w": np.ones((2, 1), np.uint8)}, {
        "format": MASK_FORMAT, "format_version": "1", "shapes": json.dumps({"w": [16]})})),
    "newline-in-the-header-quoted-by-safetensors": MaskInput(_join_safetensors(
        {"w": {"dtype": "\n", "shape": [1], "data_offsets": [0, 1]}}, b"\0")),
    "newline-in-a-name": MaskInput(mask_file_bytes(
        {**{n: np.ones(s, bool) for n, s in SHAPES.items()}, "a\nb": np.ones(3, bool)})),
}


@pytest.mark.parametrize("name", MASK_REGRESSIONS)
def test_mask_regressions(tmp_path, name):
    check_mask_file(tmp_path, MASK_REGRESSIONS[name])


# ============================================================================ 3. imports
@dataclass(frozen=True)
class ImportInput:
    """Files (paths relative to a fresh folder) and the ``ticketlens import`` to run on them.

    ``outcome``: ``ok`` (must import, giving ``masks``: other tensors all kept), ``refused``
    (must exit 2: a pickled object, a value other than 0 or 1, a wrong shape) or ``any``."""

    fmt: str
    files: dict[str, bytes]
    outcome: str = "any"
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    heads: tuple[np.ndarray, np.ndarray] | None = None  # bert-experiments: (head, mlp)


def _zero_one(a: np.ndarray) -> bool:
    return a.dtype == bool or (np.issubdtype(a.dtype, np.number) and bool(np.isin(a, (0, 1)).all()))


@st.composite
def mask_arrays(draw: st.DrawFn, dtypes: list[str]) -> dict[str, np.ndarray]:
    """Masks keyed by names of tiny-bert (mostly of its shapes) or any names and shapes, of
    ``dtypes``, now and then with a value other than 0 or 1."""
    out = {}
    for name in draw(st.lists(NAMES, max_size=3, unique=True)):
        shape = draw(st.sampled_from([SHAPES.get(name, (2,))] * 3) |
                     hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
        a = _bits(draw, shape).astype(np.int8).astype(draw(st.sampled_from(dtypes)))
        if a.size and draw(st.integers(0, 5)) == 0:
            odd = draw(st.sampled_from([2, -1, 0.5, np.nan, 1 + 1j, 1e300]))
            with warnings.catch_warnings(), contextlib.suppress(TypeError, ValueError,
                                                                 OverflowError):
                warnings.simplefilter("ignore")  # complex into float, nan into int: no-ops
                a.reshape(-1)[0] = odd
        out[name] = a
    return out


def _weights_outcome(arrays: dict[str, np.ndarray], dtype_ok: bool = True) -> str:
    if not dtype_ok or not all(_zero_one(a) for a in arrays.values()):
        return "refused"
    fits = all(n in SHAPES and a.shape == SHAPES[n] for n, a in arrays.items())
    return "ok" if fits else "refused"


def _npz(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


NPZ_DTYPES = ["bool", "uint8", "int64", "float16", "float32", "float64", "complex64", "<U1",
              "datetime64[s]", "V2"]


@st.composite
def npz_inputs(draw: st.DrawFn) -> ImportInput:
    kind = draw(st.sampled_from(["arrays", "arrays", "arrays", "object", "mutated", "bytes"]))
    if kind == "arrays":
        arrays = draw(mask_arrays(NPZ_DTYPES))
        try:
            data = _npz(arrays)
        except (ValueError, TypeError):  # a dtype numpy will not cast 0/1 into
            return ImportInput("npz", {"m.npz": b""}, "refused")
        numeric = all(a.dtype == bool or np.issubdtype(a.dtype, np.number)
                      for a in arrays.values())
        outcome = _weights_outcome(arrays, numeric)
        return ImportInput("npz", {"m.npz": data}, outcome,
                           {n: a != 0 for n, a in arrays.items()} if outcome == "ok" else {})
    if kind == "object":  # savez pickles object arrays; the importer must not unpickle them
        obj = np.array([Trap(), 1], dtype=object)
        return ImportInput("npz", {"m.npz": _npz({draw(NAMES): obj})}, "refused")
    if kind == "mutated":
        real = _npz({n: np.ones(s, bool) for n, s in list(SHAPES.items())[:2]})
        return ImportInput("npz", {"m.npz": draw(mutated_bytes(real, hot=200))})
    return ImportInput("npz", {"m.npz": draw(st.binary(max_size=64))})


@st.composite
def safetensors_inputs(draw: st.DrawFn) -> ImportInput:
    kind = draw(st.sampled_from(["arrays", "arrays", "arrays", "header", "mutated", "bytes"]))
    real = st_save({n: np.ones(s, np.uint8) for n, s in list(SHAPES.items())[:2]})
    if kind == "arrays":
        arrays = draw(mask_arrays(["bool", "uint8", "int8", "int64", "float16", "float32",
                                   "float64"]))
        outcome = _weights_outcome(arrays)
        return ImportInput("safetensors", {"m.safetensors": st_save(arrays)}, outcome,
                           {n: a != 0 for n, a in arrays.items()} if outcome == "ok" else {})
    if kind == "header":  # dtypes numpy lacks (BF16), offsets out of range, ...
        header, data = _split_safetensors(real)
        return ImportInput("safetensors", {"m.safetensors": _join_safetensors(
            draw(mutated_json(header)), data)})
    if kind == "mutated":
        return ImportInput("safetensors", {"m.safetensors": draw(mutated_bytes(real, hot=300))})
    return ImportInput("safetensors", {"m.safetensors": draw(st.binary(max_size=64))})


TORCH_DTYPES = [torch.bool, torch.uint8, torch.int64, torch.float16, torch.bfloat16,
                torch.float32, torch.complex64]


@st.composite
def prune_tensors(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[torch.Tensor, bool]:
    """A tensor as torch.save may hold it (a Parameter, sparse, transposed, on the meta
    device), and whether it is a readable 0/1 mask."""
    t = torch.from_numpy(_bits(draw, shape)).to(draw(st.sampled_from(TORCH_DTYPES)))
    readable = True
    if t.numel() and t.dtype != torch.bool and draw(st.integers(0, 4)) == 0:
        t.view(-1)[0] = 2
        readable = False
    form = draw(st.sampled_from(["plain", "plain", "param", "sparse", "transposed", "meta"]))
    if form == "param":
        t = torch.nn.Parameter(t, requires_grad=t.is_floating_point() or t.is_complex())
    elif form == "sparse" and t.dim() and t.dtype != torch.bool:
        t = t.to_sparse()
    elif form == "transposed" and t.dim() == 2:
        t = t.T
    elif form == "meta":
        t = torch.empty(t.shape, dtype=t.dtype, device="meta")
        readable = False
    return t, readable


def _torch_save(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


ODD_OBJECTS = st.sampled_from([None, 3, "x", [1, 2], {"a": {"b": 1}}, (1, "a"), b"raw",
                               torch.Size([2, 3])])


@st.composite
def torch_prune_inputs(draw: st.DrawFn) -> ImportInput:
    kind = draw(st.sampled_from(["state", "state", "state", "trap", "odd", "pickle",
                                 "mutated", "bytes"]))
    if kind == "state":
        state: dict[Any, Any] = {}
        masks, readable = {}, True
        for name in draw(st.lists(NAMES, max_size=3, unique=True)):
            shape = draw(st.sampled_from([SHAPES.get(name, (2,))] * 3) |
                         hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
            t, ok = draw(prune_tensors(shape))
            state[name + "_mask"] = t
            masks[name] = (t.detach().to_dense() != 0).numpy() if ok else None
            readable = readable and ok
        for _ in range(draw(st.integers(0, 2))):  # other entries the reader skips
            state[draw(st.sampled_from(["w_orig", 7, "bias", ("t",)]))] = draw(ODD_OBJECTS)
        fits = all(n in SHAPES and m is not None and m.shape == SHAPES[n]
                   for n, m in masks.items())
        outcome = "ok" if readable and fits and masks else "refused"
        return ImportInput("torch-prune", {"m.pt": _torch_save(state)}, outcome,
                           masks if outcome == "ok" else {})
    if kind == "trap":  # weights_only=True must refuse it wherever it sits
        obj = draw(st.sampled_from([Trap(), {"x_mask": Trap()}, [torch.ones(2), Trap()]]))
        return ImportInput("torch-prune", {"m.pt": _torch_save(obj)}, "refused")
    if kind == "odd":
        return ImportInput("torch-prune", {"m.pt": _torch_save(draw(ODD_OBJECTS))}, "refused")
    if kind == "pickle":  # a plain pickle (protocols 0-5), not torch's format
        obj = draw(st.sampled_from([Trap(), {"x_mask": 1}, [1, 2]]))
        data = pickle.dumps(obj, protocol=draw(st.integers(0, pickle.HIGHEST_PROTOCOL)))
        return ImportInput("torch-prune", {"m.pt": data}, "refused")
    real = _torch_save({n + "_mask": torch.ones(s) for n, s in list(SHAPES.items())[:2]})
    if kind == "mutated":
        return ImportInput("torch-prune", {"m.pt": draw(mutated_bytes(real, hot=600))})
    return ImportInput("torch-prune", {"m.pt": draw(st.binary(max_size=64))})


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


BERT_SHAPES = [(12, 12), (12, 12), (12, 12), (24, 16), (5, 5), (), (12,), (12, 12, 1), (0, 12)]


@st.composite
def bert_inputs(draw: st.DrawFn) -> ImportInput:
    """A TASK/seed_N folder: head_mask.npy and (or not) mlp_mask.npy of odd shapes, dtypes
    and contents."""
    dtypes = ["bool", "float32", "int64", "uint8", "float16", "complex64", "<U1"]
    heads = _bits(draw, draw(st.sampled_from(BERT_SHAPES))).astype(np.int8).astype(
        draw(st.sampled_from(dtypes)))
    mlp = None
    if draw(st.booleans()):
        mlp_shape = heads.shape[:1] if draw(st.integers(0, 3)) else draw(
            st.sampled_from([(), (3,), (12, 1)]))
        mlp = _bits(draw, mlp_shape).astype(draw(st.sampled_from(dtypes)))
    for a in (heads, mlp):
        if a is not None and a.size and a.dtype.kind in "fiuc" and draw(st.integers(0, 4)) == 0:
            a.reshape(-1)[0] = 2
    folder = draw(st.sampled_from(["seed_1"] * 5 + ["seed_x", "1"]))
    files = {f"T/{folder}/head_mask.npy": _npy(heads)}
    if mlp is not None:
        files[f"T/{folder}/mlp_mask.npy"] = _npy(mlp)
    arrays = [a for a in (heads, mlp) if a is not None]
    valid = (folder == "seed_1" and heads.shape in ((12, 12), (24, 16))
             and all(a.dtype.kind in "bfiuc" and _zero_one(a) for a in arrays)
             and (mlp is None or mlp.shape == heads.shape[:1]))
    kind = draw(st.sampled_from(["arrays"] * 6 + ["trap", "mutated", "bytes"]))
    if kind == "arrays":
        mlp_kept = np.ones(heads.shape[:1], bool) if mlp is None else mlp != 0
        return ImportInput("bert-experiments", files, "ok" if valid else "refused",
                           heads=(heads != 0, mlp_kept) if valid else None)
    name = f"T/{folder}/head_mask.npy"
    if kind == "trap":
        files[name] = _npy(np.array([Trap()], dtype=object))
        return ImportInput("bert-experiments", files, "refused")
    files[name] = draw(mutated_bytes(files[name], hot=128)) if kind == "mutated" else \
        draw(st.binary(max_size=64))
    return ImportInput("bert-experiments", files)


def check_import(inp: ImportInput) -> None:
    """``ticketlens import`` exits 0 with the masks given, or 2 with one line; it never
    unpickles; an input that must import imports, one that must be refused is."""
    TRAP.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for rel, data in inp.files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        src = root / ("T" if inp.fmt == "bert-experiments" else next(iter(inp.files)))
        out = root / "out"
        rc, err = cli("import", "--from", inp.fmt, str(src), "--model", "tiny-bert",
                      "--out", str(out))
        assert not TRAP.exists(), "a pickled object was unpickled"
        assert_clean_exit(rc, err)
        if inp.outcome != "any":
            assert rc == (0 if inp.outcome == "ok" else 2), (inp.outcome, err)
        if rc != 0:
            return
        if inp.fmt == "bert-experiments":
            (run_dir,) = out.iterdir()
            units = open_run(run_dir).units()
            if inp.heads is not None:
                assert np.array_equal(units.head, inp.heads[0])
                assert np.array_equal(units.ffn, inp.heads[1])
            return
        run = open_run(out)
        for name, m in run.mask().items():
            want = inp.masks.get(name) if inp.outcome == "ok" else None
            assert m.shape == SHAPES[name]
            assert want is None or np.array_equal(m, want)
            if want is None and inp.outcome == "ok":
                assert m.all()  # a tensor the file does not mention is kept whole


IMPORTS = {"npz": npz_inputs(), "safetensors": safetensors_inputs(),
           "torch-prune": torch_prune_inputs(), "bert-experiments": bert_inputs()}


@fuzz_settings(60)
@given(inp=st.one_of(*IMPORTS.values()))
def test_any_import_exits_0_or_2_in_one_line(inp):
    check_import(inp)


def _huge_npy() -> bytes:
    """An .npy header declaring 10^11 booleans, with 10 bytes of data."""
    header = "{'descr': '|b1', 'fortran_order': False, 'shape': (100000000000,), }"
    header += " " * (63 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + \
        b"\x01" * 10


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


Q = "bert.encoder.layer.0.attention.self.query.weight"
IMPORT_REGRESSIONS = {
    "torch-parameter": ImportInput("torch-prune", {"m.pt": _torch_save(
        {Q + "_mask": torch.nn.Parameter(torch.ones(64, 64))})}, "ok",
        {Q: np.ones((64, 64), bool)}),
    "torch-bfloat16": ImportInput("torch-prune", {"m.pt": _torch_save(
        {Q + "_mask": torch.zeros(64, 64, dtype=torch.bfloat16)})}, "ok",
        {Q: np.zeros((64, 64), bool)}),
    "torch-sparse": ImportInput("torch-prune", {"m.pt": _torch_save(
        {Q + "_mask": torch.ones(64, 64).to_sparse()})}, "ok", {Q: np.ones((64, 64), bool)}),
    "torch-int-key": ImportInput("torch-prune", {"m.pt": _torch_save({7: torch.ones(2)})},
                                 "refused"),
    "torch-refusal-is-a-paragraph": ImportInput("torch-prune", {"m.pt": _torch_save(
        {"x_mask": Trap()})}, "refused"),
    "pickle-protocol-warning": ImportInput("torch-prune", {"m.pt": pickle.dumps([1], 4)},
                                           "refused"),
    "npz-corrupt-zip-left-open": ImportInput("npz", {"m.npz": b"PK\x03\x04"}, "refused"),
    "bert-corrupt-zip-left-open": ImportInput("bert-experiments", {
        "T/seed_1/head_mask.npy": b"PK\x03\x04"}, "refused"),
    "newline-in-an-npz-name": ImportInput("npz", {"m.npz": _npz({"a\nb": np.ones(3)})},
                                          "refused"),
    "newline-in-an-npz-name-of-a-bad-mask": ImportInput("npz", {"m.npz": _npz(
        {"a\nb": np.full(3, 2)})}, "refused"),
    "newline-in-a-torch-name-of-a-bad-mask": ImportInput("torch-prune", {"m.pt": _torch_save(
        {"\n_mask": torch.full((3,), 2)})}, "refused"),
    "bert-npy-header-not-python": ImportInput("bert-experiments", {
        "T/seed_1/head_mask.npy": _npy(np.zeros((12, 12), bool)).replace(
            b"False, 'shape': (", b"F", 1)}, "refused"),
    "bert-0d-head-mask": ImportInput("bert-experiments", {"T/seed_1/head_mask.npy":
                                                          _npy(np.array(1.0))}, "refused"),
    "bert-huge-npy-header": ImportInput("bert-experiments", {"T/seed_1/head_mask.npy":
                                                             _huge_npy()}, "refused"),
    "npz-huge-npy-header": ImportInput("npz", {"m.npz": _zip({Q + ".npy": _huge_npy()})},
                                       "refused"),  # held
}


@pytest.mark.parametrize("name", IMPORT_REGRESSIONS)
def test_import_regressions(name):
    check_import(IMPORT_REGRESSIONS[name])
