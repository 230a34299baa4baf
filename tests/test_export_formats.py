"""``ticketlens export --format compressed-tensors|onnx`` (issue 24 item 4).

References: ticketlens' own evaluation of the same variant (``compress``'s variant file read
back into the run's model), torch's forward of the masked / sliced model, onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_export import kill_units, reference, write_run

import ticketlens
from ticketlens.cli.main import main
from ticketlens.compress.engine import stored_tensors, tied_aliases
from ticketlens.compress.store import read_variant, write_variant
from ticketlens.exporter.formats import export_format
from ticketlens.models.load import model_from_run

pytest.importorskip("compressed_tensors")
pytest.importorskip("onnxruntime")


def _dev_batches(run, n=96, size=32):
    """The run's dev set (first ``n`` examples), padded, as torch batches with labels."""
    from ticketlens.pruning.setup import prepare

    setup = prepare(ticketlens.FindConfig.from_dict(dict(run.manifest.config)))
    ids, types = setup.dev.enc.input_ids[:n], setup.dev.enc.token_type_ids[:n]
    pad = setup.tokenizer.pad_id
    out = []
    for i in range(0, len(ids), size):
        rows, trows = ids[i:i + size], types[i:i + size]
        w = max(len(r) for r in rows)
        out.append({"input_ids": torch.tensor([r + [pad] * (w - len(r)) for r in rows]),
                    "attention_mask": torch.tensor([[1] * len(r) + [0] * (w - len(r))
                                                    for r in rows]),
                    "token_type_ids": torch.tensor([r + [0] * (w - len(r)) for r in trows])})
    return out, setup.dev.labels[:n]


def _ticketlens_variant(run, scheme, group, tmp_path):
    """compress's own variant: written, read back, loaded into the run's model."""
    model = model_from_run(run, "ticket").eval()
    state, masks = run.weights("ticket"), {k: torch.from_numpy(v) for k, v in run.mask().items()}
    tensors = stored_tensors(state, list(masks), scheme, masks, group, tied_aliases(model))
    path = tmp_path / f"ticket+{scheme}.safetensors"
    write_variant(path, tensors)
    model.load_state_dict(read_variant(path))
    return model


@pytest.mark.parametrize(("quant", "group"), [("int8", 64), ("int4", 32)])
def test_compressed_tensors_loads_with_from_pretrained(quick_run, quant, group, tmp_path):
    import transformers as tf

    run = ticketlens.open_run(quick_run)
    out = tmp_path / "ct"
    res = export_format(run, out, format="compressed-tensors", quant=quant, group=group)
    cfg = json.loads((out / "config.json").read_text())["quantization_config"]
    assert cfg["quant_method"] == "compressed-tensors" and cfg["format"] == "pack-quantized"
    w = cfg["config_groups"]["group_0"]["weights"]
    assert w["num_bits"] == (8 if quant == "int8" else 4) and w["symmetric"]
    loaded = tf.AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    ours = _ticketlens_variant(run, quant, group, tmp_path)
    batches, _ = _dev_batches(run)
    with torch.no_grad():
        for b in batches:
            diff = (loaded(**b).logits - ours(**b).logits).abs().max()
            assert float(diff) <= 1e-4
    # pruned weights are exact zeros in the loaded model; the packed file is smaller
    for name, m in run.mask().items():
        assert torch.all(loaded.state_dict()[name][torch.from_numpy(~m)] == 0)
    assert res.file_bytes < sum(4 * t.numel() for t in run.weights("ticket").values())
    assert (out / "tokenizer.json").is_file()


def test_onnx_gives_the_same_predictions_on_the_dev_set(quick_run, tmp_path):
    import onnxruntime as ort

    run = ticketlens.open_run(quick_run)
    batches, labels = _dev_batches(run)
    torch_model = reference(run).eval()
    for quant in ("none", "int8"):
        out = tmp_path / quant
        res = export_format(run, out, format="onnx", quant=quant)
        sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        got, want = [], []
        for b in batches:
            got.append(sess.run(None, {k: v.numpy() for k, v in b.items() if k in names})[0])
            with torch.no_grad():
                want.append(torch_model(**b).logits.numpy())
        got, want = np.concatenate(got), np.concatenate(want)
        if quant == "none":
            assert np.abs(got - want).max() <= 1e-4
            assert (got.argmax(1) == want.argmax(1)).all()
        else:  # dynamic int8: the same predictions, logits near
            assert (got.argmax(1) == want.argmax(1)).mean() >= 0.97
            assert res.file_bytes < (tmp_path / "none" / "model.onnx").stat().st_size / 2
        assert len(got) == len(labels)


def test_onnx_of_a_structured_ticket_is_sliced(tmp_path):
    import onnxruntime as ort

    run = write_run(tmp_path / "run", "bert", kill=kill_units)
    res = export_format(run, tmp_path / "out", format="onnx")
    assert res.sliced
    full = export_format(run, tmp_path / "unsliced", format="onnx", slice=False)
    assert not full.sliced and res.file_bytes < full.file_bytes
    sess = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 50, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    names = {i.name for i in sess.get_inputs()}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    with torch.no_grad():
        want = reference(run).eval()(input_ids=ids, attention_mask=mask).logits.numpy()
    assert np.abs(sess.run(None, feed)[0] - want).max() <= 1e-4


@pytest.mark.parametrize(("args", "words"), [
    (["--format", "compressed-tensors"], "bitmask"),
    (["--format", "onnx", "--quant", "int4"], "int8 only"),
    (["--format", "hf", "--quant", "int8"], "float weights"),
    (["--format", "compressed-tensors", "--quant", "int8", "--slice"], "dense shapes"),
])
def test_what_a_format_cannot_hold_is_one_line(quick_run, tmp_path, capsys, args, words):
    assert main(["export", str(quick_run), "-o", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    assert not (tmp_path / "x").exists()
