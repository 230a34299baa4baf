"""`ticketlens report`: structure, escaping, determinism, offline, size; and in Chromium."""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_MASKS

from ticketlens.cli.main import main
from ticketlens.core.run import open_run
from ticketlens.report import figures as F
from ticketlens.report import fmt
from ticketlens.report.runs import ControlPoint, Point, run_view

FIGURES = ("accuracy", "overlap-0", "overlap-layers-0", "heads-0", "neurons-0", "profile-0")


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> Path:
    if not any(SAMPLE_MASKS.glob("*/manifest.json")):
        pytest.skip("sample_masks/ holds no runs")
    out = tmp_path_factory.mktemp("report") / "r.html"
    assert main(["report", str(SAMPLE_MASKS), "-o", str(out)]) == 0
    return out


def test_report_structure_offline_and_size(sample_report):
    text = sample_report.read_text()
    for name in FIGURES:
        assert re.search(rf'id="fig-\d\d-{name}"', text), name
    assert text.count("<script type='text/javascript'>") == 1  # plotly.js embedded once
    assert len(re.findall(r"plotly\.js[^\n]{0,30} v\d", text)) == 1
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=[\"']?https?:", text)
    assert not re.search(r"@import\s+url\(\s*[\"']?https?:", text)
    runs = len(list(SAMPLE_MASKS.glob("*/manifest.json")))
    assert sample_report.stat().st_size <= 6e6, f"{runs} runs"


def test_report_is_deterministic(sample_report, tmp_path):
    again = tmp_path / "again.html"
    assert main(["report", str(SAMPLE_MASKS), "-o", str(again)]) == 0
    assert again.read_bytes() == sample_report.read_bytes()


def test_run_supplied_strings_are_escaped(quick_run, tmp_path, capsys):
    evil = tmp_path / "evil"
    shutil.copytree(quick_run, evil)
    m = json.loads((evil / "manifest.json").read_text())
    m["task"]["name"] = "<script>alert(1)</script>"
    m["config"]["data"]["task"] = "<img src=x onerror=alert(2)>"
    (evil / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "evil.html"
    assert main(["report", str(evil), str(quick_run), "-o", str(out)]) == 0
    text = out.read_text()
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_report_renders_in_headless_chromium(sample_report):
    """In a real browser: every figure draws (an SVG each), the page writes nothing to the
    console, and the text a reader sees (tables, captions, and the figures' SVG: legends,
    titles, axes, cells) has a caption per figure and no nan, inf or code names."""
    import browser

    page = browser.render(sample_report)
    if page is None:
        pytest.skip("no Chromium: install the Debian package `chromium` (make browser)")
    assert not page.console, page.console  # no error, no warning, nothing
    chunks = re.split(r'(?=<figure><div id="fig-)', page.dom)[1:]  # one chunk per figure
    drawn = {re.search(r'<div id="fig-\d\d-([^"]+)"', c).group(1):
             ("main-svg" in c, "<figcaption>" in c) for c in chunks}
    assert len(drawn) == len(re.findall(r'id="fig-', sample_report.read_text()))
    for name in FIGURES:
        assert name in drawn, f"figure {name} missing"
    assert all(svg and caption for svg, caption in drawn.values()), drawn
    text = page.text()
    assert "Figure not drawn" not in text
    assert "What this report shows" in text and "Why each verdict" in text
    for bad in (r"(?<![\w.])-?inf\b", r"\bnan\b", r"\bNone\b", CODE_NAME.pattern):
        found = re.search(bad, text, re.I if "inf" in bad or "nan" in bad else 0)
        assert not found, text[max(0, found.start() - 80):found.end() + 80]
    svg_text = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", page.dom))
    assert "random mask control" in svg_text and "log scale" in svg_text  # legends, axes
    shot = browser.screenshot(sample_report, ROOT / "tests" / "artifacts" / "report.png",
                              1400, 2400)
    assert shot.stat().st_size > 10_000


# ----------------------------------------------------------------------------- what users read
def _figures(text: str) -> dict[str, dict]:
    """Every figure of a report as plotly draws it: {name: {"data": [...], "layout": {...}}}.
    A NaN (invalid JSON, which plotly.js would choke on) fails the parse."""
    def no_constants(c):
        raise AssertionError(f"figure JSON holds {c}")

    return {m.group(1): json.loads(m.group(2), parse_constant=no_constants)
            for m in re.finditer(r'<script type="application/json" data-figure="fig-\d\d-'
                                 r'([^"]+)">(.*?)</script>', text, re.S)}


def _strings(x) -> list[str]:
    if isinstance(x, str):
        return [x]
    if isinstance(x, dict):
        return [s for v in x.values() for s in _strings(v)]
    if isinstance(x, list):
        return [s for v in x for s in _strings(v)]
    return []


def _visible_text(text: str) -> list[str]:
    """The page's text (tables, headings, verdicts) and every string of every figure (hover
    text, titles, names, annotations), entity-decoded as a browser shows them."""
    page = re.sub(r"<script[^>]*>.*?</script>", " ", text, flags=re.S)
    page = html.unescape(re.sub(r"<[^>]+>", " ", page))
    figures = [html.unescape(s) for f in _figures(text).values() for s in _strings(f)]
    return [page, *figures]


def test_fmt_writes_na_zero_and_tiny_p_values():
    assert fmt.num(float("nan")) == fmt.num(None) == "n/a"
    assert fmt.num(-0.0) == fmt.num(-0.0001) == "0.000"
    assert fmt.num(-0.0004, ".1e") == "-4.0e-04"  # not zero: the sign stays
    assert fmt.num(-0.5) == "-0.500" and fmt.num(1234.5, ",.1f") == "1,234.5"
    assert fmt.pct(0.8) == "80.0%" and fmt.pct(-0.00001) == "0.0%" and fmt.pct(None) == "n/a"
    assert fmt.p_value(0.0) == "< 1e-300"
    assert fmt.p_value(0.0034) == "0.0034" and fmt.p_value(5e-324) == "4.9e-324"
    assert fmt.p_value(float("nan")) == "n/a"
    assert fmt.text(None) == "n/a" and fmt.text(-0.0) == "0.0" and fmt.text(1e-05) == "1e-05"
    assert fmt.text("a") == "a" and fmt.text(3) == "3"


def test_fmt_sig_rounds_figure_numbers():
    out = fmt.sig([[0.123456789, -0.0, float("nan")], [np.float32(1.5e-7), 3, None, True]])
    assert out == [[0.1235, 0.0, None], [1.5e-07, 3, None, True]]
    assert math.copysign(1.0, out[0][1]) == 1.0  # -0.0 is gone, not just equal to 0
    assert fmt.sig(np.array([[2 / 3, float("inf")]]), 2) == [[0.67, None]]


def test_report_shows_no_nan_negative_zero_or_p_zero(sample_report):
    """Tables, hover text, titles: no `nan`, no `-0.000`, no `p = 0` (sample_masks has all
    three: NaN head kappa, a neuron kappa of -0.0, p-values that underflow to 0)."""
    text = sample_report.read_text()
    shown = _visible_text(text)
    for s in shown:
        assert not re.search(r"\bnan\b", s, re.I), re.search(r".{0,60}\bnan\b.{0,20}", s, re.I)
        assert not re.search(r"(?<![\w.])-0(?:\.0+)?(?![\d.])", s), s
        assert not re.search(r"\bp(?:-value)?\s*[=:]?\s*0(?![\d.])", s), s
    everything = " ".join(shown)
    import ticketlens as tl

    runs = tl.runs(str(SAMPLE_MASKS))
    results = [tl.overlap(runs, by=by) for by in ("weight", "head", "neuron")]
    if any(math.isnan(o.fleiss_kappa) for o in results):
        assert "n/a" in everything  # the NaN kappa of identical head masks
    if any(p.p_value == 0 for p in results[0].pairs):
        assert "p < 1e-300" in everything  # the tiny p-values, said as such


def _legend_entries(fig: dict) -> list[tuple[str, tuple]]:
    """(name, look) of every legend entry of a figure: the look is what a reader tells
    entries apart by (mode, marker symbol and colour, line colour and dash, fill)."""
    out = []
    for t in fig["data"]:
        if t.get("showlegend") is False or not t.get("name"):
            continue
        if t["type"] == "heatmap":
            continue
        marker, line = t.get("marker", {}), t.get("line", {})
        mode = t.get("mode", "bar" if t["type"] == "bar" else "lines+markers")
        look = (t["type"], mode, marker.get("symbol", "circle") if "markers" in mode else None,
                marker.get("color") or line.get("color"),
                line.get("dash", "solid") if "lines" in mode else None)
        out.append((t["name"], look))
    return out


def test_every_run_has_its_own_panel_and_every_series_one_legend_entry(sample_report):
    """Small multiples: one panel per run (so no run hides under another: the agreement runs
    all sit at accuracy 1.0), each series once in the legend, no two entries alike, and a
    control never drawn on top of the ticket or of another control."""
    fig = _figures(sample_report.read_text())["accuracy"]
    views = [run_view(open_run(p.parent)) for p in sorted(SAMPLE_MASKS.glob("*/manifest.json"))]
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert sorted(t.split(" (")[0] for t in titles if t) == sorted(v.label for v in views)
    rounds = [t for t in fig["data"] if t["legendgroup"] == "rounds"]
    assert len(rounds) == len(views) and len({t["xaxis"] for t in rounds}) == len(views)
    entries = _legend_entries(fig)
    names = [n for n, _ in entries]
    assert names == list(dict.fromkeys(names)), names  # each once
    assert {"random mask control", "random reinit control", "the ticket (round chosen)",
            "dense model (round 0)"} <= set(names)
    assert len({look for _, look in entries}) == len(entries), entries
    for v in views:  # the controls sit right of the ticket, apart from each other
        axis = next(t["xaxis"] for t in rounds
                    if t["hovertemplate"].startswith(f"{html.escape(v.label)}<br>round"))
        xs = [t["x"][0] for t in fig["data"] if t["xaxis"] == axis and t["mode"] == "markers"]
        assert len(set(xs)) == len(xs) == 1 + len(v.controls), xs


def test_twelve_runs_and_three_controls_stay_apart():
    """More runs than today's sample, and a one-shot control: still a panel per run, a
    shape and a colour per control, each named once in the legend."""
    view = run_view(open_run(next(SAMPLE_MASKS.glob("*/manifest.json")).parent))
    oneshot = ControlPoint("oneshot", "one-shot magnitude", Point(view.ticket.sparsity, 0.5))
    views = [replace(view, label=f"{view.task} · seed {s}", seed=s,
                     controls=(*view.controls, oneshot)) for s in range(12)]
    fig = json.loads(F.accuracy_drawn(views).figure.to_json())
    assert len({t["xaxis"] for t in fig["data"]}) == 12
    by_control: dict[str, set] = {}
    for t in fig["data"]:
        if t["name"].endswith(" control"):
            by_control.setdefault(t["name"], set()).add((t["marker"]["symbol"],
                                                         t["marker"]["color"]))
    assert len(by_control) == 3 and all(len(s) == 1 for s in by_control.values())
    looks = set.union(*by_control.values())
    assert len({s for s, _ in looks}) == 3 and len({c for _, c in looks}) == 3
    assert len(_legend_entries(fig)) == 6  # dense, IMP rounds, the ticket, three controls


def test_every_axis_writes_small_numbers_plainly(sample_report):
    """No SI prefixes (plotly's default writes 1e-6 as `1µ`): every axis and colour bar of
    every figure has an exponent format of its own."""
    figures = _figures(sample_report.read_text())
    assert len(figures) == len(re.findall(r'id="fig-', sample_report.read_text()))
    for name, fig in figures.items():
        axes = {k: v for k, v in fig["layout"].items() if re.fullmatch(r"[xy]axis\d*", k)}
        assert {"xaxis", "yaxis"} <= set(axes), name
        for k, axis in axes.items():
            assert axis.get("exponentformat") not in (None, "B", "SI"), (name, k)
        for trace in fig["data"]:
            if trace["type"] == "heatmap":
                assert trace["colorbar"].get("exponentformat") not in (None, "B", "SI"), name


# The report for sample_masks/ took 5,353,465 bytes (plotly.js as text, 17-digit floats, the
# full plotly_white template in each of 33 figures), then 2,219,110 (plotly.py's full
# plotly.js gzip+base64: 1,958,508 of them); with the vendored cartesian bundle (660,776 as
# embedded) 0.93 MB. Most of what is left is plotly.js: the figures' JSON is a fraction of it.
BYTES_BEFORE = 2_219_110


def test_report_is_well_under_half_its_former_size(sample_report):
    from ticketlens.report.page import _plotly_js

    size = sample_report.stat().st_size
    assert size <= BYTES_BEFORE // 2
    _, packed = _plotly_js()
    assert size - len(packed) <= 0.6 * len(packed)  # the figures: less than the library


def test_plotly_js_is_embedded_whole_and_matches_plotly_py(sample_report):
    """The figures need no network: the page carries plotly.js itself (compressed), byte for
    byte the vendored cartesian bundle (its sha256 in report/vendor/README.md), of the very
    version plotly.py writes its figures for, and its licence header in plain text."""
    import hashlib

    from plotly.offline import get_plotlyjs

    from ticketlens.report.page import VENDORED, _version

    text = sample_report.read_text()
    packed = re.findall(r'<script type="application/octet-stream" id="plotlyjs-gzip">'
                        r"([A-Za-z0-9+/=]+)</script>", text)
    assert len(packed) == 1
    source = gzip.decompress(base64.b64decode(packed[0])).decode()
    assert source == gzip.decompress(VENDORED.read_bytes()).decode()
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest in (VENDORED.parent / "README.md").read_text()
    assert _version(source) == _version(get_plotlyjs()) is not None
    header = re.match(r"\s*/\*.*?\*/", source, re.S).group(0).strip()
    assert header in text.split('id="plotlyjs-gzip"')[1]  # in the loader, after the payload


def test_plotly_py_full_bundle_when_the_vendored_one_is_another_version(monkeypatch):
    """A plotly.py whose plotly.js is not the vendored version gets its own full bundle."""
    from plotly.offline import get_plotlyjs

    from ticketlens.report import page

    page._plotly_js.cache_clear()
    monkeypatch.setattr(page, "_version", lambda src: "cartesian" if "cartesian" in
                        src[:200] else "full")
    try:
        _, packed = page._plotly_js()
        assert gzip.decompress(base64.b64decode(packed)).decode() == get_plotlyjs()
    finally:
        page._plotly_js.cache_clear()


def test_seeds_section_draws_the_sweep_statistics(sample_report):
    """Three seeds a task in sample_masks: the report shows the statistics over seeds that
    ``tl.sweep_stats`` computes (table, intervals drawn as error bars, seed-fixed overlap)."""
    import ticketlens as tl

    stats = tl.sweep_stats(tl.runs(str(SAMPLE_MASKS)))
    text = sample_report.read_text(encoding="utf-8")
    section = text[text.index("<section id='seeds'>"):]
    section = section[:section.index("</section>")]
    for g in stats.groups:
        assert f"<td>{g.task}</td>" in section and f"'>{g.verdict}</span></td>" in section
        assert fmt.num(g.dense.mean, ".4f") in section
    [cross] = stats.cross_task
    assert f"held fixed {fmt.num(cross.same_seed_jaccard)}" in section
    figure = json.loads(re.search(r'data-figure="fig-\d+-seeds">(.*?)</script>', section,
                                  re.S).group(1))
    g = stats.groups[0]
    dense = next(t for t in figure["data"] if t["name"] == "dense model")
    high = min(g.dense.high, 1.0)  # accuracy: the interval clipped to [0, 1]
    assert dense["error_y"]["array"][0] == pytest.approx(high - g.dense.mean, abs=1e-4)
    assert dense["error_y"]["arrayminus"][0] == pytest.approx(g.dense.mean - max(
        g.dense.low, 0.0), abs=1e-4)


# ----------------------------------------------------------------------------- structured
@pytest.fixture(scope="module")
def structured_report(tmp_path_factory) -> tuple[Path, str]:
    """A structured run (one head in each state, unit sparsity, early-bird), exported, and
    its report with the export's sizes."""
    from structured_run import make_structured_run

    root = tmp_path_factory.mktemp("structured")
    run = make_structured_run(root / "unit")
    assert main(["export", str(run), "-o", str(root / "exp")]) == 0
    out = root / "r.html"
    assert main(["report", str(run), "--export", str(root / "exp"), "-o", str(out)]) == 0
    return root, out.read_text()


def test_head_heatmap_colours_heads_by_state(structured_report):
    from structured_run import STATES

    from ticketlens.core.structure import STATE_NAMES

    heat = _figures(structured_report[1])["heads-0"]["data"][0]
    for unit, state in {**STATES, "L3H3": "alive"}.items():
        layer, head = (int(x) for x in unit[1:].split("H"))
        assert STATE_NAMES[heat["z"][layer][head]] == state, unit
        assert f"{unit}: <b>{state}</b>" in heat["customdata"][layer][head]
    colours = [c for _, c in heat["colorscale"]]
    assert [colours[2 * i] for i in range(4)] == [F.STATE_COLORS[n] for n in STATE_NAMES]
    assert heat["colorbar"]["ticktext"] == ["alive (12)", "blind (1)", "constant (1)",
                                            "dead (2)"]
    assert heat["text"][0][0].endswith("%")  # the kept fraction written in the cell


def test_neurons_per_layer_by_state(structured_report):
    bars = {t["name"]: t["x"] for t in _figures(structured_report[1])["neuron-states-0"]["data"]}
    assert bars == {"alive": [248, 256, 256, 256], "constant": [3, 0, 0, 0],
                    "dead": [5, 0, 0, 0]}


def test_early_bird_step_is_marked(structured_report):
    text = structured_report[1]
    fig = _figures(text)["early-bird-0"]
    stop = [s for s in fig["layout"]["shapes"] if s.get("x0") == 20 and s.get("x1") == 20]
    assert len(stop) == 1  # a vertical line at the early-bird step
    notes = [a["text"] for a in fig["layout"]["annotations"]]
    assert "early-bird: step 20 (44 of 64 dense steps saved)" in notes
    assert fig["data"][0]["x"] == [8, 12, 16, 20]  # the first draw has no distance
    assert ("Early-bird: the mask settled at step 20 of 64 (44 dense steps saved, 69%)"
            in " ".join(_visible_text(text)))


def test_rounds_hover_shows_unit_sparsity_and_exports_their_sizes(structured_report):
    text = structured_report[1]
    ticket = next(t for t in _figures(text)["accuracy"]["data"]
                  if t["legendgroup"] == "rounds")
    from ticketlens.core.run import open_run

    assert ticket["customdata"][-1] == [open_run(structured_report[0] / "unit").ticket.index,
                                        "<br>heads pruned 25.0%, neurons pruned 50.0%"]
    assert "%{customdata[1]}" in ticket["hovertemplate"]
    table = text.split("<table class='exports'>")[1].split("</table>")[0]
    for cell in ("13 / 16", "1,016 / 1,024", "208,298 / 221,762", "0.83 / 0.89",
                 "no (<code>tl.load_pruned</code>)"):
        assert f"<td>{cell}</td>" in table, cell


def test_an_export_of_another_run_is_one_clear_line(structured_report, tmp_path, capsys):
    root, _ = structured_report
    out = tmp_path / "r.html"
    assert main(["report", str(SAMPLE_MASKS / "sentiment-s1"), "--export", str(root / "exp"),
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not among the runs of this report" in err
    assert not out.exists()


def test_weight_runs_have_no_early_bird_or_unit_sparsity(sample_report):
    text = sample_report.read_text()
    figures = _figures(text)
    assert not any(name.startswith("early-bird") for name in figures)
    assert "heads pruned" not in json.dumps(figures["accuracy"])
    from ticketlens.analysis.survival import survival

    lost = F.has_lost_neurons(survival(open_run(sorted(SAMPLE_MASKS.glob("*/manifest.json"))[0]
                                                .parent)))
    assert ("neuron-states-0" in figures) == lost  # drawn only when not all one colour


# ----------------------------------------------------------------------------- read on its own
VISIBLE_KEYS = {"name", "text", "hovertemplate", "customdata", "ticktext", "x", "y"}
CODE_NAME = re.compile(r"\b(?:random_mask|random_reinit|oneshot|method_\w+|[a-z]+_[a-z_]+)\b")


def _shown_strings(x, key: str = "", under_title: bool = False) -> list[str]:
    """The strings of a figure a reader can see (names, hover text, cell text, tick and axis
    titles, annotations), not its keys for plotly (legend groups, symbols, colour scales)."""
    if isinstance(x, str):
        return [x] if (key in VISIBLE_KEYS or under_title) else []
    if isinstance(x, dict):
        return [s for k, v in x.items()
                for s in _shown_strings(v, k, under_title or k in ("title", "annotations"))]
    if isinstance(x, list):
        return [s for v in x for s in _shown_strings(v, key, under_title)]
    return []


def _page_text(text: str, *, settings: bool = True) -> str:
    page = re.sub(r"<(script|style|title)[^>]*>.*?</\1>", " ", text, flags=re.S)
    page = re.sub(r"<code>.*?</code>", " ", page)  # code set as code: its names are meant
    if not settings:  # the collapsed settings tables hold option names and paths as they are
        page = re.sub(r"<details><summary>settings</summary>.*?</details>", " ", page,
                      flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_no_inf_nan_or_code_names_in_what_a_reader_sees(sample_report, structured_report):
    for text in (sample_report.read_text(), structured_report[1]):
        _assert_reads_plainly(text)


def _assert_reads_plainly(text: str) -> None:
    figures = _figures(text)
    shown = [_page_text(text, settings=False)] + [
        html.unescape(s) for f in figures.values() for s in _shown_strings(f)]
    for s in shown:
        s = re.sub(r"%\{[^}]*\}", " ", s)  # plotly's placeholders: %{customdata[0]}
        assert not re.search(r"(?<![\w.])-?inf\b|\bnan\b|\bNone\b", s, re.I), s[:300]
        assert not CODE_NAME.search(s), (CODE_NAME.search(s).group(0), s[:300])


def test_every_figure_has_a_caption_and_named_axes(sample_report):
    """A caption under every figure (what is drawn, how to read it); every figure with points
    or bars names its axes, a log axis says so, and a ± or interval is said in words."""
    text = sample_report.read_text()
    blocks = re.findall(r'<figure><div id="fig-\d\d-([^"]+)".*?<figcaption>(.*?)</figcaption>'
                        r"</figure>", text, re.S)
    assert len(blocks) == len(re.findall(r'id="fig-', text)) == len(_figures(text))
    for name, caption in blocks:
        assert len(re.sub(r"<[^>]+>", "", caption)) > 120, (name, caption)
    for name, fig in _figures(text).items():
        layout = fig["layout"]
        axes = {k: v for k, v in layout.items() if re.fullmatch(r"[xy]axis\d*", k)}
        for k, axis in axes.items():
            if axis.get("type") == "log":
                assert "log" in axis["title"]["text"], (name, k)
        if all(t["type"] == "heatmap" and name.startswith(("overlap", "seeds-overlap"))
               for t in fig["data"]):
            continue  # a matrix of runs: its rows and columns are the runs' names
        for letter in "xy":
            titled = [a for k, a in axes.items() if k[0] == letter and
                      (a.get("title") or {}).get("text")]
            assert titled, (name, letter)
    # intervals are written "low to high", never as an unlabelled "mean ± x"
    assert not re.search(r"\d\s*±\s*\d", _page_text(text))


def test_no_two_legend_entries_look_alike_and_every_series_has_one(sample_report):
    for name, fig in _figures(sample_report.read_text()).items():
        if fig["layout"].get("showlegend") is False:
            continue
        entries = _legend_entries(fig)
        assert len({n for n, _ in entries}) == len(entries), (name, entries)
        assert len({look for _, look in entries}) == len(entries), (name, entries)
        shown = {t.get("legendgroup") for t in fig["data"] if t.get("showlegend") is not False}
        for t in fig["data"]:
            if t["type"] != "heatmap" and t.get("showlegend") is False:
                assert t.get("legendgroup") in shown, (name, t.get("name"))


def test_no_figure_repeats_another(sample_report):
    """The seed x task matrix of the sample runs is the weight overlap matrix: drawn once."""
    seen: dict[str, str] = {}
    for name, fig in _figures(sample_report.read_text()).items():
        key = json.dumps([[t.get(k) for k in ("x", "y", "z", "text")] for t in fig["data"]])
        assert key not in seen, (name, seen.get(key))
        seen[key] = name
    assert not any(n.startswith("seeds-overlap") for n in seen.values())


def test_intervals_of_accuracy_stay_in_zero_one(sample_report):
    """Student's t intervals of 3 seeds reach past 1 (sample_masks: a random-mask control
    from 0.66 to 1.13); drawn and written, they are clipped to [0, 1] and the caption and
    the table note say so."""
    import ticketlens as tl

    text = sample_report.read_text()
    figures = _figures(text)
    for t in figures["seeds"]["data"]:
        err = t["error_y"]
        if err.get("visible"):
            assert t["y"][0] + err["array"][0] <= 1 + 1e-9
            assert t["y"][0] - err["arrayminus"][0] >= -1e-9
    for t in figures["seeds-curves"]["data"]:
        assert all(y is None or -1e-9 <= y <= 1 + 1e-9 for y in t["y"])
    stats = tl.sweep_stats(tl.runs(str(SAMPLE_MASKS)))
    past = any(e.high > 1 for g in stats.groups for e in (g.dense, g.ticket,
                                                          *g.controls.values()))
    captions = " ".join(re.findall(r"<figcaption>(.*?)</figcaption>", text, re.S))
    assert "clipped to the range of accuracy, [0, 1]" in captions
    assert ("†" in _page_text(text)) == past


def test_tl_figure_draws_every_result_type_as_the_report_does(structured_report):
    """``tl.figure`` for each result type the report draws, and the same figure (JSON) as
    the report's; every registered type is covered here."""
    import ticketlens as tl
    from ticketlens.analysis.earlybird import early_bird
    from ticketlens.analysis.results import stored_attribution
    from ticketlens.compress.result import Cell, CompressResult
    from ticketlens.report import gallery
    from ticketlens.report.draw import DRAWERS

    runs = tl.runs(str(SAMPLE_MASKS))
    stats = tl.sweep_stats(runs)
    compress = CompressResult("r", "accuracy", True, "int8", (), (
        Cell("dense", "dense-fp32", 0.99, 4_000_000, 1.0, True),
        Cell("ticket+quantize", "ticket-int8", 0.98, 900_000, 4.4, True),
        Cell("ticket", "ticket-fp32", 0.97, 4_000_000, 1.0, False)))
    bird = early_bird(open_run(structured_report[0] / "unit"))
    curve = tl.StabilityCurve("rewind", 5, (1, 2), (0.0, 0.5, 1.0), (0.9, 0.7, 0.9),
                              (0.3, 0.6, 0.3), (0.1, 0.3, 0.1), 0.2, 0.3, 1.0, 0.1)
    stab = tl.StabilityResult("r", 1, "ticket", 0.5, "accuracy", "1 - accuracy", 3, 0, 40,
                              (curve,))
    results = [runs, runs[0], tl.overlap(runs[:3]), tl.survival(runs[0]),
               tl.sparsity_profile(runs[0]), stored_attribution(runs[0]), stats,
               stats.matrices[0], bird, compress, stab]
    covered = {list if isinstance(r, list | tl.Run) else type(r) for r in results}
    elsewhere = {tl.HeadRolesResult}  # drawn from a run's stored roles: tests/test_roles.py
    assert covered | elsewhere == set(DRAWERS)
    for r in results:
        for kind in gallery.kinds(r):
            fig = tl.figure(r, kind=kind)
            assert fig.data and fig.layout.title.text, (type(r).__name__, kind)
    assert tl.figure(runs[0]).layout.title.text == tl.figure(runs).layout.title.text
    with pytest.raises(TypeError, match="no figure for a int"):
        tl.figure(3)
    with pytest.raises(TypeError, match="no figure for a list"):
        tl.figure([1, 2])
    with pytest.raises(ValueError, match="no 'pie' figure"):
        tl.figure(stats, kind="pie")
    page = _figures(build_report_text(runs))
    same = {"heads-0": tl.figure(tl.survival(runs[0]), kind="heads"),
            "profile-0": tl.figure(tl.sparsity_profile(runs[0])), "seeds": tl.figure(stats)}
    for name, fig in same.items():
        assert page[name] == json.loads(fig.to_json()), name


def build_report_text(runs) -> str:
    from ticketlens.report.html import build_report

    return build_report(runs)


def test_the_analysis_layer_never_imports_plotly():
    code = ("import sys, ticketlens.analysis.overlap, ticketlens.analysis.survival, "
            "ticketlens.analysis.sweep, ticketlens.analysis.results, "
            "ticketlens.analysis.earlybird; assert 'plotly' not in sys.modules, 'plotly'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_pictures_of_the_reading_guide_are_taken(tmp_path):
    """docs/reading.md's two pictures come from tests/screenshots.py: the report in Chromium
    and inspect as Textual draws it (an SVG that names the run and its tabs); the committed
    ones are there and small."""
    import screenshots

    svg = screenshots.inspect_svg(tmp_path / "inspect.svg")
    drawn = svg.read_text(encoding="utf-8")
    assert "Rounds" in drawn and "Attribution" in drawn
    guide = (ROOT / "docs" / "reading.md").read_text(encoding="utf-8")
    for name in ("report.png", "inspect.png"):
        assert f"(img/{name})" in guide
        assert 10_000 < (ROOT / "docs" / "img" / name).stat().st_size < 400_000, name
    if browser_missing():
        pytest.skip("no Chromium: the report's picture is not taken")
    png = screenshots.report_png(tmp_path / "report.png", 800, 600)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def browser_missing() -> bool:
    import browser

    return browser.chromium() is None
