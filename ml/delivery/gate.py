"""Stage ``gate``: ``dbt build`` with the gate tests for one version; the verdict on the version.

Consumes the version's landed evaluation (``eval_gate_checks`` is built from it) and the limits in
``dbt_project.yml``. Produces the checks (measured value, limit, passed), landed as
``gate_results``, and the version's ``gate_result`` tag (``passed`` or ``failed``), which approval
requires.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml import registry
from ml.delivery import GATE_FAILED, GATE_PASSED, utc_now
from warehouse import datasets
from warehouse.build import build
from warehouse.marts import open_marts
from warehouse.paths import Paths

GATE_TEST_MARKER = ".gate_check_passes_"
"""In the unique id of every dbt test tagged ``gate``."""


@dataclass(frozen=True)
class GateResult:
    version: str
    passed: bool
    checks: pd.DataFrame
    other_failures: tuple[str, ...]

    def failures(self) -> pd.DataFrame:
        return self.checks[~self.checks["passed"]]

    def describe_failures(self) -> list[str]:
        return [
            f"{row.check_name} ({row.subject}): measured {row.measured_value:.4g}, "
            f"limit {row.comparison} {row.limit_value:.4g}"
            if pd.notna(row.measured_value) else f"{row.check_name} ({row.subject}): not measurable"
            for row in self.failures().itertuples()
        ]


def verdict(checks: pd.DataFrame, failures: Sequence[dict[str, Any]]) -> tuple[bool, tuple[str, ...]]:
    """Passed when there are checks, every one passed and no gate test failed; and the failures of
    other dbt nodes (reported, not part of the verdict)."""
    gate_failures = [r for r in failures if GATE_TEST_MARKER in str(r["unique_id"])]
    other = tuple(f"{r['unique_id']}: {r['message']}" for r in failures if r not in gate_failures)
    return bool(checks["passed"].all()) and not gate_failures and not checks.empty, other


def run_gate(paths: Paths, version: str, pipeline_run_id: str | None = None) -> GateResult:
    """Run ``dbt build`` with the gate tests for ``version``; land the checks, tag the version."""
    from mlflow import MlflowClient  # noqa: PLC0415 - about a second to import

    result = build(paths, gate_version=version)
    with open_marts(paths) as marts:
        checks = marts.frame("select * from eval_gate_checks order by check_name, subject")
    passed, other = verdict(checks, result.run.failures)
    datasets.land_rows(paths, datasets.GATE_RESULTS, checks.assign(pipeline_run_id=pipeline_run_id, gated_at=utc_now()))
    registry.configure(paths)
    client = MlflowClient()
    client.set_model_version_tag(registry.MODEL_NAME, version, "gate_result", GATE_PASSED if passed else GATE_FAILED)
    client.set_model_version_tag(registry.MODEL_NAME, version, "gate_checks", json.dumps(
        [{k: (None if pd.isna(v) else v) for k, v in row.items()}
         for row in checks[["check_name", "subject", "measured_value", "limit_value", "passed"]].to_dict("records")]
    )[:5000])
    return GateResult(version, passed, checks, other)


def plain(value: Any) -> Any:
    """numpy scalars and NaN to JSON-friendly Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def details(result: GateResult) -> dict[str, Any]:
    """What the pipeline records: the verdict, every check, other dbt failures."""
    checks = [{k: plain(v) for k, v in row.items()} for row in result.checks.to_dict("records")]
    return {"passed": result.passed, "checks": checks, "other_failures": result.other_failures}
