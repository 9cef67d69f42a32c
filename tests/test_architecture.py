"""The layers hold: no import cycle among the project's modules.

Every ``import`` and ``from … import`` in ``preference_center``, at module level
and inside functions, is an edge. The one upward reference allowed is a
package's ``__init__`` importing its own modules inside a function (the
``register_blueprints`` that registers them), so those edges are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import preference_center

PACKAGE = Path(preference_center.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def registrations(tree: ast.Module) -> set[int]:
    """Relative imports of a package's own modules made inside its functions."""
    return {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom) and node.level == 1
    }


def imported(name: str, is_package: bool, node: ast.AST, known: set[str]) -> set[str]:
    """The project modules one import statement loads."""

    def known_prefix(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    if isinstance(node, ast.Import):
        return {m for alias in node.names if (m := known_prefix(alias.name))}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    found = set()
    for alias in node.names:
        # "from . import tokens" loads the module tokens; "from .models import X" loads models.
        found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for dotted in found if (m := known_prefix(dotted))}


def import_graph() -> dict[str, set[str]]:
    """Each project module and the project modules it imports."""
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        allowed = registrations(tree) if is_package else set()
        graph[name] = {
            target
            for node in ast.walk(tree)
            if id(node) not in allowed
            for target in imported(name, is_package, node, known)
            if target != name
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        on_path = [start]
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                on_path.pop()
                done.add(node)
                continue
            nxt = todo.pop(0)
            if nxt in on_path:
                return on_path[on_path.index(nxt) :] + [nxt]
            if nxt not in done:
                stack.append((nxt, sorted(graph[nxt])))
                on_path.append(nxt)
        done.add(start)
    return None


def test_the_walk_sees_imports_at_every_level():
    graph = import_graph()
    # Module level, inside a function, and through "from . import name".
    assert "preference_center.models" in graph["preference_center.consent"]
    assert "preference_center.tokens" in graph["preference_center.mailer"]
    assert "preference_center.public.preferences" not in graph["preference_center.public"]
    cycle = find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


def test_no_import_cycle_among_the_projects_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
