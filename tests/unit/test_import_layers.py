"""The import contracts in pyproject.toml hold: no upward import between or inside packages, no cycle.

``lint-imports`` reads ``[tool.importlinter]``: ``lendguard`` > ``api`` > ``ml`` > ``warehouse``; inside
``api`` the composition root > plugin > routes > HTTP plumbing > services; no import cycle between
the sibling modules of any package (function-level imports count: they are imports too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_contracts_are_kept() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["type"] for c in contracts} >= {"layers", "acyclic_siblings"}
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in contracts:
        assert f"{contract['name']} KEPT" in result.stdout, contract["name"]



def _imports(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth of the file. ``from a.b import c`` imports
    ``a.b`` itself (its ``__init__`` runs first) and ``a.b.c`` when that is a module too."""
    modules = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        graph[module] = (targets & modules.keys()) - {module}
    return graph


def test_no_module_imports_itself_round_a_cycle() -> None:
    """The sibling contract cannot see a package and its own modules importing one another (``ml.report``'s
    ``__init__`` imported ``content``, which imported ``from ml.report import compute``): any cycle fails."""
    graph = _imports(("warehouse", "ml", "api", "lendguard"))

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return False

    cycles = [(module, other) for module in sorted(graph) for other in sorted(graph[module]) if reaches(other, module)]
    assert not cycles, cycles
