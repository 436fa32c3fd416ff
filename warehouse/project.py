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

