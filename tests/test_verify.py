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


def test_a_good_run_and_the_samples_verify(quick_run, capsys):
    assert main(["verify", "--json", str(quick_run)]) == 0
    [res] = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["rounds"] == 3 and res["controls"] == 2
    assert {"masks/round_002.safetensors", "masks/control_random_mask.safetensors",
            "weights/round_002.safetensors", "tokenizer.json"} <= set(res["files_checked"])
    if (SAMPLE_MASKS / "sentiment-s0").is_dir():
        runs = [str(p) for p in sorted(SAMPLE_MASKS.iterdir()) if p.is_dir()]
        assert main(["verify", *runs]) == 0
        assert capsys.readouterr().out.count("ok: ") == len(runs)


def test_a_flipped_mask_bit(run_copy, capsys):
    path = run_copy / "masks" / "round_002.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last packed byte of the last tensor: one weight more or less kept
    path.write_bytes(bytes(data))
    _fails(capsys, ["verify", str(run_copy)], "round_002.safetensors", "sparse")
    _fails(capsys, ["info", "--verify", str(run_copy)], "round_002.safetensors")
    assert main(["info", str(run_copy)]) == 0  # without --verify info reads the manifest only


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
def test_damage_is_named(run_copy, capsys, damage, needle):
    manifest_path = run_copy / "manifest.json"
    m = json.loads(manifest_path.read_text())
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
