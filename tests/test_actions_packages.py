"""The apps whose actions are a package (``tracking``, ``handoff``) keep one import for callers:
the package re-exports every public name its modules define, and its modules import each other
in one direction only."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = ("embudo.tracking.actions", "embudo.handoff.actions")


def modules_of(package: ModuleType) -> dict[str, Path]:
    return {
        f"{package.__name__}.{info.name}": Path(package.__path__[0]) / f"{info.name}.py"
        for info in pkgutil.iter_modules(package.__path__)
    }


def public_names(path: Path) -> set[str]:
    """The public names a module's own top-level statements define (not those it imports)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    # A type variable is a typing device, not something callers use.
    return {name for name in names if not name.startswith("_") and name != "T"}


@pytest.mark.parametrize("name", PACKAGES)
def test_the_package_re_exports_every_public_name_of_its_modules(name: str) -> None:
    package = importlib.import_module(name)
    for module_name, path in modules_of(package).items():
        module = importlib.import_module(module_name)
        for public in public_names(path):
            assert public in package.__all__, f"{module_name}.{public} is not in {name}.__all__"
            assert getattr(package, public) is getattr(module, public)


@pytest.mark.parametrize("name", PACKAGES)
def test_the_modules_of_a_package_import_each_other_without_a_cycle(name: str) -> None:
    package = importlib.import_module(name)
    modules = modules_of(package)
    imports: dict[str, set[str]] = {}
    for module_name, path in modules.items():
        imports[module_name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            # A relative import (``from .clocks import …``) names its module from the package.
            target = f"{name}.{node.module}" if node.level == 1 else node.module
            if target in modules:
                imports[module_name].add(target)
    assert modules, f"{name} has no modules"

    done: set[str] = set()

    def visit(module_name: str, path: tuple[str, ...]) -> None:
        assert module_name not in path, f"import cycle: {' -> '.join((*path, module_name))}"
        if module_name in done:
            return
        for imported in imports[module_name]:
            visit(imported, (*path, module_name))
        done.add(module_name)

    for module_name in modules:
        visit(module_name, ())
