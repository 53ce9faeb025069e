"""The package's layout: imports only run downward, no circles, no module over 400 lines.

The folders show who runs the code; the layers, top to bottom:

    __main__ -> entry -> cli -> host | root | user -> client -> config -> stamp | probe | fs -> untrusted -> constants

A module may import its own folder and any layer below its own, never one
above or beside it: so ``root`` and ``user`` never import each other (they
meet only through a process and through files) and ``host`` never imports
``root``. ``constants`` imports nothing at all. Every import counts, also
one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hailo_ollama_service"
NAME = "hailo_ollama_service"
LAYERS: dict[str, int] = {
    "__main__": -1, "entry": 0,
    "cli": 1,
    "host": 2, "root": 2, "user": 2,
    "client": 3,
    "config": 4,
    "stamp": 5, "probe": 5, "fs": 5,
    "untrusted": 6,
    "constants": 7, "": 7,  # "": the package itself (__init__: the version)
}
MOST_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def unit(module: str) -> str:
    """The layer unit of a module: its folder, or its own name at the top ("" for the package)."""
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that the file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == NAME}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == NAME:
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports."""
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import that runs upward or sideways, as "a -> b (why)"."""
    bad = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            here, there = unit(source), unit(target)
            if here == there and here in ("cli", "host", "root", "user", "client", "config", "fs"):
                continue
            if LAYERS[there] <= LAYERS[here]:
                side = "sideways" if LAYERS[there] == LAYERS[here] else "upward"
                bad.append(f"{source} -> {target} ({side}: {here or NAME} may not import {there or NAME})")
    return bad


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle found by a depth-first walk (each as the modules in order)."""
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                found.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_every_module_is_in_a_known_layer():
    assert {unit(name) for name in modules()} <= set(LAYERS), set(map(unit, modules())) - set(LAYERS)


def test_every_import_runs_downward():
    assert violations(graph()) == []


def test_there_is_no_import_circle():
    assert circles(graph()) == []


@pytest.mark.parametrize("source,target,why", [
    (f"{NAME}.config.schema", f"{NAME}.cli.main", "upward"),
    (f"{NAME}.root.render", f"{NAME}.user.models", "sideways"),
    (f"{NAME}.user.serve", f"{NAME}.root.apply", "sideways"),
    (f"{NAME}.host.doctor", f"{NAME}.root.render", "sideways"),
    (f"{NAME}.stamp", f"{NAME}.probe", "sideways"),
    (f"{NAME}.constants", f"{NAME}.untrusted", "upward"),
])
def test_the_check_reports_an_import_added_upward_or_sideways(source, target, why):
    edges = graph()
    edges[source] = edges[source] | {target}
    assert [line for line in violations(edges) if line.startswith(f"{source} -> {target} ({why}")]


def test_the_check_reports_a_circle_inside_a_folder():
    edges = graph()
    edges[f"{NAME}.config.schema"] = edges[f"{NAME}.config.schema"] | {f"{NAME}.config.load"}
    assert any(f"{NAME}.config.schema" in circle and f"{NAME}.config.load" in circle for circle in circles(edges))


def test_constants_and_the_package_itself_import_nothing():
    for name in ("constants.py", "__init__.py"):
        tree = ast.parse((PACKAGE / name).read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))], name


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_400_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MOST_LINES, f"{modules()[name]}: {lines} lines"


def test_every_module_says_what_it_is_for():
    for path in modules().values():
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path}: no module docstring"
