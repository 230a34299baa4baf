"""docs/api.md runs: its code blocks, in order, in one namespace, in a fresh folder; and the
public names are all there, lazily (``import ticketlens`` imports neither torch nor scipy)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

import ticketlens


def test_api_walkthrough_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Run('runs/api-s0', rounds=3)" in out
    assert "Jaccard" in out and "Fleiss' kappa" in out and "dead heads" in out
    assert namespace["grid"].shape == (4, 4)
    assert (tmp_path / "runs" / "api-heads.html").stat().st_size > 1_000_000  # plotly.js in


def test_public_names_are_lazy_and_complete():
    for name in ("FindConfig", "find", "open_run", "overlap", "survival", "graph",
                 "attribute", "transfer", "import_masks", "sparsity_profile", "Manifest",
                 "Verdict", "Run"):
        assert name in ticketlens.__all__ and getattr(ticketlens, name) is not None
    code = ("import sys, ticketlens as tl; tl.open_run; tl.overlap; tl.survival; tl.graph; "
            "print(sorted(m for m in ('torch', 'scipy', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert (ROOT / "ticketlens" / "py.typed").is_file()
