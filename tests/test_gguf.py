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
