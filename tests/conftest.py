"""Shared fixtures: isolated deployments (own data dir, warehouse, landing zone, MLflow store)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warehouse.paths import Paths

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

SMALL_BOOK = 30_000
"""Loans in the test deployments: enough for every group to appear in both splits, quick to build."""


def deployment_env(data_dir: Path) -> dict[str, str]:
    """Environment variables that point every lendguard path into ``data_dir``."""
    tracking = f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    return {"LENDGUARD_DATA_DIR": str(data_dir), "MLFLOW_TRACKING_URI": tracking}


def paths_for(data_dir: Path) -> Paths:
    return Paths.from_env({**os.environ, **deployment_env(data_dir)})


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """An empty deployment of its own."""
    return paths_for(tmp_path / "data")


@pytest.fixture(scope="session")
def built_deployment(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """A simulated loan book, landed and built (shared, read-only for tests)."""
    from warehouse.build import build
    from warehouse.importer import land_simulated

    deployment = paths_for(tmp_path_factory.mktemp("built") / "data")
    land_simulated(deployment, SMALL_BOOK, seed=11)
    result = build(deployment)
    assert result.ok, result.run.output
    return deployment


def deliver(paths: Paths, *, approver: str = "pytest") -> str:
    """Train, choose thresholds, evaluate, gate and approve a version; return it (no dev API)."""
    from lendguard import pipeline

    run = pipeline.start_run(paths, supersede=True)
    for stage in ("train", "thresholds", "evaluate", "gate"):
        pipeline.run_stage(paths, run, stage)
    assert run.version is not None
    pipeline.decide(paths, run.version, approve=True, by=approver, note="test fixture")
    return run.version


@pytest.fixture(scope="session")
def trained_deployment(built_deployment: Paths) -> Paths:
    """The built deployment with an approved champion registered in its own MLflow store."""
    deliver(built_deployment)
    return built_deployment
