"""The Spark reader against a real local Spark (one session for the module): the readers of the marts
(dashboard, status, monitor, failover, export, demo) give the same answers on the Spark tables as on
the DuckDB snapshot they were copied from, through the same DuckDB-dialect queries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from api.dashboard.model import load_dashboard
from lendguard import demo, status
from lendguard.monitor import read_alerts
from tests.support.dashboard import MARTS, MLFLOW_UI, publish_marts
from tests.support.spark import stop_spark
from warehouse.exports import export_marts
from warehouse.failover import open_alert_ids
from warehouse.marts import SPARK_DATABASE, MartMissingError, open_marts
from warehouse.paths import Paths
from warehouse.publish import SnapshotMissingError
from warehouse.settings import EngineSettings

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

MORE_MARTS = """
create table eval_metrics as select * from (values
    ('7', 'candidate', 'single', '__overall__', 900, 0.12, 0.81, 0.4),
    ('7', 'candidate', 'single', 'A', 400, 0.10, 0.80, 0.4),
    ('7', 'candidate', 'single', 'B', 500, 0.15, 0.82, 0.4),
    ('7', 'champion', 'single', '__overall__', 900, 0.2, 0.7, 0.5)
) t(candidate_version, role, policy, group_name, repaid, fpr, auc, cost_per_applicant);
create table stg_landing__loans as select * from (values ('L1', 'A', 1.5), ('L2', 'B', 2.5), ('L3', 'A', 3.5))
    t(loan_id, fairness_group, income);
"""


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Paths, Paths]]:
    """One deployment's marts twice: the DuckDB snapshot, and each of its tables as the Parquet
    folder dbt-spark would leave in the Spark warehouse. The module starts its own Spark session (a
    session an earlier module of this worker left has its catalog, ``lendguard`` among it) and stops
    it when done."""
    stop_spark()
    duck = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path_factory.mktemp("marts") / "data")})
    publish_marts(duck, MARTS + MORE_MARTS)
    with duckdb.connect(str(duck.snapshot), read_only=True) as con:
        for (table,) in con.execute("select table_name from information_schema.tables").fetchall():
            folder = duck.spark_warehouse / f"{SPARK_DATABASE}.db" / table
            folder.mkdir(parents=True)
            con.execute(f"copy {table} to '{folder / 'part-00000.parquet'}' (format parquet)")
    yield duck, dataclasses.replace(duck, engine=EngineSettings(engine="spark"))
    stop_spark()


def _engine_neutral(value: Any) -> Any:
    """``value`` with the engines' own error texts (why a panel has no data) reduced to the fact."""
    if isinstance(value, dict):
        return {k: _engine_neutral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_engine_neutral(v) for v in value]
    if isinstance(value, str) and value.startswith("not in the snapshot yet"):
        return "not in the snapshot yet"
    return value


def test_every_reader_answers_the_same_on_spark_as_on_the_duckdb_snapshot(
    deployments: tuple[Paths, Paths], tmp_path: Path
) -> None:
    duck, spark = deployments
    empty = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path / "empty"), "LENDGUARD_ENGINE": "spark"})
    with pytest.raises(SnapshotMissingError, match="lendguard build"):  # first: the session's catalog is empty
        open_marts(empty)
    on_duck, on_spark = (dataclasses.asdict(load_dashboard(p, MLFLOW_UI, with_registry=False)) for p in deployments)
    for volatile in ("generated_at", "snapshot_path", "snapshot_published_at"):
        del on_duck[volatile], on_spark[volatile]
    assert _engine_neutral(on_spark) == _engine_neutral(on_duck)
    assert on_spark["alert_count"] == 1
    assert on_spark["drift"]["rows"], "the panels have rows on Spark: not two empty answers"
    assert "mon_realised_quality" in on_spark["gaps"]["realised_missing"], "a missing mart is named on Spark too"

    assert read_alerts(spark) == read_alerts(duck)
    assert open_alert_ids(spark) == open_alert_ids(duck) == ["a1"]
    assert status._alerts(spark) == status._alerts(duck)
    assert demo.hourly_summary(spark) == demo.hourly_summary(duck)
    assert demo.policy_summary(spark, "7") == demo.policy_summary(duck, "7")

    exported = {paths.engine.engine: export_marts(paths, tmp_path / paths.engine.engine) for paths in deployments}
    assert [p.name for p in exported["spark"]] == [p.name for p in exported["duckdb"]]
    assert exported["duckdb"], "marts were exported: not two empty lists"
    for on_spark_file, on_duck_file in zip(exported["spark"], exported["duckdb"], strict=True):
        assert pq.read_table(on_spark_file).to_pylist() == pq.read_table(on_duck_file).to_pylist()

    for paths in deployments:  # ml.delivery.dev_tests: a list parameter
        with open_marts(paths) as marts:
            raw = marts.arrow("select loan_id, income from stg_landing__loans where list_contains(?, loan_id) "
                              "order by loan_id", [["L3", "L1"]])
            assert raw.to_pylist() == [{"loan_id": "L1", "income": 1.5}, {"loan_id": "L3", "income": 3.5}]
            with pytest.raises(MartMissingError, match="mon_nope"):
                marts.rows("select * from mon_nope")
