"""Policy values, read from the one place they live: ``dbt_project.yml`` vars."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from warehouse.paths import PROJECT_DIR


@cache
def project_vars() -> dict[str, Any]:
    """The ``vars`` block of ``dbt_project.yml`` (business rules and monitoring thresholds)."""
    raw = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    return dict(raw.get("vars", {}))



@cache
def private_models() -> frozenset[str]:
    """The models the dbt project declares ``access: private`` in their properties (``models/**/*.yml``):
    plumbing of a group, never a mart (``lendguard export-marts`` leaves them out). A test holds this
    to dbt's own manifest."""
    names: set[str] = set()
    for path in sorted((PROJECT_DIR / "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            if (model.get("config") or {}).get("access", model.get("access")) == "private":
                names.add(model["name"])
    return frozenset(names)
