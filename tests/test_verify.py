"""`ticketlens verify RUN` (and `info --verify`): every file read and checked; a damaged run
gives exit 2 and one line naming the file and the problem."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import SAMPLE_MASKS

from ticketlens.cli.main import main


@pytest.fixture
def run_copy(quick_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(quick_run, out)
    return out


def _fails(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def _forget_hashes(run_dir):
    """The run as ticketlens wrote it before it recorded SHA-256s (no ``files``)."""
    path = run_dir / "manifest.json"
    m = json.loads(path.read_text())
    del m["files"]
    path.write_text(json.dumps(m))


def test_a_good_run_and_the_samples_verify(quick_run, capsys):
    assert main(["verify", "--json", str(quick_run)]) == 0
    [res] = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["rounds"] == 3 and res["controls"] == 2
    files = {"masks/round_002.safetensors", "masks/control_random_mask.safetensors",
             "weights/round_002.safetensors", "tokenizer.json"}
    assert files <= set(res["files_checked"])
    # every file the run wrote has its SHA-256 in the manifest, and each was checked
    m = json.loads((quick_run / "manifest.json").read_text())
    assert set(m["files"]) == set(res["files_checked"]) - {"manifest.json"}
    assert all(f["sha256"] == "match" for f in res["checked"][1:])
    assert res["hashes_recorded"] and res["not_checked"] == []
    n = len(res["files_checked"])
    assert f"SHA-256 of {n - 1} of {n - 1} files matches the manifest" in res["summary"]
    assert main(["verify", str(quick_run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {quick_run}: 3 rounds, 2 controls, {n} files checked "
                          "(manifest, 3 round mask files, control mask, ")
    if (SAMPLE_MASKS / "sentiment-s0").is_dir():  # with hashes or from before them
        runs = [p for p in sorted(SAMPLE_MASKS.iterdir()) if p.is_dir()]
        assert main(["verify", *map(str, runs)]) == 0
        out = capsys.readouterr().out
        old = sum("files" not in json.loads((p / "manifest.json").read_text()) for p in runs)
        assert out.count("ok: ") == len(runs) and out.count("no recorded hashes") == old
        assert out.count("attribution") == len(runs)


def test_a_flipped_mask_bit(run_copy, capsys):
    path = run_copy / "masks" / "round_002.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last packed byte of the last tensor: one weight more or less kept
    path.write_bytes(bytes(data))
    _fails(capsys, ["verify", str(run_copy)], "round_002.safetensors", "sparse")
    _fails(capsys, ["info", "--verify", str(run_copy)], "round_002.safetensors")
    # info reads the ticket's mask even without --verify: the cheap count check names it
    _fails(capsys, ["info", str(run_copy)], "round_002.safetensors", "the mask keeps 49,151")
    # every reader: the counts name it (with or without hashes)
    _forget_hashes(run_copy)
    _fails(capsys, ["compare", str(run_copy), str(run_copy)], "round_002.safetensors",
           "the manifest records")
    import ticketlens
    from ticketlens.core.errors import RunFormatError

    run = ticketlens.open_run(run_copy)
    for read in (run.mask, run.packed_mask):
        with pytest.raises(RunFormatError, match=r"round_002\.safetensors: the mask keeps"):
            read(2)


def test_a_kept_bit_swapped_with_a_pruned_bit_is_named(run_copy, capsys):
    """The same counts, the same nesting: only the file's SHA-256 tells (round 1 of 2, not
    the ticket, whose pruned weights are checked against its trained weights)."""
    import ticketlens
    from ticketlens.core.masks import load_masks, save_masks

    run = ticketlens.open_run(run_copy)
    path = run_copy / "masks" / "round_001.safetensors"
    masks = {n: m.copy() for n, m in load_masks(path).items()}
    name = run.anatomy.names[0]
    m, ticket = masks[name].reshape(-1), run.mask(2)[name].reshape(-1)
    kept_not_in_ticket = np.flatnonzero(m & ~ticket)[0]  # kept by round 1, not by round 2
    pruned = np.flatnonzero(~m)[0]
    m[kept_not_in_ticket], m[pruned] = False, True  # counts kept; round 2 still nested in 1
    save_masks(path, masks, round="1")
    _fails(capsys, ["verify", str(run_copy)], "round_001.safetensors", "changed since")


def test_a_file_recorded_but_missing_and_files_no_check_knows(run_copy, capsys):
    (run_copy / "notes.txt").write_text("mine")
    assert main(["verify", "--json", str(run_copy)]) == 0
    [res] = json.loads(capsys.readouterr().out)
    assert res["not_checked"] == ["notes.txt"] and "notes.txt" in res["summary"]
    (run_copy / "tokenizer.json").unlink()
    _fails(capsys, ["verify", str(run_copy)], "tokenizer.json", "missing")


@pytest.mark.parametrize(("field", "value", "needle"), [
    (("weights", "rewind"), -1e-09, "weights.rewind: invalid (a file path must be a string, got float -1e-09)"),
    (("controls", "random_mask", "mask"), 5, "controls.random_mask.mask: invalid (a file "
                                             "path must be a string, got int 5)"),
    (("rounds", 1, "mask"), "../../etc/passwd", "not a file path inside the run"),
    (("files", "tokenizer.json"), "abc", "not a SHA-256"),
])
def test_a_file_path_that_is_not_a_path_is_one_line(run_copy, capsys, field, value, needle):
    """Found by the mutation fuzz: these used to exit 1, "internal error: TypeError"."""
    path = run_copy / "manifest.json"
    m = json.loads(path.read_text())
    d = m
    for k in field[:-1]:
        d = d[k]
    d[field[-1]] = value
    path.write_text(json.dumps(m))
    _fails(capsys, ["verify", str(run_copy)], needle)
    _fails(capsys, ["info", str(run_copy)], needle)


def test_compress_table_is_checked_and_hashed(run_copy, capsys):
    from ticketlens.compress.result import Cell, CompressResult, VariantResult, write_compress

    v = VariantResult("dense", "dense", "fp32", {"accuracy": 0.5}, 1000, 1.0, 0.0)
    cells = tuple(Cell(c, "dense" if c == "none" else None) for c in
                  ("none", "prune", "quantize", "distill", "prune+quantize", "prune+distill",
                   "quantize+distill", "prune+quantize+distill"))
    write_compress(run_copy, CompressResult(str(run_copy), "accuracy", True, "int8", (v,),
                                            cells))
    m = json.loads((run_copy / "manifest.json").read_text())
    assert len(m["files"]["compress.json"]) == 64  # the writer recorded its hash
    assert main(["verify", str(run_copy)]) == 0
    assert "compression table" in capsys.readouterr().out
    # changed by hand: a malformed table by its content, a well-formed one by its hash
    p = run_copy / "compress.json"
    good = p.read_text()
    p.write_text(good.replace('"cells": [', '"cells": [1, '))
    _fails(capsys, ["verify", str(run_copy)], "compress.json", "unreadable compression table")
    p.write_text(good.replace('"int8"', '"int4"'))
    _fails(capsys, ["verify", str(run_copy)], "compress.json", "changed since")


def test_a_pruned_weight_that_is_not_zero(run_copy, capsys):
    from safetensors.numpy import load_file, save_file

    import ticketlens

    run = ticketlens.open_run(run_copy)
    name = run.anatomy.names[0]
    path = run_copy / run.manifest.weights["ticket"]
    state = load_file(str(path))
    pruned = np.argwhere(~run.mask()[name])[0]
    state[name][tuple(pruned)] = 1e-3
    save_file(state, str(path))
    _fails(capsys, ["verify", str(run_copy)], path.name, "1 pruned weights of " + name,
           "not zero")


@pytest.mark.parametrize(("damage", "needle"), [
    ("truncate-weights", "corrupt weights file"),
    ("delete-control-mask", "control_random_mask.safetensors"),
    ("record-sparsity", "the manifest records"),
    ("verdict", "the verdict's ticket"),
    ("nesting", "IMP only removes"),
])
@pytest.mark.parametrize("hashes", [True, False])
def test_damage_is_named(run_copy, capsys, damage, needle, hashes):
    """Content checks name the problem, with hashes recorded or without (runs written
    before ticketlens recorded them)."""
    manifest_path = run_copy / "manifest.json"
    m = json.loads(manifest_path.read_text())
    if not hashes:
        del m["files"]
    elif damage == "nesting":  # round 1 is nested in round 0 still: its hash names it first
        needle = "round_001.safetensors: changed since the run wrote it"
    if damage == "truncate-weights":
        p = run_copy / m["weights"]["dense"]
        p.write_bytes(p.read_bytes()[:200])
    elif damage == "delete-control-mask":
        (run_copy / "masks" / "control_random_mask.safetensors").unlink()
    elif damage == "record-sparsity":
        m["rounds"][1]["sparsity"] = 0.4
    elif damage == "verdict":
        m["verdict"]["ticket"] = 0.123
    elif damage == "nesting":  # round 1's mask where round 2's should be, and v.v.
        a, b = (run_copy / "masks" / f"round_00{i}.safetensors" for i in (1, 2))
        a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
        a.write_bytes(b_bytes)
        b.write_bytes(a_bytes)
        m["rounds"][1]["sparsity"], m["rounds"][2]["sparsity"] = \
            m["rounds"][2]["sparsity"], m["rounds"][1]["sparsity"]
        m["rounds"][1]["sparsity_per_tensor"], m["rounds"][2]["sparsity_per_tensor"] = \
            m["rounds"][2]["sparsity_per_tensor"], m["rounds"][1]["sparsity_per_tensor"]
    manifest_path.write_text(json.dumps(m))
    _fails(capsys, ["verify", str(run_copy)], needle)


def test_mutation_fuzz_every_change_is_named(run_copy, tmp_path):
    """tests/fuzz/fuzz_verify.py on 60 inputs (2,000 with `python tests/fuzz/fuzz_verify.py
    RUN`): a swapped bit, a flipped byte or a non-path in the manifest is exit 2 in one line,
    never exit 1, never a pass (but null in an optional path: "no file", allowed)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "fuzz"))
    from fuzz_verify import fuzz

    counts = fuzz(run_copy, 60, tmp_path / "mutated")
    assert sum(counts.values()) == 60
    assert all(rc in (0, 2) for _, rc in counts)
