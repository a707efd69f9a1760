"""The shape of the house, read from the source: which part of memlayer may import which.

A room is a top-level module or package of ``memlayer`` (``llm/``, ``memory/``, ``db/``, ...). Every
import counts, including those inside functions and under ``TYPE_CHECKING``: a circle hidden in a
function-level import is still a circle. The floors of a room are the longest chain of rooms below it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "memlayer"
MAX_FLOORS = 6
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50  # of the body's code: not the signature, the docstring, or a migration's DDL text


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    """``memlayer._internal.db.x`` is in the room ``db``; a public facade (``memlayer.agent``) in its namesake's."""
    parts = module.split(".")
    return parts[2] if parts[1] == "_internal" and len(parts) > 2 else parts[1]


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Room to room, read off the module graph (the package's own lazy re-exports are not a room)."""
    rooms: dict[str, set[str]] = {}
    for module, targets in _module_graph().items():
        if module != "memlayer":
            rooms.setdefault(_room(module), set()).update(_room(t) for t in targets)
    for room, targets in rooms.items():
        targets.discard(room)
    return rooms


def _floors(graph: dict[str, set[str]]) -> dict[str, int]:
    @functools.cache
    def floor(room: str) -> int:
        return 1 + max((floor(below) for below in graph[room]), default=0)

    return {room: floor(room) for room in graph}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each set of rooms that reach one another, by depth-first search."""
    circles, state = [], dict.fromkeys(graph, "new")

    def visit(room: str, path: list[str]) -> None:
        state[room] = "open"
        for below in sorted(graph[room]):
            if state[below] == "open":
                circles.append([*path[path.index(below) :], below])
            elif state[below] == "new":
                visit(below, [*path, below])
        state[room] = "done"

    for room in sorted(graph):
        if state[room] == "new":
            visit(room, [room])
    return circles


def test_no_circles_between_rooms() -> None:
    assert _circles(_graph()) == []


@functools.cache
def _module_graph() -> dict[str, set[str]]:
    """Module to module: ``from . import x`` names the module ``x`` (not its package), as Python binds it."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                named = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
                targets.update(named or {base})
        graph[module] = {t for t in targets if t in modules and t not in (module, "memlayer")}
    return graph


def test_no_circles_between_modules() -> None:
    assert _circles(_module_graph()) == []


def test_at_most_six_floors() -> None:
    graph = _graph()
    assert not _circles(graph)
    floors = _floors(graph)
    assert max(floors.values()) <= MAX_FLOORS, sorted(floors.items(), key=lambda item: -item[1])
    # The layering the README describes, checked: each of these stands on the ones after it.
    assert floors["agent"] > floors["memory"] > floors["search"] > floors["db"] > floors["records"]
    assert floors["memory"] > floors["llm"] > floors["records"]


def test_production_code_never_imports_the_test_machinery() -> None:
    users = sorted(room for room, targets in _graph().items() if "testing" in targets and room != "testing")
    assert users == []


def test_only_the_litellm_module_imports_litellm() -> None:
    importers = sorted(
        _module_name(path)
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "litellm" for a in node.names)
    )
    assert importers == ["memlayer._internal.llm.litellm"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name}: {size} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (size := _code_lines(node)) > MAX_FUNCTION_LINES
    ]
    assert long == []


def _code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body that are code: not its signature or docstring, nor the text of SQL strings."""
    body = function.body[1:] if ast.get_docstring(function) is not None and len(function.body) > 1 else function.body
    text_lines = 0
    for node in ast.walk(function):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.end_lineno is not None:
            text_lines += node.end_lineno - node.lineno  # a multi-line string counts as one line
    assert function.end_lineno is not None
    return function.end_lineno - body[0].lineno + 1 - text_lines
