"""The layout's rules, checked on the source: layers, import cycles, sessions, private names.

* No import cycle among the core's modules (imports made only for type checking excepted:
  they never run).
* Only ``billbridge.store`` opens database sessions; services reach the database through a
  unit of work.
* No module imports another module's private (underscored) name.
* Lower layers never import higher ones: ``domain`` and ``plugin`` know nothing of ``store``,
  ``services``, the engine or the CLI; ``store`` knows nothing of ``services``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ROOT

PACKAGES = {
    "billbridge": ROOT / "core" / "billbridge",
    "billbridge_quickbooks": ROOT / "plugins" / "quickbooks" / "billbridge_quickbooks",
    "billbridge_xero": ROOT / "plugins" / "xero" / "billbridge_xero",
}


def _module_name(package: str, path: Path) -> str:
    relative = path.relative_to(PACKAGES[package]).with_suffix("")
    parts = [package, *relative.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, directory in PACKAGES.items():
        for path in directory.rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic revision files are loaded by Alembic, not imported
            found[_module_name(package, path)] = path
    return found


MODULES = _modules()


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run: ``if TYPE_CHECKING:`` blocks are left out."""

    def walk(nodes: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse)
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from walk([c for c in children if isinstance(c, ast.stmt)])
                    for handler in children:
                        if isinstance(handler, ast.ExceptHandler):
                            yield from walk(handler.body)

    yield from walk(tree.body)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    keep = len(base) - node.level + (1 if is_package else 0)
    return ".".join(base[:keep] + ([node.module] if node.module else []))


def _edges(*, top_level_only: bool) -> dict[str, set[str]]:
    """module → modules of ours it imports (module-level only when asked)."""
    edges: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = (
            [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
            if top_level_only
            else list(_runtime_imports(tree))
        )
        targets: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = _resolve(module, node)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                if name in MODULES and name != module:
                    targets.add(name)
        edges[module] = targets
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_among_modules() -> None:
    # Module-level imports: a cycle there breaks depending on which module is imported first.
    assert _cycle(_edges(top_level_only=True)) is None


def test_sessions_are_opened_only_by_the_store() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("billbridge.store"):
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("sessionmaker", "Session(", ".new_session(", "from sqlalchemy.orm"):
            if needle in text:
                offenders.append(f"{module}: {needle}")
    assert offenders == []


def test_no_private_name_of_another_module_is_imported() -> None:
    offenders = []
    for module, path in MODULES.items():
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _resolve(module, node)
            if not source.startswith(("billbridge", "billbridge_")):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offenders.append(f"{module} imports {source}.{alias.name}")
    assert offenders == []


LAYERS = {
    # layer → the layers it must not import
    "billbridge.domain": ("billbridge.store", "billbridge.services", "billbridge.engine",
                          "billbridge.cli", "billbridge.api", "billbridge.testing"),
    "billbridge.plugin": ("billbridge.store", "billbridge.services", "billbridge.engine",
                          "billbridge.cli", "billbridge.api", "billbridge.testing"),
    "billbridge.store": ("billbridge.services", "billbridge.engine", "billbridge.cli",
                         "billbridge.api", "billbridge.testing"),
    "billbridge.services": ("billbridge.engine", "billbridge.cli", "billbridge.api",
                            "billbridge.testing"),
}  # fmt: skip


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_lower_layers_do_not_import_higher_ones(layer: str) -> None:
    edges = _edges(top_level_only=False)
    offenders = [
        f"{module} imports {target}"
        for module, targets in edges.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if target.startswith(LAYERS[layer])
    ]
    assert offenders == []


def test_the_checks_see_the_whole_core() -> None:
    # Guard against the walk silently finding nothing (a moved directory).
    assert "billbridge.engine" in MODULES
    assert "billbridge.store.uow" in MODULES
    assert "billbridge_xero.hooks" in MODULES
