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


def bayes_threshold() -> float:
    """The cost-minimising cut-off on a calibrated probability of default.

    Flag a loan when p·cost_fn > (1 − p)·cost_fp, i.e. when p > cost_fp / (cost_fp + cost_fn):
    1/6 at the 5:1 costs of DESIGN.md.
    """
    rules = project_vars()
    fn, fp = float(rules["cost_false_negative"]), float(rules["cost_false_positive"])
    return fp / (fp + fn)
