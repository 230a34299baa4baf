"""A GGUF file as a model source (``--model model.gguf``): a tiny Llama this test writes with
gguf's writer, read back by transformers into the same model (logits equal), searched by
``find`` and read by ``roles``."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("gguf")

from ticketlens.cli.main import main
from ticketlens.core.errors import ModelError
from ticketlens.models.load import load_pretrained
from ticketlens.testing import write_tiny_gguf


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    model = write_tiny_gguf(path)
    return path, model


def test_a_gguf_file_loads_as_the_model_it_holds(tiny_gguf):
    path, reference = tiny_gguf
    loaded = load_pretrained(str(path), num_labels=2, objective="clm")
    assert loaded.source == "gguf" and loaded.pretrained and loaded.name == str(path)
    assert loaded.model.config.num_key_value_heads == 2
    assert next(loaded.model.parameters()).dtype == torch.float32
    ids = torch.tensor([[5, 60, 100, 200, 7, 9, 263]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits,
                                   reference(input_ids=ids).logits, rtol=0, atol=1e-6)
    from ticketlens.data.tokenizer import TextTokenizer

    tok = TextTokenizer.from_file(loaded.tokenizer_file, kind="model")
    assert tok.tok.encode(" the").tokens == ["Ġthe"] and tok.pad_token == "<|endoftext|>"


def test_find_and_roles_on_a_gguf_model(tiny_gguf, tmp_path, capsys):
    path, _ = tiny_gguf
    out = tmp_path / "run"
    assert main(["find", "--quiet", "--model", str(path), "--out", str(out), "--steps",
                 "6it", "--train-size", "64", "--dev-size", "32", "--batch-size", "16",
                 "--rate", "0.5", "--target-sparsity", "0.5", "--rewind", "2it"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["source"] == "gguf"
    capsys.readouterr()
    assert main(["roles", str(out), "--examples", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["causal"] and len(data["dense"]) == 2 * 4  # 4 query heads per layer (GQA)
    assert all(h["induction"] is not None for h in data["dense"])


def test_a_missing_gguf_file_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="no such GGUF file"):
        load_pretrained(str(tmp_path / "nope.gguf"), num_labels=2)


@pytest.mark.parametrize("method", ["sparsegpt", "magnitude"])
def test_oneshot_without_training_keeps_the_methods_own_weights(tiny_gguf, tmp_path, method):
    """``--steps 0``: round 0 is the model as loaded, round 1 the one-shot method's output as
    it is (SparseGPT's updated weights, not the pretrained ones under its mask), evaluated
    once more to the same perplexity the one-shot record holds."""
    from safetensors.torch import load_file

    path, _ = tiny_gguf
    out = tmp_path / "run"
    assert main(["find", "--quiet", "--model", str(path), "--objective", "clm", "--out",
                 str(out), "--steps", "0", "--train-size", "64", "--dev-size", "32",
                 "--method", method, "--target-sparsity", "0.5", "--calibration", "16",
                 "--no-controls"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    r0, r1 = manifest["rounds"]
    assert r0["steps"] == r1["steps"] == 0 and "train_loss" not in r0["metrics"]
    assert r1["metrics"]["perplexity"] == pytest.approx(
        r1["oneshot"]["metrics"]["perplexity"], rel=1e-6)
    loaded = load_pretrained(str(path), num_labels=2, objective="clm").model.state_dict()
    dense = load_file(str(out / manifest["weights"]["dense"]))
    ticket = load_file(str(out / manifest["weights"]["ticket"]))
    for name, w in loaded.items():
        torch.testing.assert_close(dense[name], w, rtol=0, atol=0)  # nothing trained
    name = "model.layers.1.mlp.down_proj.weight"
    kept = ticket[name] != 0
    assert kept.float().mean().item() == pytest.approx(0.5, abs=0.01)
    masked = torch.where(kept, loaded[name], torch.zeros(()))
    if method == "magnitude":  # a mask and nothing else
        torch.testing.assert_close(ticket[name], masked, rtol=0, atol=0)
    else:  # SparseGPT moves the kept weights to make up for the pruned ones
        assert (ticket[name] - masked).abs().max().item() > 1e-4


def test_steps_zero_needs_a_pretrained_model(tmp_path, capsys):
    assert main(["find", "--quiet", "--model", "tiny-llama", "--objective", "clm", "--out",
                 str(tmp_path / "run"), "--steps", "0", "--method", "wanda"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a pretrained model" in err[0]


def test_stability_refuses_a_run_found_without_training(tiny_gguf, tmp_path, capsys):
    """Review: ``stability`` of a ``--steps 0`` run trained both copies for 0 steps and
    reported "an error barrier of +0.0000" from every start (two copies of one model; Frankle
    et al.'s instability needs training with different SGD noise). Now one line, exit 2."""
    path, _ = tiny_gguf
    out = tmp_path / "run"
    assert main(["find", "--quiet", "--model", str(path), "--objective", "clm", "--out",
                 str(out), "--steps", "0", "--train-size", "64", "--dev-size", "16",
                 "--method", "magnitude", "--target-sparsity", "0.5", "--calibration", "16",
                 "--no-controls"]) == 0
    capsys.readouterr()
    assert main(["stability", str(out), "--points", "3", "--quiet"]) == 2
    err = [e for e in capsys.readouterr().err.splitlines() if e.strip() and "GGUF" not in e]
    assert len(err) == 1 and "--steps 0" in err[0]  # transformers' GGUF progress aside
    assert not (out / "analysis" / "stability.json").exists()


def test_steps_zero_refuses_distill_in_one_line(tiny_gguf, tmp_path, capsys):
    """Review: ``--steps 0 --distill`` ran and recorded a distilled run although no step
    trained against the teacher (like --early-bird, which was refused already)."""
    path, _ = tiny_gguf
    assert main(["find", "--quiet", "--model", str(path), "--objective", "clm", "--out",
                 str(tmp_path / "run"), "--steps", "0", "--train-size", "64",
                 "--method", "wanda", "--calibration", "16", "--distill"]) == 2
    err = [e for e in capsys.readouterr().err.splitlines() if e.strip() and "GGUF" not in e]
    assert len(err) == 1 and "--distill" in err[0] and "--steps 0" in err[0]
    assert not (tmp_path / "run" / "manifest.json").exists()
