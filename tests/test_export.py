"""``ticketlens export`` and ``ticketlens.load_pruned``.

The reference everywhere is the run's model as ticketlens rebuilds it
(``models.load.model_from_run``) with the round's mask applied (``MaskEnforcer``): the
exported folder must give its logits, through stock ``from_pretrained`` (unsliced, or
sliced with equal counts per layer) or ``load_pruned`` (sliced). Runs are written directly
(random biases, so folded constants are not trivially zero; 50% random weight masks plus
whole heads and neurons pruned by hand), which keeps this file to a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import numpy as np
import pytest
import torch
import transformers as tf

import ticketlens
from ticketlens.cli.main import main
from ticketlens.core.errors import ConfigError
from ticketlens.core.record import FORMAT, FORMAT_VERSION, Manifest
from ticketlens.core.run import RunWriter, open_run
from ticketlens.data.tokenizer import builtin_tokenizer
from ticketlens.exporter import export_run
from ticketlens.models.anatomy import anatomy_of
from ticketlens.models.load import build_preset, model_class, model_from_run
from ticketlens.pruning.masking import MaskEnforcer

PRESET = {"bert": "tiny-bert", "distilbert": "tiny-distilbert", "gpt2": "tiny-gpt2",
          "llama": "tiny-llama"}


def write_run(out, family="bert", *, objective="classification", kill=None, biases=False,
              weights=True, seed=0, max_length=None, length_in=("config", "tokenizer")):
    """A two-round run of a tiny ``family`` model: round 1 keeps a random 50% of each
    matrix, then ``kill(anatomy, masks)`` prunes whole slices. ``biases``: Llama with
    attention and MLP biases. ``max_length``: the run's ``--max-length``, recorded where
    ``length_in`` says (``find`` records it in both: its config, and the truncation its
    tokenizer's ``encode`` leaves set in ``tokenizer.json``)."""
    tok = builtin_tokenizer()
    if max_length and "tokenizer" in length_in:
        tok.encode(["the movie was great"], None, max_length)
    loaded = build_preset(PRESET[family], vocab_size=tok.vocab_size, num_labels=2,
                          pad_id=tok.pad_id, seed=seed, objective=objective)
    model = loaded.model
    if biases:
        cfg = model.config
        cfg.attention_bias = cfg.mlp_bias = True
        model = model_class(objective).from_config(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):  # trained models have non-zero biases
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    anatomy = anatomy_of(model)
    rng = np.random.default_rng(seed)
    masks = {t.name: rng.random(t.shape) < 0.5 for t in anatomy.tensors}
    if kill is not None:
        kill(anatomy, masks)
    MaskEnforcer(model, masks).apply_to_weights()
    w = RunWriter(out)
    ones = {n: np.ones_like(m) for n, m in masks.items()}
    # the exact sparsity of the masks (every mask reader checks the kept count against it)
    sparsity = 1 - sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
    rounds = [{"round": r, "sparsity": s, "mask": w.mask(r, m)}
              for r, s, m in ((0, 0.0, ones), (1, sparsity, masks))]
    state = model.state_dict()
    files = {"rewind": w.weights("rewind", state), "dense": w.weights(0, state),
             "ticket": w.weights(1, state)} if weights else {}
    w.tokenizer(tok)
    cfg = model.config.to_dict()
    w.manifest(Manifest.from_dict({
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": "complete",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(), "seed": seed,
        "model": {"name": PRESET[family], "family": anatomy.family, "objective": objective,
                  "config": cfg},
        "anatomy": anatomy.to_dict(), "task": {"name": "sentiment"}, "rounds": rounds,
        "weights": files, "ticket_round": 1, "tokenizer": {"file": "tokenizer.json"},
        **({"config": {"data": {"max_length": max_length}}}
           if max_length and "config" in length_in else {}),
    }))
    return open_run(out)


def reference(run, round_index=None):
    """The masked model in ticketlens: stored weights, the round's mask applied."""
    model = model_from_run(run, "ticket" if round_index is None else "dense")
    MaskEnforcer(model, run.mask(round_index)).apply_to_weights()
    return model


def logits(model, n=24, length=12):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (3, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length // 2:] = 0  # padding too
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def prune(masks, anatomy, layer, unit, part, *, neuron=False):
    s = (anatomy.neuron_slices if neuron else anatomy.head_slices)(layer, unit)[part]
    masks[s.name][s.index()] = False


def kill_units(anatomy, masks):
    """Per layer different counts: heads dead by O or by V (folded), one attention-blind head
    (Q pruned: kept); neurons dead by output column or by input (and gate) row."""
    H = anatomy.num_heads
    for layer in range(anatomy.num_layers):
        prune(masks, anatomy, layer, 0, "o")
        if layer == 0:
            prune(masks, anatomy, layer, H - 1, "q")  # blind, not dead
        if anatomy.num_kv_heads == H:
            prune(masks, anatomy, layer, 1 + layer, "v")
        else:  # GQA: V belongs to the K/V head of heads 2 and 3 in layer 1
            if layer == 1:
                prune(masks, anatomy, layer, 2, "v")
        for n in range(0, anatomy.intermediate, 3 + layer):
            prune(masks, anatomy, layer, n, "out", neuron=True)
        for n in range(1, anatomy.intermediate, 4):
            for part in ("in", "gate"):
                if part in anatomy.neuron_slices(layer, n):
                    prune(masks, anatomy, layer, n, part, neuron=True)
        for n in range(2, anatomy.intermediate, 8):  # gated: the gate row alone
            part = "gate" if "gate" in anatomy.neuron_slices(layer, n) else "in"
            prune(masks, anatomy, layer, n, part, neuron=True)


@pytest.mark.parametrize(("family", "objective"), [
    ("bert", "classification"), ("distilbert", "classification"), ("gpt2", "classification"),
    ("llama", "classification"), ("bert", "mlm"), ("gpt2", "clm")])
def test_any_ticket_loads_with_stock_classes(family, objective, tmp_path):
    run = write_run(tmp_path / "run", family, objective=objective)
    res = export_run(run, tmp_path / "out")
    assert not res.sliced and res.stock_loadable and res.parameters == res.dense_parameters
    model = model_class(objective).from_pretrained(tmp_path / "out").eval()
    assert torch.allclose(logits(model), logits(reference(run)), atol=1e-6, rtol=0)
    # the run's word-level tokenizer, through AutoTokenizer
    tok = tf.AutoTokenizer.from_pretrained(tmp_path / "out")
    enc = run_tok = builtin_tokenizer().encode(["the movie was great"], ["a film"], 64)
    got = tok("the movie was great", "a film")
    assert got["input_ids"] == run_tok.input_ids[0]
    if family == "bert":
        assert got["token_type_ids"] == enc.token_type_ids[0]
    assert tok.pad_token_id == builtin_tokenizer().pad_id
    meta = json.loads((tmp_path / "out" / "ticketlens.json").read_text())
    assert meta["round"] == 1 and meta["objective"] == objective
    assert meta["sparsity"] == run.manifest.round(1).sparsity == pytest.approx(0.5, abs=0.01)
    assert meta["units"]["heads"]["kept"] == meta["units"]["heads"]["total"]


@pytest.mark.parametrize("length_in", [("config", "tokenizer"), ("config",), ("tokenizer",)])
def test_exported_tokenizer_keeps_the_runs_max_length(length_in, tmp_path):
    """The model saw at most the run's --max-length tokens (48 here; tiny-bert has 128
    positions): the exported tokenizer says so (model_max_length, and the truncation in its
    tokenizer.json) and truncates as the run's own tokenizer did."""
    run = write_run(tmp_path / "run", max_length=48, length_in=length_in)
    export_run(run, tmp_path / "out")
    tok = tf.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tok.model_max_length == 48
    saved = json.loads((tmp_path / "out" / "tokenizer.json").read_text())
    assert saved["truncation"]["max_length"] == 48
    long = " ".join(["the movie was great"] * 40)  # 160 words, 162 tokens with [CLS] [SEP]
    ours = builtin_tokenizer().encode([long], None, 48).input_ids[0]
    assert len(ours) == 48 and tok(long, truncation=True)["input_ids"] == ours


def test_a_run_without_a_max_length_keeps_the_models_positions(tmp_path):
    run = write_run(tmp_path / "run")  # an imported run: no config, no truncation
    export_run(run, tmp_path / "out")
    tok = tf.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tok.model_max_length == run.manifest.model.config["max_position_embeddings"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o755), (0o027, 0o750), (0o077, 0o700)])
def test_export_folder_respects_the_umask(umask, mode, tmp_path):
    """The folder is written as a temporary one and renamed into place: it must get the
    permissions mkdir gives (0o777 & ~umask; ``mkdtemp`` alone gives 0o700), its files
    those open() gives (0o666 & ~umask), so the other users of a shared machine can read
    the model when the umask lets them."""
    run = write_run(tmp_path / "run")
    old = os.umask(umask)
    try:
        export_run(run, tmp_path / "out")
        (tmp_path / "again").mkdir()  # an existing folder replaced (--overwrite)
        (tmp_path / "again" / "x").write_text("old")
        export_run(run, tmp_path / "again", overwrite=True)
    finally:
        os.umask(old)
    for folder in (tmp_path / "out", tmp_path / "again"):
        assert stat.S_IMODE(folder.stat().st_mode) == mode
        files = list(folder.iterdir())
        assert {"config.json", "tokenizer.json", "ticketlens.json"} <= {f.name for f in files}
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask for f in files), \
            {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}


@pytest.mark.parametrize(("family", "biases"), [
    ("bert", False), ("distilbert", False), ("gpt2", False), ("llama", False),
    ("llama", True)])
def test_structured_ticket_is_smaller_and_equal(family, biases, tmp_path):
    run = write_run(tmp_path / "run", family, kill=kill_units, biases=biases)
    res = export_run(run, tmp_path / "out")
    assert res.sliced and res.parameters < res.dense_parameters
    assert res.file_bytes < res.dense_parameter_bytes
    model = ticketlens.load_pruned(tmp_path / "out")
    assert torch.allclose(logits(model), logits(reference(run)), atol=1e-5, rtol=0)
    meta = json.loads((tmp_path / "out" / "ticketlens.json").read_text())
    layers = meta["layers"]
    a = run.anatomy
    if a.num_kv_heads == a.num_heads:
        # layer 0: head 0 (O) and 1 (V) gone, head 3 only blind: kept
        assert layers[0]["heads"] == [2, 3] and layers[1]["heads"] == [1, 3]
    else:
        # GQA, 2 query heads per K/V head: layer 0 loses head 0 only, so K/V head 0 stays
        # and head 0 is padded back (silenced) to keep the groups even; layer 1 loses
        # head 0 and the V-dead group of heads 2 and 3
        assert layers[0]["heads"] == [0, 1, 2, 3] and layers[0]["padded_heads"] == [0]
        assert layers[1]["heads"] == [1] and layers[1]["kv_heads"] == [0]
    for layer, units in enumerate(layers):
        out_dead = set(range(0, a.intermediate, 3 + layer))
        in_dead = set(range(1, a.intermediate, 4)) | set(range(2, a.intermediate, 8))
        if biases:  # SiLU(gate bias) != 0 times a varying up value: not constant, kept
            in_dead -= set(range(2, a.intermediate, 8))
        assert units["neurons"] == sorted(set(range(a.intermediate)) - out_dead - in_dead)
    assert meta["parameters"]["exported"] == res.parameters


def _uniform(anatomy, masks):
    """The same counts in every layer: one K/V group (or head), a quarter of the neurons."""
    for layer in range(anatomy.num_layers):
        group = anatomy.num_heads // anatomy.num_kv_heads
        if anatomy.family == "llama":
            for h in range(group):
                prune(masks, anatomy, layer, anatomy.num_heads - 1 - h, "o")
        for n in range(0, anatomy.intermediate, 4):
            prune(masks, anatomy, layer, n, "out", neuron=True)


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_uniform_slices_load_with_stock_from_pretrained(family, tmp_path):
    run = write_run(tmp_path / "run", family, kill=_uniform)
    res = export_run(run, tmp_path / "out")
    assert res.sliced and res.stock_loadable
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["intermediate_size"] == run.anatomy.intermediate * 3 // 4
    if family == "llama":
        assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]) == \
            (2, 1, run.anatomy.head_dim)
    stock = tf.AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert torch.allclose(logits(stock), logits(reference(run)), atol=1e-5, rtol=0)


def test_bert_with_fewer_heads_fails_stock_loading_loudly(tmp_path):
    """BERT derives head size = hidden / heads, so fewer heads cannot be said in its config:
    config.json keeps the dense sizes and a stock load refuses the smaller matrices."""
    run = write_run(tmp_path / "run", "bert", kill=kill_units)
    assert not export_run(run, tmp_path / "out").stock_loadable
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        tf.AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")


def test_round_and_no_slice(tmp_path, capsys):
    run = write_run(tmp_path / "run", "gpt2", kill=kill_units)
    assert main(["export", str(run.path), "-o", str(tmp_path / "dense"), "--round", "0"]) == 0
    assert "round 0" in capsys.readouterr().out
    model = tf.AutoModelForSequenceClassification.from_pretrained(tmp_path / "dense").eval()
    assert torch.allclose(logits(model), logits(reference(run, 0)), atol=1e-6, rtol=0)
    assert main(["export", str(run.path), "-o", str(tmp_path / "flat"), "--no-slice",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert not out["sliced"] and out["parameters"] == out["dense_parameters"]
    assert torch.allclose(logits(ticketlens.load_pruned(tmp_path / "flat")),
                          logits(reference(run)), atol=1e-6, rtol=0)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    run = write_run(tmp_path / "run", "bert")
    bare = write_run(tmp_path / "bare", "bert", weights=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    cases = [([str(bare.path), "-o", str(tmp_path / "o1")], "no trained weights"),
             ([str(run.path), "-o", str(tmp_path / "o2"), "--round", "7"], "no round 7"),
             ([str(run.path), "-o", str(tmp_path / "full")], "--overwrite")]
    for args, text in cases:
        assert main(["export", *args]) == 2
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare", "full", "run"]  # no temp
    with pytest.raises(ConfigError):
        export_run(bare, tmp_path / "o3")
    assert main(["export", str(run.path), "-o", str(tmp_path / "full"), "--overwrite"]) == 0
    assert not (tmp_path / "full" / "x").exists()
    assert (tmp_path / "full" / "model.safetensors").is_file()
    with pytest.raises(ticketlens.TicketlensError, match="not written by"):
        ticketlens.load_pruned(tmp_path / "run")
