"""``ticketlens compress``: quantization (vs hand computations, torch and torchao), the
variant files and their bytes, the 8 cells and their Pareto front, bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import QUICK_FIND, settle

import ticketlens
from ticketlens.cli.main import main
from ticketlens.compress import CompressConfig, pareto_flags, read_compress
from ticketlens.compress.engine import compress, dynamic_int8
from ticketlens.compress.quant import check_zeros_kept, dequantize, quantize
from ticketlens.compress.store import Stored, read_variant, write_variant

SHORT = [*QUICK_FIND, "--steps", "20it", "--train-size", "256", "--dev-size", "128"]


# --------------------------------------------------------------------------- quantization
def test_int8_and_int4_equal_the_hand_computation():
    # int8 per row: amax 0.99609375 = 127.5 * 2^-7, so scale = 2^-7 exactly and w * 128 =
    # (0, 12.8, -127.5, 64) -> round half to even (0, 13, -128, 64) -> q * 2^-7
    w = torch.tensor([[0.0, 0.1, -0.99609375, 0.5]])
    qt = quantize(w, 8)
    assert qt.scale.tolist() == [[2 ** -7]] and qt.q.tolist() == [[0, 13, -128, 64]]
    assert dequantize(qt).tolist() == [[0.0, 0.1015625, -1.0, 0.5]]
    # int4: amax 0.9375 = 7.5 * 2^-3, scale 1/8: w * 8 = (0, 2.4, -7.5, 4) -> (0, 2, -8, 4)
    w4 = torch.tensor([[0.0, 0.3, -0.9375, 0.5] * 8])  # 32 inputs: one group of 32
    qt4 = quantize(w4, 4, 32)
    assert qt4.scale.tolist() == [[0.125]] and qt4.q[0, :4].tolist() == [0, 2, -8, 4]
    assert dequantize(qt4)[0, :4].tolist() == [0.0, 0.25, -1.0, 0.5]
    # a row that is all zeros (pruned away) stays all zeros
    assert dequantize(quantize(torch.zeros(2, 64), 4, 64)).abs().sum() == 0


def test_int8_equals_torchao_weight_only_on_a_layer():
    """Reference: torchao's Int8WeightOnlyConfig (runs on this CPU); bit for bit."""
    pytest.importorskip("torchao")
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    torch.manual_seed(0)
    layer = torch.nn.Linear(96, 24)
    with torch.no_grad():
        layer.weight[torch.rand(24, 96) < 0.6] = 0.0  # a ticket: 60% pruned
    w = layer.weight.detach().clone()
    ours = quantize(w, 8)
    quantize_(layer, Int8WeightOnlyConfig())
    ref = layer.weight
    assert torch.equal(ours.q, ref.qdata) and torch.equal(ours.scale, ref.scale.reshape(-1, 1))
    assert torch.equal(dequantize(ours), ref.dequantize())


@pytest.mark.parametrize("group", [32, 64, 128])
def test_int4_equals_torchao_symmetric_primitives(group):
    """Reference: torchao's quantize_affine / dequantize_affine, symmetric, block (1, group),
    range [-8, 7] (its Int4WeightOnlyConfig kernels do not run on a CPU float32 model)."""
    pytest.importorskip("torchao")
    from torchao.quantization.quant_primitives import (
        MappingType,
        choose_qparams_affine,
        dequantize_affine,
        quantize_affine,
    )

    torch.manual_seed(1)
    w = torch.randn(16, 256)
    w[torch.rand(16, 256) < 0.5] = 0.0
    block = (1, group)
    scale, zp = choose_qparams_affine(w, MappingType.SYMMETRIC, block, torch.int8, -8, 7,
                                      eps=torch.finfo(torch.float32).eps,
                                      scale_dtype=torch.float32)
    q = quantize_affine(w, block, scale, zp, torch.int8, -8, 7)
    ours = quantize(w, 4, group)
    assert torch.equal(ours.q, q) and torch.equal(ours.scale, scale.reshape(16, -1))
    assert torch.equal(dequantize(ours), dequantize_affine(q, block, scale, zp, torch.int8,
                                                           -8, 7))


def test_pruned_weights_stay_exactly_zero():
    torch.manual_seed(2)
    w = torch.randn(32, 128)
    w[torch.rand(32, 128) < 0.8] = 0.0
    for qt in (quantize(w, 8), quantize(w, 4, 32), quantize(w, 4, 128)):
        check_zeros_kept(w, dequantize(qt))
        assert torch.all(qt.q[w == 0] == 0)
    with torch.no_grad():  # torch's own dynamic int8 (per tensor, symmetric)
        lin = torch.nn.Linear(128, 32)
        lin.weight.copy_(w)
    dq = dynamic_int8(torch.nn.Sequential(lin))[0].weight().dequantize()
    check_zeros_kept(w, dq)
    with pytest.raises(AssertionError, match="not zero"):
        check_zeros_kept(w, w + 1e-3, "w")


# --------------------------------------------------------------------------- files
def test_variant_files_read_back_and_have_the_expected_size(tmp_path):
    torch.manual_seed(3)
    w = torch.randn(8, 64)
    mask = torch.rand(8, 64) < 0.25
    w = w * mask
    emb = torch.randn(10, 4)
    n, kept = w.numel(), int(mask.sum())
    cases = {
        "dense": ({"w": Stored(w), "emb": Stored(emb)}, w, 4 * n),
        "ticket": ({"w": Stored(w, mask), "emb": Stored(emb)}, w, math.ceil(n / 8) + 4 * kept),
        "ticket16": ({"w": Stored(w, mask, "float16"), "emb": Stored(emb)},
                     w.half().float(), math.ceil(n / 8) + 2 * kept),
        "int8": ({"w": Stored(quantize(w, 8)), "emb": Stored(emb)},
                 dequantize(quantize(w, 8)), n + 4 * 8),
        "int4": ({"w": Stored(quantize(w, 4, 32)), "emb": Stored(emb)},
                 dequantize(quantize(w, 4, 32)), n // 2 + 4 * 8 * 2),
        "ticket-int4": ({"w": Stored(quantize(w, 4, 32), mask), "emb": Stored(emb)},
                        dequantize(quantize(w, 4, 32)),
                        math.ceil(n / 8) + math.ceil(kept / 2) + 4 * 8 * 2),
    }
    for name, (tensors, expected, payload) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        size = write_variant(path, tensors, aliases={"tied": "emb"})
        assert size == path.stat().st_size
        back = read_variant(path)
        assert torch.equal(back["w"], expected), name
        assert torch.equal(back["emb"], emb) and back["tied"] is back["emb"]
        assert torch.all(back["w"][~mask] == 0)
        # the file is its payload (+ embedding) + a JSON header; nothing else
        header = size - payload - 4 * emb.numel()
        assert 0 < header < 1500, (name, header)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    plain, distilled = root / "plain", root / "distilled"
    assert main(["find", "--quiet", *SHORT, "--no-controls", "--out", str(plain)]) == 0
    assert main(["find", "--quiet", *SHORT, "--no-controls", "--distill", "--out",
                 str(distilled)]) == 0
    return plain, distilled


def test_compress_fills_the_eight_cells(runs, tmp_path, capsys):
    plain, distilled = runs
    keep = tmp_path / "files"
    res = compress(plain, CompressConfig(group=32, latency_repeats=2, keep_dir=str(keep)),
                   distilled=distilled)
    run, d_run = ticketlens.open_run(plain), ticketlens.open_run(distilled)
    metric = run.metric
    assert read_compress(plain) == res  # saved as compress.json, and it reads back
    cells = {c.name: c for c in res.cells}
    assert len(cells) == 8 and all(c.variant is not None for c in cells.values())
    # dense and the ticket re-evaluate to what the run recorded
    assert cells["none"].metric == pytest.approx(run.rounds[0].metrics[metric], abs=1e-9)
    assert cells["prune"].metric == pytest.approx(run.ticket.metrics[metric], abs=1e-9)
    assert cells["prune+distill"].metric == pytest.approx(d_run.ticket.metrics[metric],
                                                          abs=1e-9)
    # bytes: real files; the ticket and every quantization are smaller than dense fp32
    for v in res.variants:
        assert (keep / f"{v.name}.safetensors").stat().st_size == v.bytes
        assert v.ratio == pytest.approx(res.variants[0].bytes / v.bytes, rel=1e-3)
    dense_b = cells["none"].bytes
    n_params = sum(t.numel() for t in run.weights("dense").values())
    assert 4 * n_params < dense_b < 4 * n_params + 20_000  # float32 + the header
    # born-again dense: the payload of dense (the header names the variant: a few bytes more)
    assert abs(cells["distill"].bytes - dense_b) <= 24
    assert cells["prune+quantize"].bytes < cells["prune"].bytes < dense_b
    assert cells["quantize"].bytes < dense_b
    # the prunable matrices alone: fp32 dense is 4 bytes a weight; the ticket 1 bit a weight
    # + 4 bytes a kept one; int8 1 byte a weight + a float32 scale a row
    shapes = run.anatomy.shapes
    n_prunable = sum(math.prod(s) for s in shapes.values())
    kept = sum(int(m.sum()) for m in run.mask().values())
    v = {x.name: x for x in res.variants}
    assert v["dense"].prunable_bytes == 4 * n_prunable
    assert v["ticket"].prunable_bytes == sum(math.ceil(math.prod(s) / 8)
                                             for s in shapes.values()) + 4 * kept
    assert v["dense+int8"].prunable_bytes == n_prunable + 4 * sum(s[0] for s in shapes.values())
    assert v["ticket"].prunable_ratio == pytest.approx(4 * n_prunable / v["ticket"].prunable_bytes,
                                                       rel=1e-3)
    names = {v.name for v in res.variants}
    assert {"dense+dynamic-int8", "dense+int4-g32", "ticket+fp16", "ticket+int4-g32",
            "distilled-ticket+int8"} <= names
    # Pareto flags are those of the (bytes, metric) points
    pts = [(c.bytes, c.metric) for c in res.cells]
    assert [c.pareto for c in res.cells] == pareto_flags(pts, res.higher_is_better)
    # latency at batch 1 and 32, same run: dense, torch's dynamic int8 and every Pareto
    # variant (the weight-level ticket has no dead unit: no sliced one);
    # test_compress_latency covers the rest
    timed = {v.name for v in res.variants if v.pareto} | {c.variant for c in res.cells
                                                           if c.pareto}
    assert {(x.variant, x.batch) for x in res.latency} == {
        (n, b) for n in timed | {"dense", "dense+dynamic-int8"} for b in (1, 32)}
    # the loader: each file reads back to the tensors that were evaluated
    ticket = run.weights("ticket")
    masks = run.mask()
    assert all(torch.equal(read_variant(keep / "dense.safetensors")[k], v)
               for k, v in run.weights("dense").items())
    back = read_variant(keep / "ticket+int8.safetensors")
    for n, m in masks.items():
        assert torch.equal(back[n], dequantize(quantize(ticket[n], 8)))
        assert torch.all(back[n][torch.from_numpy(~m)] == 0)
    # info shows the table; --json prints it
    capsys.readouterr()
    assert main(["info", str(plain)]) == 0
    out = capsys.readouterr().out
    assert "compression" in out and "× smaller" in out and "dense + int8" in out
    assert main(["info", "--json", str(plain)]) == 0
    assert json.loads(capsys.readouterr().out)["compress"]["cell_scheme"] == "int8"


def test_dynamic_int8_file_holds_torchs_weights(runs, tmp_path, capsys):
    """Reference: torch.ao.quantization.quantize_dynamic's own int8 weights."""
    from ticketlens.core.config import FindConfig
    from ticketlens.pruning.setup import prepare

    plain, _ = runs
    keep = tmp_path / "dyn"
    assert main(["compress", str(plain), "--schemes", "dynamic-int8", "--cell-scheme",
                 "dynamic-int8", "--no-latency", "--no-fp16", "--keep", str(keep),
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cells"][2]["variant"] == "dense+dynamic-int8"
    run = ticketlens.open_run(plain)
    setup = prepare(FindConfig.from_dict(dict(run.manifest.config)))
    setup.model.load_state_dict(run.weights("ticket"))
    q = dynamic_int8(setup.model)
    back = read_variant(keep / "ticket+dynamic-int8.safetensors")
    linears = [n for n, m in q.named_modules() if type(m).__name__ == "DynamicQuantizedLinear"
               or m.__class__.__module__.endswith("dynamic.modules.linear")]
    assert linears
    for n in linears:
        assert torch.equal(back[f"{n}.weight"], dict(q.named_modules())[n].weight().dequantize())
    for n, m in run.mask().items():
        assert torch.all(back[n][torch.from_numpy(~m)] == 0)
    assert np.isfinite(data["variants"][1]["metrics"][run.metric])


def _one_line_error(capsys, argv, match):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err and err.count("\n") == 0, err
    assert match in err, err


def test_bad_input_is_one_line(runs, tmp_path, capsys):
    plain, distilled = runs
    _one_line_error(capsys, ["compress", str(plain), "--schemes", "int8,int3"],
                    "unknown quantization scheme 'int3'")
    _one_line_error(capsys, ["compress", str(plain), "--group", "48"], "--group must be")
    _one_line_error(capsys, ["compress", str(plain), "--distilled", str(plain)],
                    "was not found with --distill")
    _one_line_error(capsys, ["compress", str(distilled)], "was found with --distill")
    other = tmp_path / "other"  # distilled, but another seed: not the same search
    assert main(["find", "--quiet", *SHORT, "--no-controls", "--distill", "--seed", "1",
                 "--out", str(other)]) == 0
    capsys.readouterr()
    _one_line_error(capsys, ["compress", str(plain), "--distilled", str(other)],
                    "other settings than")
    bare = tmp_path / "bare"  # a run without weights, as imported masks are
    shutil.copytree(plain, bare)
    shutil.rmtree(bare / "weights")
    (bare / "compress.json").unlink(missing_ok=True)
    _one_line_error(capsys, ["compress", str(bare), "--schemes", "int4"], "has no weights")


def test_report_and_tui_show_the_table(runs):
    """The report draws the cells (Pareto front marked) and the TUI lists them, from
    compress.json as computed (the table test above made it)."""
    import asyncio

    from ticketlens.report.compress import compress_drawn
    from ticketlens.report.html import build_report
    from ticketlens.tui.app import create_app

    plain, _ = runs
    res = read_compress(plain)
    if res is None:  # this test run alone: make the table first
        res = compress(plain, CompressConfig(latency=False, schemes=("int8",)))
    fig = compress_drawn(res).figure
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert len(front.x) == sum(c.pareto for c in res.cells)
    assert "compress-0" in build_report([ticketlens.open_run(plain)])

    async def look() -> list[list[str]]:
        app = create_app([str(plain)])
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot)
            table = app.screen.query_one("#compress")
            return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]

    rows = asyncio.run(look())
    assert [r[0] for r in rows] == [c.name for c in res.cells]
    assert [r[5] == "✓" for r in rows] == [c.pareto for c in res.cells]


def test_masked_lm_ties_and_perplexity(tmp_path):
    """An MLM's decoder is tied to the word embeddings: stored once where both stay float32,
    apart where torch's dynamic int8 quantizes the decoder; perplexity is lower-is-better."""
    out, keep = tmp_path / "mlm", tmp_path / "files"
    assert main(["find", "--quiet", "--model", "tiny-bert", "--objective", "mlm", *SHORT,
                 "--steps", "8it", "--rewind", "2it", "--no-controls", "--out", str(out)]) == 0
    res = compress(out, CompressConfig(schemes=("dynamic-int8", "int8"), latency=False,
                                       keep_dir=str(keep)))
    assert res.metric == "perplexity" and not res.higher_is_better
    measured = [c for c in res.cells if c.variant]
    assert len(measured) == 4 and [c.pareto for c in measured] == pareto_flags(
        [(c.bytes, c.metric) for c in measured], higher_is_better=False)
    dec, emb = "cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"
    dense = read_variant(keep / "dense.safetensors")
    assert dense[dec] is dense[emb]  # stored once
    dyn = read_variant(keep / "dense+dynamic-int8.safetensors")
    assert not torch.equal(dyn[dec], dyn[emb])  # int8 decoder, fp32 embeddings
    assert torch.equal(dyn[emb], ticketlens.open_run(out).weights("dense")[emb])
