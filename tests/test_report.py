"""`ticketlens report`: structure, escaping, determinism, offline, size; and in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_MASKS

from ticketlens.cli.main import main

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
    assert len(re.findall(r"plotly\.js v\d", text)) == 1
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


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_report_renders_in_headless_chromium(sample_report):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium: install the Debian package `chromium` (make browser)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000"]
    url = sample_report.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([browser, *flags, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=180)
    errors = [ln for ln in dom.stderr.splitlines()
              if "CONSOLE" in ln and ("Error" in ln or "Uncaught" in ln)]
    assert not errors, errors
    chunks = re.split(r'(?=<div id="fig-)', dom.stdout)[1:]  # one chunk per figure
    drawn = {re.match(r'<div id="fig-\d\d-([^"]+)"', c).group(1): "main-svg" in c
             for c in chunks}
    assert len(drawn) == len(re.findall(r'id="fig-', sample_report.read_text()))
    for name in FIGURES:
        assert drawn.get(name), f"figure {name} missing or drew no SVG"
    assert all(drawn.values()), [k for k, v in drawn.items() if not v]
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *flags, f"--user-data-dir={profile}",
                        f"--screenshot={artifacts / 'report.png'}", "--window-size=1400,2400",
                        url], capture_output=True, timeout=180)
    assert (artifacts / "report.png").stat().st_size > 10_000
