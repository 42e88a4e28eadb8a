"""The package's shape: no import cycles, small modules, a stdlib-only contract module."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_hetero"
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import, lazy ones in functions included; those only for the type checker left out."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.module is None:
        return
    yield node.module
    for alias in node.names:  # ``from package import submodule``
        yield f"{node.module}.{alias.name}"


def _dependencies(module: str) -> set[str]:
    """The package's modules that importing ``module`` runs, parents' ``__init__`` included.

    A module's own parent packages are left out: they are always initialised before it.
    """
    own_parents = {module.rsplit(".", n)[0] for n in range(1, module.count(".") + 1)}
    found = set()
    for node in _imports(ast.parse(MODULES[module].read_text())):
        for target in _targets(node):
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                name = ".".join(parts[:end])
                if name in MODULES and name != module and name not in own_parents:
                    found.add(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles() -> None:
    graph = {module: _dependencies(module) for module in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {module: MODULES[module].read_text().count("\n") for module in MODULES}
    assert {module: n for module, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_workload_protocol_is_stdlib_only() -> None:
    """It runs inside the job, where only Python (and torch) can be assumed."""
    tree = ast.parse(MODULES["pytest_hetero.workloads.protocol"].read_text())
    roots = {target.split(".")[0] for node in _imports(tree) for target in _targets(node)}
    assert roots - set(sys.stdlib_module_names) - {"__future__"} == set()
