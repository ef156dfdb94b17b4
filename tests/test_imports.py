"""The package's module graph: no import cycles, and no module reaching past its layer.

Read from the source, imports inside functions included (deferring an import into a
function hides a cycle, it does not remove it) and ``if TYPE_CHECKING:`` ones left out, so
that a cycle is caught whether or not some import order happens to work.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "asyncpod"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import of *tree*, those inside functions included (an import deferred into a
    function still closes a cycle), but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from (i for child in node.orelse for i in _imports_of(child))
        else:
            yield from _imports(node)


def _imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                module = node.module or ""
                stem = (f"{base}.{module}" if module else base) if node.level else module
                # "from . import x" names a submodule x where there is one
                targets = [
                    f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem
                    for alias in node.names
                ]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of *graph*, as the list of its modules, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph()
    assert len(graph) > 40  # the whole package was read
    # A package's __init__ imports its submodules, which import their siblings: only
    # edges between modules count, so the facades are left out of the cycle search.
    inner = {
        name: {t for t in targets if not _is_facade(t)}
        for name, targets in graph.items()
        if not _is_facade(name)
    }
    assert _cycle(inner) is None, " -> ".join(_cycle(inner) or [])


def _is_facade(name: str) -> bool:
    return (PACKAGE.parent / Path(*name.split(".")) / "__init__.py").exists()


def test_the_cycle_search_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # models and the manifest reader know nothing of running pods or engines
        ("asyncpod._models", ("asyncpod._supervisor", "asyncpod.backends", "asyncpod._cli")),
        ("asyncpod._serde", ("asyncpod._supervisor", "asyncpod.backends", "asyncpod._cli")),
        ("asyncpod.kube", ("asyncpod._supervisor", "asyncpod.backends", "asyncpod._cli")),
        # backends know nothing of the supervisor or the command line
        ("asyncpod.backends", ("asyncpod._supervisor", "asyncpod._cli", "asyncpod.kube")),
        # the supervisor knows no engine but through the contract
        (
            "asyncpod._supervisor",
            ("asyncpod.backends._podman", "asyncpod.backends._fake", "asyncpod._cli"),
        ),
    ],
)
def test_layers_do_not_reach_past_themselves(layer: str, forbidden: tuple[str, ...]) -> None:
    graph = _graph()
    for name, targets in graph.items():
        if name == layer or name.startswith(layer + "."):
            bad = sorted(t for t in targets if t.startswith(forbidden))
            assert not bad, f"{name} imports {bad}"
