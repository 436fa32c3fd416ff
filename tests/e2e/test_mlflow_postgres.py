"""The production MLflow set-up, for real: ``mlflow server`` on PostgreSQL with an artifact root,
and lendguard's pipeline, approval and API as separate processes talking to it over HTTP.

The pipeline trains once on a small book; the reload is to a second version registered by the
test (the same fitted model with other thresholds), so nothing trains twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest

from api.routes.score import SCORE_PATH
from lendguard.processes import serve_command, start_server
from ml.registry import load_version, set_alias
from tests.support.applications import application
from tests.support.deployment import SMALL_BOOK, SMALL_BOOK_SEED
from tests.support.postgres import MlflowServer, PostgresCluster, mlflow_server, throwaway_cluster
from tests.support.registry import register_variant, scaled_policy
from tests.support.servers import free_port, wait_for
from warehouse.paths import Paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOK = SMALL_BOOK
"""Loans: the shared test book's size and seed (tests/support/deployment.py)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with throwaway_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def tracking_server(cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(cluster, tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


def ok(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "lendguard.cli", *args], env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert done.returncode == 0, f"lendguard {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _registry_rows(cluster: PostgresCluster) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """Versions and aliases as PostgreSQL holds them (MLflow's own tables)."""
    with psycopg2.connect(cluster.url.replace("+psycopg2", "")) as con, con.cursor() as cursor:
        cursor.execute("select name, version from model_versions order by version")
        versions = [(str(name), int(version)) for name, version in cursor.fetchall()]
        cursor.execute("select alias, version from registered_model_aliases")
        aliases = {str(alias): int(version) for alias, version in cursor.fetchall()}
    return versions, aliases


def test_pipeline_approve_serve_reload_on_postgres(
    cluster: PostgresCluster, tracking_server: MlflowServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "LENDGUARD_DATA_DIR": str(data), "MLFLOW_TRACKING_URI": tracking_server.url,
           "COLUMNS": "200", "LENDGUARD_DEV_API_PORT": str(free_port()),
           # other tests share the cores: the dev-test latency limit has a test of its own
           "LENDGUARD_DEV_MAX_P99_MS": "60000", "LENDGUARD_MODEL_POLL_SECONDS": "0.5"}
    ok(env, "simulate", "--loans", str(BOOK), "--seed", str(SMALL_BOOK_SEED))
    ok(env, "build")
    # The shared test book and the model its full search selects: a gate known to pass (a 20,000-loan
    # book's FPR gap landed at 0.0585 > 0.05 by chance), and one candidate, not the whole search:
    # this test is about the registry on PostgreSQL, not model selection.
    assert "awaits approval" in ok(env, "pipeline", "run", "--candidates", "logreg_c0.1")
    assert "version 1 approved by Postgres Tester" in ok(env, "approve", "1", "--by", "Postgres Tester",
                                                          "--note", "registry on PostgreSQL")

    versions, aliases = _registry_rows(cluster)
    assert versions == [("lendguard", 1)]
    assert aliases == {"champion": 1}
    assert list(tracking_server.artifacts.rglob("model.pmml")), "artifacts went to the server's artifact root"
    assert not (data / "mlflow").exists(), "nothing fell back to a local SQLite store or artifact folder"

    port = free_port()
    api = start_server(serve_command(port), port=port, log_path=tmp_path / "api.log", env=env)
    try:
        assert httpx.get(f"{api.url}/readyz").json()["model_version"] == "1"
        first = httpx.post(f"{api.url}{SCORE_PATH}", json=application(0))
        assert first.status_code == 200, first.text
        assert first.json()["model_version"] == "1"

        # The pipeline's side (this process, not the API's): a new version, then champion moves to it.
        paths = Paths.from_env(env)
        second = register_variant(paths, "1", policy=scaled_policy(load_version(paths, "1"), 1.05))
        set_alias(paths, "champion", second)
        assert _registry_rows(cluster)[1]["champion"] == int(second)

        def serving_second() -> bool:
            return bool(httpx.get(f"{api.url}/readyz").json()["model_version"] == second)

        wait_for(serving_second, timeout=120, what=f"the API serving version {second}")
        after = httpx.post(f"{api.url}{SCORE_PATH}", json=application(1))
        assert after.status_code == 200, after.text
        assert after.json()["model_version"] == second
    finally:
        api.stop()
