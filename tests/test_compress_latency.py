"""``compress``: CPU latency of every Pareto variant and of the sliced ticket with torch's
dynamic int8 (issue 24 item 3), how each runs, the speedup over dense fp32, and old
``compress.json`` files (no ``runs_as`` / ``speedup``) still read. No test asserts a time.

References: torch's ``quantize_dynamic`` applied to the model ``export`` slices and
``load_pruned`` loads back (the sliced dynamic-int8 variant's metric); the Pareto flags
recomputed from the rows; dense fp32's ms over each row's (the speedup)."""

from __future__ import annotations

import json

import pytest
from conftest import QUICK_FIND

import ticketlens
from ticketlens.cli.main import main
from ticketlens.compress import CompressConfig, pareto_flags, read_compress
from ticketlens.compress.engine import compress, dynamic_int8
from ticketlens.compress.result import CompressResult, runs_as
from ticketlens.compress.store import read_variant

SHORT = [*QUICK_FIND, "--steps", "20it", "--train-size", "256", "--dev-size", "128"]


@pytest.fixture(scope="module")
def unit(tmp_path_factory):
    """A head/neuron ticket (whole units dead: a sliced variant exists), measured with
    every scheme and latency (one timed pass: the rows matter here, not the times)."""
    root = tmp_path_factory.mktemp("compress-latency")
    run, keep = root / "unit", root / "files"
    assert main(["find", "--quiet", *SHORT, "--granularity", "unit", "--no-controls",
                 "--out", str(run)]) == 0
    res = compress(run, CompressConfig(group=32, fp16=False, latency_repeats=1,
                                       keep_dir=str(keep)))
    return run, keep, res


def test_sliced_dynamic_int8_is_a_measured_variant(unit, tmp_path):
    from ticketlens.core.config import FindConfig
    from ticketlens.exporter import export_run, load_pruned
    from ticketlens.pruning.objectives import evaluate_metrics
    from ticketlens.pruning.setup import prepare
    from ticketlens.pruning.train import make_accelerator

    run_path, keep, res = unit
    v = {x.name: x for x in res.variants}
    # the sliced ticket with every scheme a dense model gets (embeddings, vocabulary too)
    assert {"ticket+sliced+int8+emb-int8", "ticket+sliced+int4-g32+emb-int4",
            "ticket+sliced+vocab", "ticket+sliced+int4-g32+emb-int4+vocab"} <= set(v)
    assert v["ticket+sliced+int4-g32+emb-int4+vocab"].scheme == "sliced+int4-g32+emb-int4+vocab"
    assert v["ticket+sliced+vocab"].metrics == v["ticket+sliced"].metrics  # dev ids covered
    assert v["ticket+sliced+int4-g32+emb-int4+vocab"].bytes < v["ticket+sliced+int4-g32"].bytes
    dyn = v["ticket+sliced+dynamic-int8"]
    assert dyn.model == "ticket" and dyn.scheme == "sliced+dynamic-int8"
    assert dyn.sparsity == v["ticket"].sparsity
    # its bytes are its file's, smaller than the sliced float32 file
    assert (keep / "ticket+sliced+dynamic-int8.safetensors").stat().st_size == dyn.bytes
    assert dyn.bytes < v["ticket+sliced"].bytes
    # its metric: torch's dynamic int8 of the model `export` slices, evaluated on the dev set
    run = ticketlens.open_run(run_path)
    export_run(run, tmp_path / "hf")
    sliced = load_pruned(tmp_path / "hf")
    cfg = FindConfig.from_dict(dict(run.manifest.config))
    setup = prepare(cfg)
    ref = evaluate_metrics(make_accelerator(cfg.train), dynamic_int8(sliced), setup,
                           cfg.train.eval_batch_size)
    assert dyn.metrics[res.metric] == pytest.approx(ref[res.metric], abs=1e-9)
    # the file holds torch's int8 weights of the sliced matrices
    back = read_variant(keep / "ticket+sliced+dynamic-int8.safetensors")
    q = dynamic_int8(sliced)
    for name, mod in q.named_modules():
        if hasattr(mod, "weight") and callable(mod.weight) and f"{name}.weight" in back:
            assert back[f"{name}.weight"].shape == mod.weight().shape
            assert (back[f"{name}.weight"] == mod.weight().dequantize()).all(), name


def test_latency_rows_cover_the_front_and_sliced_dynamic_int8(unit):
    _, _, res = unit
    by = {}
    for x in res.latency:
        by.setdefault(x.variant, []).append(x)
    # Pareto over every variant recomputed from (bytes, metric); the cells' front too
    pts = [(v.bytes, v.metrics[res.metric]) for v in res.variants]
    assert [v.pareto for v in res.variants] == pareto_flags(pts, res.higher_is_better)
    front = {v.name for v in res.variants if v.pareto} | {c.variant for c in res.cells
                                                           if c.pareto}
    assert front and front <= set(by)
    assert {"dense", "dense+dynamic-int8", "ticket+sliced+dynamic-int8"} <= set(by)
    assert set(by) == front | {"dense", "dense+dynamic-int8", "ticket+sliced+dynamic-int8"}
    assert res.latency[0].variant == "dense"  # the baseline first
    scheme = {v.name: v.scheme for v in res.variants}
    for name, rows in by.items():
        assert sorted(x.batch for x in rows) == [1, 32], name
        assert all(x.tokens == 64 and x.ms > 0 and x.threads >= 1 for x in rows)
        assert all(x.runs_as == runs_as(scheme[name]) for x in rows)
    assert by["dense"][0].runs_as == "fp32 kernels, dense shape"
    assert by["dense+dynamic-int8"][0].runs_as == "int8 kernels (torch dynamic), dense shape"
    assert by["ticket+sliced+dynamic-int8"][0].runs_as == "int8 kernels (torch dynamic), sliced"
    # speedup: dense fp32's ms at the same batch over the row's (rounded to 3 decimals)
    dense = {x.batch: x.ms for x in by["dense"]}
    for x in res.latency:
        assert x.speedup == pytest.approx(dense[x.batch] / x.ms, abs=1e-3)
    assert all(x.speedup == 1.0 for x in by["dense"])


def test_runs_as_names_how_each_scheme_executes():
    assert runs_as("fp32") == "fp32 kernels, dense shape"
    assert runs_as("int4-g64+emb-int4+vocab") == "fp32 kernels, dense shape, dequantized at load"
    assert runs_as("fp16") == "fp32 kernels, dense shape, dequantized at load"
    assert runs_as("vocab") == "fp32 kernels, dense shape"
    assert runs_as("sliced") == "fp32 kernels, sliced"
    assert runs_as("sliced+int8") == "fp32 kernels, sliced, dequantized at load"
    assert runs_as("dynamic-int8") == "int8 kernels (torch dynamic), dense shape"


def test_cli_info_and_report_show_the_speedup(unit, capsys):
    from ticketlens.report.compress import latency_table

    run_path, _, res = unit
    capsys.readouterr()
    assert main(["info", str(run_path)]) == 0
    out = capsys.readouterr().out
    assert "× vs dense fp32" in out and "runs as" in out and "int8 kernels" in out
    x = next(x for x in res.latency if x.variant == "ticket+sliced+dynamic-int8")
    assert f"{x.speedup:.2f}" in out
    assert main(["info", "--json", str(run_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["compress"]["latency"]
    assert {"runs_as", "speedup"} <= set(rows[0])
    html = latency_table(res)
    assert "ticket+sliced+dynamic-int8" in html and f"{x.speedup:.2f}" in html


def test_old_compress_json_without_the_new_fields_still_reads(unit, tmp_path, capsys):
    """A table written before latency rows had ``runs_as`` / ``speedup`` (and with only the
    dense and dense dynamic-int8 rows): read, verified, shown by info and the report."""
    import shutil

    from ticketlens.report.html import build_report

    run_path, _, _ = unit
    old = tmp_path / "old"
    shutil.copytree(run_path, old)
    data = json.loads((old / "compress.json").read_text())
    data["latency"] = [{k: x[k] for k in ("variant", "batch", "tokens", "ms", "threads")}
                       for x in data["latency"]
                       if x["variant"] in ("dense", "dense+dynamic-int8")]
    from ticketlens.core.run import RunWriter

    RunWriter(old).file(old / "compress.json", json.dumps(data).encode())
    res = read_compress(old)
    assert isinstance(res, CompressResult) and len(res.latency) == 4
    assert all(x.runs_as == "" and x.speedup is None for x in res.latency)
    capsys.readouterr()
    assert main(["verify", str(old)]) == 0
    assert main(["info", str(old)]) == 0
    out = capsys.readouterr().out
    assert "CPU latency" in out and "dense + dynamic-int8" in out
    assert "compress-0" in build_report([ticketlens.open_run(old)])
    # a latency row naming a variant the table does not hold is refused by verify
    data["latency"][0]["variant"] = "nope"
    RunWriter(old).file(old / "compress.json", json.dumps(data).encode())
    capsys.readouterr()
    assert main(["verify", str(old)]) != 0
    got = capsys.readouterr()
    assert "'nope'" in got.out + got.err
