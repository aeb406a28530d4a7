"""The layers hold: data flows one way (generators ← flows ← cli / deployments), no cycles, no private reach-ins."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("generators", "flows", "cli", "blocks", "deployments")
# What each layer may not import, at module level or inside a function.
FORBIDDEN = {
    "generators": {"flows", "blocks", "cli", "deployments"},
    "blocks": {"flows", "cli", "deployments"},
    "flows": {"cli", "deployments"},
    "deployments": {"cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file, relative ones made absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body} | {
        id(n)
        for node in tree.body
        if isinstance(node, ast.If)
        for n in node.body  # `if TYPE_CHECKING:` blocks
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, id(node) in top))
            found += [(f"{target}.{alias.name}", id(node) in top) for alias in node.names]
    return found


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def project_imports(path: Path, module_level_only: bool = False) -> set[str]:
    return {t for t, top in imports_of(path) if t in MODULES and (top or not module_level_only)}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer):
    wrong = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name.split(".")[0] == layer
        for target, _ in imports_of(path)
        if target.split(".")[0] in FORBIDDEN[layer]
    ]
    assert wrong == []


def test_no_module_imports_a_private_module_of_another_package():
    wrong = []
    for name, path in MODULES.items():
        for target, _ in imports_of(path):
            parts = target.split(".")
            for i, part in enumerate(parts[1:], start=1):
                owner = ".".join(parts[:i])
                if (
                    part.startswith("_")
                    and not part.startswith("__")
                    and not (name == owner or name.startswith(owner + "."))
                ):
                    wrong.append(f"{name} imports {target}")
                    break
    assert wrong == []


def test_no_import_cycles():
    """Module-level imports between project modules form no cycle (a package and its own submodules aside)."""
    graph = {
        name: {
            t
            for t in project_imports(path, module_level_only=True)
            if t != name and not name.startswith(t + ".") and not t.startswith(name + ".")
        }
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt) :] + [node, nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_the_checker_sees_imports_it_must_refuse(tmp_path):
    """The rules above would catch a violation: a private reach-in and an upward import are both found."""
    probe = ROOT / "generators" / "local" / "ken_burns.py"
    assert ("generators.local._video", True) in imports_of(probe)
    assert any(t.startswith("generators.") for t, _ in imports_of(ROOT / "flows" / "pipeline" / "runner.py"))
