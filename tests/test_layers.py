"""The HTTP layer stays thin: handlers never reach the store, the scheduler or the clock.

Every module that serves HTTP (imports ``aiohttp.web``), apart from the composition roots
and the test tools, talks to the domain through the service's own methods and
:mod:`emulator.queries` only. This test reads their source, so a new handler module is
covered as soon as it exists.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emulator"

# Where the parts are wired together, and the tools for tests that run servers of their own.
COMPOSITION = {"app.py", "cli.py", "keys.py"}
TOOLS = ("testing",)

# Modules only the domain side may import.
FORBIDDEN_MODULES = (
    "emulator.state.store",
    "emulator.state.persistence",
    "emulator.state.changes",
    "emulator.delivery",
)
# The service's parts that hold state or time; a handler asks the service instead.
FORBIDDEN_ATTRIBUTES = {"store", "scheduler", "clock", "callbacks", "dispatcher", "changes", "traffic", "faults", "ids"}


def http_modules(root: Path = PACKAGE) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if str(relative) in COMPOSITION or relative.parts[0] in TOOLS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "aiohttp" and any(a.name == "web" for a in node.names):
                found.append(path)
                break
    return found


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module + "." + a.name for a in node.names] if node.module == "emulator.delivery" else [node.module]
            for name in names:
                if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                    problems.append(f"line {node.lineno}: imports {name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(alias.name == m or alias.name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                    problems.append(f"line {node.lineno}: imports {alias.name}")
    # The service: request.app[SERVICE], and every name bound to it.
    services = {"service"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_service(node.value, services):
            services.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES and _is_service(node.value, services):
            problems.append(f"line {node.lineno}: reaches .{node.attr}")
    return problems


def _is_service(node: ast.expr, names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name) and node.slice.id == "SERVICE"


def test_the_http_layer_is_found() -> None:
    names = {str(p.relative_to(PACKAGE)) for p in http_modules()}
    assert {
        "messaging/messages.py",
        "messaging/media.py",
        "control/api.py",
        "control/ui.py",
        "web/auth.py",
        "web/errors.py",
        "web/routes.py",
    } <= names


@pytest.mark.parametrize("path", http_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_handlers_do_not_reach_into_the_domain(path: Path) -> None:
    assert violations(path) == [], f"{path.relative_to(PACKAGE)} goes past the service: use emulator.queries"


def test_the_check_catches_a_handler_that_reaches_in(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text(
        "from aiohttp import web\n"
        "from emulator.delivery.clock import isoformat\n"
        "from emulator.keys import SERVICE\n"
        "from emulator.control import ui\n"
        "async def h(request):\n"
        "    service = request.app[SERVICE]\n"
        "    ui.changes, request.app[SERVICE].clock.now()\n"
        "    token.clock\n"  # another object's attribute of the same name is no business of this test
        "    return [m for m in service.store.messages()], service.scheduler.pending()\n"
    )
    assert sorted(violations(handler)) == [
        "line 2: imports emulator.delivery.clock",
        "line 7: reaches .clock",
        "line 9: reaches .scheduler",
        "line 9: reaches .store",
    ]


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``: an import for annotations only
    is no dependency at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Which emulator modules each one imports at run time, anywhere in it (an import inside
    a function only hides a cycle)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "emulator":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "emulator")
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
