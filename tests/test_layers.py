"""The package's imports run one way (../shared/STYLE.md, "The layers"), with no circle.

Every module of ``ticketlens`` is read with ``ast`` (nothing is imported) and each import in
it, wherever it stands (module level, inside a function, under ``TYPE_CHECKING``), is
resolved to the module it names. A module may import its own layer and the layers below it,
never one above; and the modules, as a graph of those imports, have no cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ticketlens"

# Lowest first. A name is the first part after ``ticketlens.``: a sub-package or a top-level
# module ("__init__" is the package root, ``import ticketlens as tl``). STYLE.md gives
# core < models, data < pruning < analysis < report, tui < cli; the rest is placed here:
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),                      # masks, unit names, run files, configs (torch + stdlib)
    ("models", "data", "testing"),  # adapters, tasks; `testing`: toy models for tests
    ("pruning",),                   # the engine: training, IMP, controls, one-shot methods
    # what is done with runs: read-only analyses, and the engines that write new artefacts
    # from a run or into one (compressed copy, pruned model, imported masks)
    ("analysis", "compress", "importers"),
    ("exporter",),                  # writes other formats with compress's quantization
    ("checks",),                    # verify's checks of every kind of run file
    ("cell",),                      # one sweep cell: a `find` in its own process
    ("executors",),                 # where cells run: local workers, Ray, SLURM
    ("sweep",),                     # the grid and the run loop over cells
    ("report", "tui"),              # views: figures and screens from result types
    ("api",),                       # the public call shapes behind `tl.*`
    ("cli",),                       # thin commands
    ("__init__", "__main__", "exports"),  # the public namespace (`exports`: its lazy table,
                                          # stdlib only); `python -m ticketlens`
)
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    """``ticketlens.pruning.imp`` -> ``pruning``; the root -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module: str) -> list[tuple[int, str]]:
    """(line, imported ticketlens module) for every import anywhere in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . / .. import x
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for a in node.names:  # `from ticketlens.report import fmt` names a module
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if sub in MODULES else target))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value,
                                                                        str)):
            found.append((node.lineno, node.args[0].value))
    return [(line, t) for line, t in found if t == "ticketlens" or t.startswith("ticketlens.")]


def test_every_module_has_a_layer():
    missing = sorted({layer(m) for m in MODULES} - set(RANK))
    assert not missing, f"place these in LAYERS (tests/test_layers.py): {missing}"


def test_no_import_from_a_higher_layer():
    upward: list[str] = []
    for module in MODULES:
        for line, target in imports(module):
            if RANK[layer(target)] > RANK[layer(module)]:
                upward.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} "
                              f"({layer(module)}) imports {target} ({layer(target)})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(dict.fromkeys(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    graph = {m: {t for _, t in imports(m) if t in MODULES and t != m} for m in MODULES}
    assert not _cycles(graph)


def test_no_cycle_between_packages():
    """Two packages of one layer may not use each other (compress and exporter once did:
    the slicing engine now sits in models, below both)."""
    graph: dict[str, set[str]] = {}
    for m in MODULES:
        graph.setdefault(layer(m), set()).update(
            layer(t) for _, t in imports(m) if layer(t) != layer(m))
    assert not _cycles(graph)


def test_cycle_finder_finds_a_cycle():
    """The check above would see the circle that sweep and executors once made."""
    graph = {"sweep": {"executors", "core"}, "executors": {"sweep"}, "core": set()}
    assert _cycles(graph) == [["executors", "sweep"]]


@pytest.mark.parametrize("source, target", [
    ("from ticketlens import __version__", "ticketlens"),
    ("def f():\n    from ticketlens.cli.args import x", "ticketlens.cli.args"),
    ("if TYPE_CHECKING:\n    from ticketlens.executors import Executor",
     "ticketlens.executors"),
    ("from ticketlens.report import fmt", "ticketlens.report.fmt"),
    ("from . import masks", "ticketlens.core.masks"),
])
def test_imports_are_all_seen(tmp_path, monkeypatch, source, target):
    """Lazy, TYPE_CHECKING, relative and `from package import module` imports count."""
    path = tmp_path / "probe.py"
    path.write_text(source + "\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "ticketlens.core.probe", path)
    assert [t for _, t in imports("ticketlens.core.probe")] == [target]


def test_version_is_the_packages():
    """``ticketlens.core.version`` is what pyproject.toml says (the root re-exports it)."""
    import ticketlens
    from ticketlens.core.version import __version__

    text = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    declared = re.search(r'(?m)^version\s*=\s*"([^"]+)"', text).group(1)
    assert __version__ == declared == ticketlens.__version__


def _is_reexport(node: ast.stmt) -> bool:
    """An import, ``__all__ = [...]``, or an ``if TYPE_CHECKING:`` block of imports."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
    if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and \
            node.test.id == "TYPE_CHECKING":
        return all(_is_reexport(n) for n in node.body) and not node.orelse
    return False


def test_package_inits_hold_no_logic():
    """A package's ``__init__.py`` names what it offers; the code lives in its modules."""
    logic = []
    for path in sorted(PACKAGE.rglob("__init__.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        logic += [f"{path.relative_to(PACKAGE.parent)}:{n.lineno}" for n in body
                  if not _is_reexport(n)]
    assert not logic, "logic in a package __init__.py (move it to a module):\n" + \
        "\n".join(logic)
