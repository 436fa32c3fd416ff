"""Fixtures: deployments of a test's own, and the one trained deployment a session shares.

The trained deployment (simulate → build → train → gate → approve → build) is built once per
session, however many pytest-xdist workers run: the first worker that needs it builds it under the
session's shared base temp, holding a file lock; the others wait for the lock and reuse it. It is
read only: a test that changes a deployment takes a copy (``trained_copy``). Helpers live in
``tests/support/``.

``make test`` runs two workers, a test module at a time each; :func:`pytest_collection_modifyitems`
puts the long modules first, those that do not need the shared deployment ahead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.deployment import (
    build_once,
    build_trained_deployment,
    copy_deployment,
    paths_for,
    untrained_copy,
)
from tests.support.spark import start_local_spark
from warehouse.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

SHARED_FIXTURES = frozenset({"trained_deployment", "built_deployment", "trained_copy"})
"""The fixtures that need the session's trained deployment (whose first build takes a minute or more)."""
LONG_MARKERS = ("e2e", "slow")
"""A module with a test marked so runs pipelines, builds or servers: it goes before the quick ones."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that needs the shared trained deployment or Spark (``make test-quick``
    leaves them out). Order the modules for ``pytest -n 2 --dist loadfile --no-loadscope-reorder``
    (``make test``), where a module is a work unit and units start in collection order: long modules
    before quick ones (the last work a worker takes is short, so neither waits long for the other at the end);
    among the long ones, those without the shared deployment first (while one worker builds it, the
    other has work that does not wait for it). The order within a module stays as written (some
    modules' tests build on the ones before)."""
    long: set[str] = set()
    shared: set[str] = set()
    for item in items:
        module = item.nodeid.split("::")[0]
        if (SHARED_FIXTURES | {"spark"}) & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
        if any(item.get_closest_marker(marker) for marker in LONG_MARKERS):
            long.add(module)
        if SHARED_FIXTURES & set(item.fixturenames):
            shared.add(module)

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0]
        return 2 if module not in long else 1 if module in shared else 0

    items.sort(key=rank)  # stable: the collection's order within a rank


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """An empty deployment of its own."""
    return paths_for(tmp_path / "data")


@pytest.fixture(scope="session")
def trained_deployment(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The session's trained deployment: a built loan book and an approved champion in its own MLflow
    store, with a snapshot built after the approval. Shared by every test and worker: read only."""
    root = build_once(
        _shared_base(tmp_path_factory) / "trained-deployment", lambda root: build_trained_deployment(root / "data")
    )
    return paths_for(root / "data")


def _shared_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every worker of the session sees (under xdist each has a base temp of its own)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def built_deployment(trained_deployment: Paths) -> Paths:
    """For tests that need only a built loan book: the same shared deployment (one build serves both)."""
    return trained_deployment


@pytest.fixture(scope="session")
def untrained_book(built_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The shared deployment's loan book built in a deployment with no registry yet, once per session
    (like the trained one): read only; a test that trains takes a copy (``copy_deployment``), so
    its pipeline is gated against no other test's champion."""
    root = build_once(
        _shared_base(tmp_path_factory) / "untrained-book", lambda root: untrained_copy(built_deployment, root)
    )
    return paths_for(root / "data")


@pytest.fixture
def trained_copy(trained_deployment: Paths, tmp_path: Path) -> Paths:
    """A copy of the trained deployment for a test that lands data, builds or runs dbt in it."""
    return copy_deployment(trained_deployment, tmp_path)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """The test session's local Spark (one per process: Spark allows one context), stopped at the end."""
    session = start_local_spark(tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()
