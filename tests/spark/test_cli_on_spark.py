"""``lendguard`` on the Spark engine, as a person runs it: ``lendguard --engine spark build`` builds
the project on a local Spark in the CLI's own process (the SciPy functions registered first) and
publishes the tables; ``LENDGUARD_ENGINE=spark lendguard export-marts`` reads them through
``warehouse.marts.open_marts``, in a Spark session of its own.

The real CLI, each command a child process (its own JVM, as a person's shell gives it), on the
small book and log of the parity test. No Spark session in the test's own process: a later Spark
test there must start its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

from tests.support.deployment import deployment_env, paths_for
from tests.support.spark_book import land_book_and_log
from warehouse import landing
from warehouse.settings import EngineSettings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SELECT = ["+train_loans", "+dlv_pipeline_stages", "+mon_ops_hourly"]
"""A part of the project, with its data tests: a mart of each layer, two with enforced contracts (the
whole project builds on Spark in the parity test; a full ``dbt build`` also runs each of ~130 data
tests as a Spark job: minutes on two cores)."""


FRESHNESS = ("import json; from warehouse.freshness import prediction_log_freshness; "
             "from warehouse.paths import get_paths; found = prediction_log_freshness(get_paths()); "
             "print(json.dumps({'status': found.status, 'newest': str(found.newest_received_at)}))")
"""``dbt source freshness`` on the prediction log, as ``lendguard monitor`` runs it, in a process of its own."""


def _python(data_dir: Path, *args: str, engine: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **deployment_env(data_dir)}
    env.pop("LENDGUARD_ENGINE", None)
    if engine is not None:
        env["LENDGUARD_ENGINE"] = engine
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=False,
                          timeout=1_800)


def _lendguard(data_dir: Path, *args: str, engine: str | None = None) -> subprocess.CompletedProcess[str]:
    return _python(data_dir, "-m", "lendguard.cli", *args, engine=engine)


def test_build_on_spark_publishes_tables_the_marts_reader_reads(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed: uv pip install -r requirements-spark.lock")
    data_dir = tmp_path / "data"
    paths = replace(paths_for(data_dir), engine=EngineSettings(engine="spark"))
    land_book_and_log(paths)
    logged = pq.read_table(paths.landing / landing.PREDICTION_LOG).num_rows

    built = _lendguard(data_dir, "--engine", "spark", "build", "--json", "--select", *SELECT)
    assert built.returncode == 0, built.stdout + built.stderr
    assert json.loads(built.stdout)["snapshot"] == str(paths.spark_tables)
    assert not paths.warehouse.exists(), "the DuckDB warehouse was written: the build did not run on Spark"

    out = tmp_path / "marts"
    exported = _lendguard(data_dir, "export-marts", "--out", str(out), "--json", engine="spark")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert {Path(f).name for f in json.loads(exported.stdout)["files"]} == {
        "dlv_pipeline_stages.parquet", "mon_ops_hourly.parquet"}
    hourly = pq.read_table(out / "mon_ops_hourly.parquet")
    assert sum(hourly.column("requests").to_pylist()) == logged
    assert pa.types.is_timestamp(hourly.schema.field("first_event_at").type)
    stages = pq.read_table(out / "dlv_pipeline_stages.parquet")
    assert stages.num_rows == 0
    assert pa.types.is_timestamp(stages.schema.field("started_at").type)  # an empty table keeps its schema

    # Source freshness reads the landing files too (dbt hands it the source's relation, not `source()`).
    fresh = _python(data_dir, "-c", FRESHNESS, engine="spark")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    newest = pq.read_table(paths.landing / landing.PREDICTION_LOG, columns=["received_at"]).column("received_at")
    verdict = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert verdict["status"] in {"pass", "warn", "error"}
    assert verdict["newest"] == str(pa.compute.max(newest).as_py().replace(tzinfo=UTC))
