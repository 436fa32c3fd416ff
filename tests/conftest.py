"""Fixtures: deployments of a test's own, and the one trained deployment a session shares.

The trained deployment (simulate → build → train → gate → approve → build) is built once per
session, however many pytest-xdist workers run: the first worker that needs it builds it under the
session's shared base temp, holding a file lock; the others wait for the lock and reuse it. It is
read only: a test that changes a deployment takes a copy (``trained_copy``). Helpers live in
``tests/support/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.deployment import build_once, build_trained_deployment, copy_deployment, paths_for
from warehouse.paths import Paths

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """An empty deployment of its own."""
    return paths_for(tmp_path / "data")


@pytest.fixture(scope="session")
def trained_deployment(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The session's trained deployment: a built loan book and an approved champion in its own MLflow
    store, with a snapshot built after the approval. Shared by every test and worker: read only."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: one base per worker
    root = build_once(shared / "trained-deployment", lambda root: build_trained_deployment(root / "data"))
    return paths_for(root / "data")


@pytest.fixture(scope="session")
def built_deployment(trained_deployment: Paths) -> Paths:
    """For tests that need only a built loan book: the same shared deployment (one build serves both)."""
    return trained_deployment


@pytest.fixture
def trained_copy(trained_deployment: Paths, tmp_path: Path) -> Paths:
    """A copy of the trained deployment for a test that lands data, builds or runs dbt in it."""
    return copy_deployment(trained_deployment, tmp_path)
