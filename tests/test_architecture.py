"""The package's layering, read from its source: what may import what.

- The modules of ``metrics/`` import each other without a circle, and the leaf modules
  (stored codes, per-group helpers, statistics) import nothing of the package.
- Only the engine module knows about DuckDB.
- No module reaches into another object's private state (``data._...``) or imports a private
  name of another subpackage.
- Layers import downwards only: data never imports metrics, metrics never imports widgets or apps.
"""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "salesops_widgets"
METRICS = PACKAGE / "metrics"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
# module -> the only modules of the package it may import (leaves: none but the exceptions)
LEAVES = {
    "_codes": set(),
    "_groups": set(),
    "_stats": {".._catalog"},  # the "too few to say" text, from the display catalogue (a leaf)
    "_survival": set(),
    "_significance": {"._stats"},
}
# subpackage -> the subpackages it must never import
LAYERS = {
    "data": {"metrics", "charts", "widgets", "apps", "runs", "serve", "cli"},
    "metrics": {"charts", "widgets", "apps", "runs", "serve", "cli"},
    "charts": {"widgets", "apps", "runs", "serve", "cli"},
    "widgets": {"apps", "runs", "serve", "cli"},
}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(level, module, names) of every ``from ... import`` in a module."""
    tree = ast.parse(path.read_text())
    return [
        (node.level, node.module or "", [a.name for a in node.names])
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    ]


def _metrics_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in METRICS.glob("_*.py"):
        deps = set()
        for level, module, names in _imports(path):
            if level == 1 and module:
                deps.add(module.split(".")[0])
            elif level == 1:  # from . import _x
                deps.update(n for n in names if n.startswith("_"))
        graph[path.stem] = deps
    return graph


def test_metrics_modules_import_without_a_circle():
    graph = _metrics_graph()
    assert {"_codes", "_engine", "_deals", "_measures"} <= set(graph)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import circle in metrics/: {' -> '.join(exc.args[1])}")
    assert order.index("_codes") < order.index("_deals") < order.index("_measures")


def test_leaf_modules_import_nothing_of_the_package():
    for name, allowed in LEAVES.items():
        found = {
            f"{'.' * level}{module}"
            for level, module, _ in _imports(METRICS / f"{name}.py")
            if level and module != "errors"
        }
        assert found <= allowed, f"metrics/{name}.py is a leaf but imports {found - allowed}"


def test_only_the_engine_module_knows_duckdb():
    for path in METRICS.glob("*.py"):
        if path.name == "_engine.py":
            continue
        code = path.read_text()
        for word in ("perfect_ht_threshold", "import duckdb", "con.con.", "create_table("):
            assert word not in code, f"metrics/{path.name} uses {word!r}: move it to _engine.py"


def _private_reads(path: Path) -> list[str]:
    """``data._x`` / ``self.data._x``: a private attribute of a SalesData, read from outside."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        owner = node.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
        if name == "data" and not node.attr.startswith("__"):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_private_state_of_the_data():
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "data":
            continue  # the data layer owns SalesData
        assert not _private_reads(path), (path.relative_to(PACKAGE), _private_reads(path))


def test_no_private_name_of_another_subpackage_is_imported():
    for path in PACKAGE.rglob("*.py"):
        for level, module, names in _imports(path):
            if level < 2 and not (level == 1 and path.parent == PACKAGE):
                continue  # same subpackage (or absolute imports of other projects)
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, f"{path.relative_to(PACKAGE)} imports {private} from {module}"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_downwards_only(layer):
    for path in (PACKAGE / layer).glob("*.py"):
        for level, module, _ in _imports(path):
            top = module.split(".")[0] if level == 2 else None
            assert top not in LAYERS[layer], f"{layer}/{path.name} imports ..{module}"


def test_every_module_is_listed_in_docs_architecture():
    listed = set(re.findall(r"`(salesops_widgets/[\w/]+\.py)`", ARCHITECTURE.read_text()))
    modules = {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py")}
    assert not modules - listed, f"docs/architecture.md does not list {sorted(modules - listed)}"
    assert not listed - modules, f"docs/architecture.md lists {sorted(listed - modules)}"
