"""docs/api.md runs: its code blocks, in order, in one namespace, in a fresh folder; and the
public names are all there, lazily (``import ticketlens`` imports neither torch nor scipy)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import subprocess
import sys
import typing

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
    assert "AnalysisError: overlap needs at least two tickets" in out
    assert "sentiment/s0 magnitude" in out and "random mask" in out
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


def _result_types() -> dict[str, type]:
    return {n: getattr(ticketlens, n) for n in ticketlens.__all__ if n != "__version__"
            and inspect.isclass(getattr(ticketlens, n))
            and issubclass(getattr(ticketlens, n), ticketlens.Result)
            and getattr(ticketlens, n) is not ticketlens.Result}


def test_every_result_type_is_listed_frozen_and_exported():
    """docs/api.md names every exported result type; each is a frozen dataclass with a
    JSON-safe to_dict(), and the result types the analyses' signatures return are all
    exported (no Any return in tl)."""
    doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    types = _result_types()
    assert len(types) >= 25
    for name, cls in types.items():
        assert f"`{name}`" in doc, f"docs/api.md does not list {name}"
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, name
    public = {n: getattr(ticketlens, n) for n in ticketlens.__all__}
    # names imported for type checkers only: the exported ones, and the classes of
    # transformers (a model) and plotly (a figure), stood in for so neither is imported
    known = {**public, **{n: type(n, (), {}) for n in ("PreTrainedModel", "Figure")}}
    for name, obj in public.items():
        if inspect.isfunction(obj):
            hints = typing.get_type_hints(obj, localns=known)
            assert "return" in hints and hints["return"] is not typing.Any, name
            for r in typing.get_args(hints["return"]) or (hints["return"],):
                if inspect.isclass(r) and dataclasses.is_dataclass(r):  # a result type
                    assert issubclass(r, ticketlens.Result), f"{name} returns {r.__name__}"
                    assert r.__name__ in types, f"{name} returns unexported {r.__name__}"


def test_the_three_lists_of_public_names_agree():
    """ticketlens/__init__.py re-exports only, and its __all__, its TYPE_CHECKING imports and
    ticketlens.exports name the same things."""
    from ticketlens.exports import EXPORTS

    assert set(ticketlens.__all__) == {"__version__", *EXPORTS}
    tree = ast.parse((ROOT / "ticketlens" / "__init__.py").read_text(encoding="utf-8"))
    (block,) = [n for n in tree.body if isinstance(n, ast.If)]  # if TYPE_CHECKING:
    typed = {a.asname or a.name: node.module for node in block.body
             if isinstance(node, ast.ImportFrom) for a in node.names}
    assert typed == EXPORTS
    # no logic: only imports, constants, the docstring and the TYPE_CHECKING block
    for node in tree.body:
        assert isinstance(node, (ast.Expr, ast.ImportFrom, ast.Import, ast.Assign, ast.If)), \
            ast.dump(node)[:80]
        assert not isinstance(node, ast.If) or all(
            isinstance(x, ast.ImportFrom) for x in node.body)
