"""No import cycles within the packages whose modules used to import each other (a code review's finding).

Module-level and function-level (lazy) imports both count: a lazy import hides a cycle from Python's
import machinery but not from a reader, who still cannot understand one module without the other.
"""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    """The import graph of radview's two root packages, as import-linter builds it."""
    return grimp.build_graph("viewer", "ai")


def _cycles(graph, modules: set[str]) -> list[list[str]]:
    """Strongly connected groups (of more than one module) among ``modules``' direct imports."""
    edges = {m: [n for n in graph.find_modules_directly_imported_by(m) if n in modules] for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def _within(graph, *prefixes: str) -> set[str]:
    return {m for m in graph.modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_cycle_finder_reports_each_circle_once():
    """The check itself, on a hand-built graph: a two-module and a three-module circle, one tail."""
    g = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.a"), ("p.c", "p.d"), ("p.d", "p.e"), ("p.e", "p.c"),
                               ("p.e", "p.f")]:
        g.add_import(importer=importer, imported=imported)
    assert sorted(_cycles(g, set(g.modules))) == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
    assert _cycles(g, {"p.a", "p.c", "p.d", "p.f"}) == []


@pytest.mark.parametrize("packages", [
    ("viewer.core.io",),
    ("viewer.core",),
    ("viewer.render",),
    ("ai.formats", "ai.normalize"),
])
def test_no_import_cycles(graph, packages):
    """File I/O, the core, rendering and the model loaders form no import cycles."""
    assert _cycles(graph, _within(graph, *packages)) == []
