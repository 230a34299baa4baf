"""``compress``: the embedding matrices quantized too, and vocabulary trimming (issue 24 item 1).

References: the symmetric formula by hand (scale = amax / 127.5 per row, round half to even,
clamp), the untrimmed model's logits (torch), the original tokenizer's ids."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import QUICK_FIND

import ticketlens
from ticketlens.cli.main import main
from ticketlens.compress import CompressConfig
from ticketlens.compress.engine import compress
from ticketlens.compress.store import read_variant
from ticketlens.compress.vocab import map_ids

SHORT = [*QUICK_FIND, "--steps", "20it", "--train-size", "256", "--dev-size", "128"]
EMBS = ("bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight")


def _by_hand(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-row quantization and back, written out (the issue's 'per row')."""
    qmax = 127 if bits == 8 else 7
    scale = torch.clamp(w.abs().amax(1, keepdim=True) / (qmax + 0.5),
                        min=torch.finfo(torch.float32).eps)
    return torch.clamp(torch.round(w * (1.0 / scale)), -qmax - 1, qmax) * scale


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress-embed")
    run, keep = root / "run", root / "files"
    assert main(["find", "--quiet", *SHORT, "--no-controls", "--out", str(run)]) == 0
    res = compress(run, CompressConfig(schemes=("int8", "int4"), group=32, fp16=False,
                                       latency=False, keep_dir=str(keep)))
    return run, keep, res


def test_embedding_variants_quantize_every_embedding(measured):
    run_path, keep, res = measured
    run = ticketlens.open_run(run_path)
    names = [v.name for v in res.variants]
    # today's variants keep their names; the new ones sit beside them
    assert {"dense", "dense+int8", "dense+int4-g32", "ticket", "ticket+int8",
            "ticket+int4-g32"} <= set(names)
    assert {"ticket+int8+emb-int8", "ticket+int4-g32+emb-int4", "ticket+vocab",
            "ticket+int4-g32+emb-int4+vocab"} <= set(names)
    ticket = run.weights("ticket")
    for scheme, bits in (("int8+emb-int8", 8), ("int4-g32+emb-int4", 4)):
        back = read_variant(keep / f"ticket+{scheme}.safetensors")
        plain = read_variant(keep / f"ticket+{scheme.split('+')[0]}.safetensors")
        for n in EMBS:
            assert torch.allclose(back[n], _by_hand(ticket[n], bits), atol=1e-7, rtol=0), n
            assert not torch.equal(back[n], ticket[n])
            assert torch.equal(plain[n], ticket[n])  # today's variant: embeddings float32
        # the matrices are those of the same scheme without embeddings
        for n in run.mask():
            assert torch.equal(back[n], plain[n])
    # bytes: the embedding payload goes from 4 bytes a weight to 1 (int8) + a float32 scale
    # a row; the header grows (two entries a quantized tensor: integers and scales)
    v = {x.name: x for x in res.variants}
    saved = sum(3 * ticket[n].numel() - 4 * ticket[n].shape[0] for n in EMBS)
    got = v["ticket+int8"].bytes - v["ticket+int8+emb-int8"].bytes
    assert 0 <= saved - got < 600, (got, saved)
    # the metric is measured on the dev set, not assumed: dense re-evaluated equals the run
    assert v["dense"].metrics[res.metric] == pytest.approx(run.rounds[0].metrics[res.metric],
                                                           abs=1e-9)


def test_vocab_trimming_keeps_logits_and_ids(measured):
    from tokenizers import Tokenizer

    from ticketlens.models.load import model_from_run

    run_path, keep, res = measured
    run = ticketlens.open_run(run_path)
    v = {x.name: x for x in res.variants}
    # every dev input is made of covered tokens: the same metric, and fewer bytes
    assert v["ticket+vocab"].metrics == v["ticket"].metrics
    assert v["ticket+vocab"].bytes < v["ticket"].bytes
    mapping = json.loads((keep / "ticket+vocab.vocab.json").read_text())
    kept, unk = mapping["kept_ids"], mapping["unk_id"]
    orig = Tokenizer.from_file(str(run.paths.tokenizer))
    assert mapping["original_vocab_size"] == orig.get_vocab_size()
    assert orig.id_to_token(kept[unk]) == "[UNK]"
    # the logits on the dev set equal the untrimmed model's (torch, same inputs)
    from ticketlens.pruning.setup import prepare
    setup = prepare(ticketlens.FindConfig.from_dict(dict(run.manifest.config)))
    ids = setup.dev.enc.input_ids[:32]
    width = max(len(r) for r in ids)
    pad = setup.tokenizer.pad_id
    x = torch.tensor([r + [pad] * (width - len(r)) for r in ids])
    att = (torch.arange(width)[None] < torch.tensor([len(r) for r in ids])[:, None]).long()
    full = model_from_run(run, "ticket").eval()
    small = model_from_run(run, "ticket").eval()
    back = read_variant(keep / "ticket+vocab.safetensors")
    word = back[EMBS[0]]
    assert word.shape[0] == len(kept) < full.config.vocab_size
    small.set_input_embeddings(torch.nn.Embedding.from_pretrained(word))
    xm = torch.tensor([map_ids(r, kept, unk) for r in x.tolist()])
    with torch.no_grad():
        a = full(input_ids=x, attention_mask=att).logits
        b = small(input_ids=xm, attention_mask=att).logits
    assert torch.equal(a, b)
    # the trimmed tokenizer: every covered token round-trips; an uncovered one is [UNK]
    trimmed = Tokenizer.from_file(str(keep / "ticket+vocab.tokenizer.json"))
    covered = [orig.id_to_token(i) for i in kept if not orig.id_to_token(i).startswith("[")]
    assert covered
    for t in covered:
        want = map_ids(orig.encode(t).ids, kept, unk)
        assert trimmed.encode(t).ids == want, t
        assert [trimmed.id_to_token(i) for i in want] == orig.encode(t).tokens
    uncovered = [t for t, i in orig.get_vocab().items() if i not in set(kept)]
    assert uncovered  # the short run does not use the whole vocabulary
    t = uncovered[0]
    assert map_ids(orig.encode(t).ids, kept, unk)[1:-1] == [unk]
    assert trimmed.encode(t).ids == map_ids(orig.encode(t).ids, kept, unk)


def test_tied_lm_head_stays_tied(tmp_path):
    """tiny-gpt2's LM head is the word embedding: stored once, quantized once, tied after
    loading."""
    from ticketlens.models.load import model_from_run

    out, keep = tmp_path / "clm", tmp_path / "files"
    assert main(["find", "--quiet", "--model", "tiny-gpt2", "--objective", "clm", *SHORT,
                 "--steps", "8it", "--rewind", "2it", "--no-controls", "--out",
                 str(out)]) == 0
    res = compress(out, CompressConfig(schemes=("int8",), embeddings=("int8",), fp16=False,
                                       latency=False, keep_dir=str(keep)))
    assert "dense+int8+emb-int8" in {v.name for v in res.variants}
    assert not any(v.name.endswith("+vocab") for v in res.variants)  # LM: not trimmed
    from safetensors import safe_open
    path = keep / "dense+int8+emb-int8.safetensors"
    with safe_open(str(path), framework="numpy") as f:
        stored = json.loads(f.metadata()["tensors"])
    assert "lm_head.weight" not in stored and stored["transformer.wte.weight"]["kind"] == "int8"
    assert stored["transformer.wpe.weight"]["kind"] == "int8"
    back = read_variant(path)
    assert back["lm_head.weight"] is back["transformer.wte.weight"]
    dense = ticketlens.open_run(out).weights("dense")
    assert torch.allclose(back["transformer.wte.weight"],
                          _by_hand(dense["transformer.wte.weight"], 8), atol=1e-7, rtol=0)
    model = model_from_run(ticketlens.open_run(out), "dense")
    model.load_state_dict(back)
    assert model.lm_head.weight is model.transformer.wte.weight


def test_bad_embedding_options_are_one_line(measured, capsys):
    run_path, _, _ = measured
    for args in (["--embeddings", "int3"], ["--emb-group", "48"]):
        assert main(["compress", str(run_path), "--no-latency", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ("embedding" in err or "emb-group" in err)


def test_structured_ticket_compresses_physically(tmp_path):
    """A unit ticket's sliced model (as `export` writes it) is a variant, alone and with
    int8 / int4: smaller matrices, the ticket's metric (slicing is exact up to rounding)."""
    from ticketlens.compress.quant import dequantize, quantize

    out, keep = tmp_path / "unit", tmp_path / "files"
    assert main(["find", "--quiet", *SHORT, "--granularity", "unit", "--no-controls",
                 "--out", str(out)]) == 0
    res = compress(out, CompressConfig(schemes=("int8", "int4"), group=32, fp16=False,
                                       latency=False, embeddings=(), vocab=False,
                                       keep_dir=str(keep)))
    v = {x.name: x for x in res.variants}
    assert {"ticket+sliced", "ticket+sliced+int8", "ticket+sliced+int4-g32"} <= set(v)
    assert "dense+sliced" not in v  # dense has no dead unit
    for name in ("ticket+sliced", "ticket+sliced+int8", "ticket+sliced+int4-g32"):
        assert v[name].sparsity == v["ticket"].sparsity
    assert v["ticket+sliced"].metrics[res.metric] == pytest.approx(
        v["ticket"].metrics[res.metric], abs=1e-9)
    assert v["ticket+sliced+int8"].bytes < v["ticket+int8"].bytes
    assert v["ticket+sliced+int4-g32"].bytes < v["ticket+sliced+int8"].bytes
    run = ticketlens.open_run(out)
    dense_shapes = run.anatomy.shapes
    back = read_variant(keep / "ticket+sliced.safetensors")
    smaller = [n for n, s in dense_shapes.items() if tuple(back[n].shape) != tuple(s)]
    assert smaller  # whole rows / columns left the matrices
    q4 = read_variant(keep / "ticket+sliced+int4-g32.safetensors")
    for n in dense_shapes:
        w = back[n]
        g = 32 if w.shape[1] % 32 == 0 else None  # a sliced width: one scale a row
        assert torch.equal(q4[n], dequantize(quantize(w, 4, g))), n
