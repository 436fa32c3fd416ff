"""The import contracts in pyproject.toml hold: no upward import between or inside packages, no cycle.

``lint-imports`` reads ``[tool.importlinter]``: ``lendguard`` > ``api`` > ``ml`` > ``warehouse``; inside
``api`` the composition root > plugin > routes > HTTP plumbing > services; no import cycle between
the sibling modules of any package (function-level imports count: they are imports too).
"""

from __future__ import annotations

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
