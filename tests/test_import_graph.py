"""biblio's import graph has no cycles, counting imports inside functions too.

The graph is built with ``ast`` from every module of the package: ``import a.b`` and
``from a import b`` each make an edge to the module they name (``a.b`` when ``b`` is a
submodule, else ``a``), wherever the statement sits. Importing a package's children
from its ``__init__`` is how a package re-exports, so the implicit "a submodule needs
its package" link is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import biblio

ROOT = Path(biblio.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module name -> the biblio modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.append(child if child in modules else base)
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_module_and_known_edges():
    graph = import_graph()
    assert "biblio.sync.run" in graph and "biblio.events" in graph["biblio.sync.run"]
    assert "biblio.storage.schema" in graph["biblio.storage"]


def test_a_cycle_is_detected():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_biblio_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_sync_imports_none_of_its_subscribers():
    graph = import_graph()
    sync_modules = [name for name in graph if name.startswith("biblio.sync")]
    subscribers = {
        name
        for name in graph
        if name.split(".")[1:2] in (["prongs"], ["catalog"], ["membership"], ["citations"])
    }
    for name in sync_modules:
        assert not graph[name] & subscribers, name
