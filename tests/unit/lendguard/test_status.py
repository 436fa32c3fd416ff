from __future__ import annotations

import json

import pytest

from lendguard.status import STATUS_SCHEMA_VERSION, collect_status
from warehouse.paths import Paths
from warehouse.settings import REGISTRY_FAIL_FAST

STABLE_KEYS = {
    "status_schema_version", "generated_at", "data_dir", "warehouse", "snapshot", "loan_book", "landing",
    "mlflow", "pipeline", "failover", "alerts",
}


def test_an_empty_deployment_reports_what_is_missing(paths: Paths) -> None:
    state = collect_status(paths)
    assert set(state) == STABLE_KEYS
    assert state["status_schema_version"] == STATUS_SCHEMA_VERSION
    assert state["warehouse"]["exists"] is False
    assert state["snapshot"]["age_seconds"] is None
    assert state["loan_book"] is None
    assert state["landing"]["datasets"] == {}
    assert state["mlflow"]["aliases"] == {"champion": None, "candidate": None}
    assert state["pipeline"] is None
    json.dumps(state)  # the --json form must serialise


def test_an_unreachable_registry_is_reported_not_raised(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `lendguard status` applies at its edge; without it MLflow retries for minutes (the test
    # passed quickly only when an earlier CLI test in the same worker had applied it).
    for name, value in REGISTRY_FAIL_FAST.items():
        monkeypatch.setenv(name, value)
    broken = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    state = collect_status(broken)
    assert state["mlflow"]["reachable"] is False
    assert state["mlflow"]["error"]
