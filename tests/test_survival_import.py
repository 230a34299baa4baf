"""Survival and dead units by hand; imports of other tools' masks; `compare` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

import ticketlens
from ticketlens.analysis.survival import sparsity_profile, survival
from ticketlens.cli.main import main
from ticketlens.core.errors import RunFormatError
from ticketlens.core.structure import expand_structured, unit_masks
from ticketlens.importers import FORMATS, bert_anatomy


def test_cli_format_list_matches_importers():
    from ticketlens.cli.import_ import FORMATS as CLI_FORMATS

    assert CLI_FORMATS == FORMATS


def test_structured_expansion_and_dead_units():
    a, _ = bert_anatomy(12, 12)
    heads = np.ones((12, 12), dtype=bool)
    heads[3, 5] = False
    ffn = np.ones(12, dtype=bool)
    ffn[7] = False
    masks = expand_structured(a, heads, ffn)
    q = masks["bert.encoder.layer.3.attention.self.query.weight"]
    assert not q[320:384].any() and q[:320].all() and q[384:].all()
    o = masks["bert.encoder.layer.3.attention.output.dense.weight"]
    assert not o[:, 320:384].any() and o[:, :320].all()
    assert not masks["bert.encoder.layer.7.intermediate.dense.weight"].any()
    u = unit_masks(a, masks)  # and back: the same units are dead
    assert np.array_equal(u.head, heads) and np.array_equal(u.ffn, ffn)
    assert int((~u.neuron).sum()) == 3072


def test_survival_on_a_run(quick_run):
    run = ticketlens.open_run(quick_run)
    s = survival(run)
    a = run.anatomy
    assert len(s.heads) == a.num_layers * a.num_heads
    assert s.sparsity == pytest.approx(0.75)
    # a head's kept fraction by hand from the mask
    masks = run.mask()
    sl = a.head_slices(1, 2)
    by_hand = [float(masks[x.name][x.index()].mean()) for x in
               (sl["q"], sl["k"], sl["v"], sl["o"])]
    h = s.head("L1H2")
    assert [h.q, h.k, h.v, h.o] == pytest.approx(by_hand)
    assert h.kept == pytest.approx(np.mean(by_hand))  # equal-sized slices
    for layer in s.neurons:
        assert layer.dead + layer.alive == a.intermediate
        assert sum(layer.histogram()) == a.intermediate
    prof = sparsity_profile(run)
    assert prof.sparsity.shape == (3, a.num_layers, 6)
    assert np.all(prof.sparsity[0] == 0)
    json.dumps(s.to_dict())
    json.dumps(prof.to_dict())


def test_compare_json_on_runs(quick_run, tmp_path, capsys):
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(quick_run, other)
    assert main(["compare", str(quick_run), str(other), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (pair,) = data["pairs"]
    assert pair["jaccard"] == 1.0 and pair["p_value"] < 1e-6
    assert {"fleiss_kappa", "super_survivors", "per_layer"} <= set(data)
    assert set(data["super_survivors"]) == {"observed", "expected"}
    for by in ("head", "neuron", "ffn", "layer"):
        assert main(["compare", str(quick_run), str(other), "--by", by]) == 0
        assert "Fleiss" in capsys.readouterr().out


def test_import_npz_safetensors_torch_prune(quick_run, tmp_path, capsys):
    from safetensors.numpy import save_file

    run = ticketlens.open_run(quick_run)
    masks = dict(run.mask())
    np.savez(tmp_path / "m.npz", **masks)
    save_file({k: v.astype(np.uint8) for k, v in masks.items()}, str(tmp_path / "m.st"))
    state = {k + "_mask": torch.from_numpy(v.astype(np.float32)) for k, v in masks.items()}
    state.update({k + "_orig": torch.zeros(v.shape) for k, v in masks.items()})
    torch.save(state, tmp_path / "m.pt")
    for fmt, f in (("npz", "m.npz"), ("safetensors", "m.st"), ("torch-prune", "m.pt")):
        out = tmp_path / f"run-{fmt}"
        assert main(["import", "--from", fmt, str(tmp_path / f), "--model", "tiny-bert",
                     "--out", str(out)]) == 0
        imported = ticketlens.open_run(out)
        for k, v in run.mask().items():
            assert np.array_equal(imported.mask()[k], v)
        with pytest.raises(RunFormatError, match="no ticket weights"):
            imported.weights("ticket")
    capsys.readouterr()


def test_malformed_imports(tmp_path, capsys):
    def fails(argv, match):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and match in err, err

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    fails(["import", "--from", "npz", str(bad), "--model", "tiny-bert", "--out",
           str(tmp_path / "o1")], "not a readable npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    fails(["import", "--from", "npz", str(tmp_path / "obj.npz"), "--model", "tiny-bert",
           "--out", str(tmp_path / "o2")], "not a readable npz")
    np.savez(tmp_path / "other.npz", **{"bert.encoder.layer.0.attention.self.query.weight":
                                        np.ones((3, 3), bool)})
    fails(["import", "--from", "npz", str(tmp_path / "other.npz"), "--model", "tiny-bert",
           "--out", str(tmp_path / "o3")], "another model")
    np.savez(tmp_path / "x.npz", x=np.ones(3))
    fails(["import", "--from", "npz", str(tmp_path / "x.npz"), "--out", str(tmp_path / "o4")],
          "needs --model")
    seed = tmp_path / "be" / "SST-2" / "seed_1"
    seed.mkdir(parents=True)
    np.save(seed / "head_mask.npy", np.full((12, 12), 0.5, dtype=np.float32))
    fails(["import", "--from", "bert-experiments", str(tmp_path / "be"), "--out",
           str(tmp_path / "o5")], "only 0 and 1")
    np.save(seed / "head_mask.npy", np.ones((5, 5), dtype=np.float32))
    fails(["import", "--from", "bert-experiments", str(tmp_path / "be"), "--out",
           str(tmp_path / "o6")], "not BERT-base")


BE = SHARED_DATA / "external" / "bert-experiments" / "heads_mlps"


@pytest.mark.skipif(not BE.is_dir(), reason="../shared/data/external/bert-experiments absent")
def test_import_bert_experiments_shared_sample(tmp_path, capsys):
    assert main(["import", "--from", "bert-experiments", str(BE / "RTE"), str(BE / "SST-2"),
                 "--out", str(tmp_path / "be")]) == 0
    capsys.readouterr()
    runs = sorted((tmp_path / "be").iterdir())
    assert len(runs) == 10
    r = ticketlens.open_run(runs[0])
    assert r.structured and r.anatomy.num_layers == 12
    heads = np.load(BE / r.task / f"seed_{r.seed}" / "head_mask.npy", allow_pickle=False)
    assert np.array_equal(r.units().head, heads.astype(bool))
    assert main(["compare", str(tmp_path / "be"), "--by", "head", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["pairs"]) == 45 and "by_task" in data


def test_transfer_end_to_end(quick_run, tmp_path, capsys):
    out = tmp_path / "to-agreement"
    assert main(["transfer", str(quick_run), "--task", "agreement", "--train-size", "256",
                 "--dev-size", "128", "-o", str(out), "--quiet"]) == 0
    assert "transfer" in capsys.readouterr().out
    r = ticketlens.open_run(out)
    assert r.task == "agreement" and r.complete
    assert [x.index for x in r.rounds] == [0, 1]
    src = ticketlens.open_run(quick_run)
    for k, v in src.mask().items():
        assert np.array_equal(r.mask(1)[k], v)
    assert set(r.controls) == {"random_mask"}
    assert r.manifest.extra["transfer"]["source_task"] == "sentiment"
    v = r.verdict
    assert v.winning == (v.status == "winning") == (
        v.dense_learned and not v.dense_under_trained and v.matches_dense
        and v.beats_controls["random_mask"])
