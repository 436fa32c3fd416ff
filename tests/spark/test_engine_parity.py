"""One dbt project, two engines: the same landed book and log built on DuckDB and on a local Spark
give the same marts, row by row (keys equal, numbers to 1e-9, JSON details equal when parsed).

The Spark build runs in this process (dbt-spark ``method: session``), with the SciPy functions the
monitoring marts call registered in its SparkSession first, from the same code DuckDB registers
(``warehouse.spark_session.register_functions``: the bodies of ``warehouse.distributions``).
A small book and log: a few thousand loans, two model versions' training inputs and a few
thousand logged requests, the second version's drifted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.support.deployment import paths_for
from tests.support.spark_book import land_book_and_log, land_later_log
from warehouse.build import current_loan_book, dbt_vars
from warehouse.dbt import run_dbt
from warehouse.paths import Paths
from warehouse.settings import EngineSettings

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
]

TOLERANCE = 1e-9
ALL_KINDS = ["hour", "day", "count", "deployment"]
BUILD = ["build", "--exclude", "tag:monitor", "tag:gate", "--exclude-resource-type", "unit_test"]
RUN = ["run", "--exclude", "tag:monitor", "tag:gate"]
"""On Spark the models only: DuckDB's build ran the data tests on the same rows, and each test is a
Spark job of seconds (the test's time limit)."""


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """The landed book and log built on both engines: the DuckDB deployment's paths, the SparkSession and
    the build's vars.

    The Spark build is lendguard's own (``run_dbt`` on a deployment whose engine is spark): this
    process's session started with ``warehouse.spark_session``'s settings and functions, then dbt-spark
    builds in it."""
    from warehouse.spark_session import local_session  # pyspark: the spark tests only

    paths = replace(paths_for(tmp_path_factory.mktemp("engine-parity") / "data"), engine=EngineSettings())
    loan_book = land_book_and_log(paths)
    variables = {**dbt_vars(loan_book), "drift_all_p_values": True, "drift_ks_window_kinds": ALL_KINDS}
    _build_on_both(paths, variables)
    spark = local_session(replace(paths, engine=EngineSettings(engine="spark")))  # the session the build ran in
    try:
        yield Engines(paths, spark, variables)
    finally:
        spark.stop()


class Engines(NamedTuple):
    paths: Paths
    spark: Any
    variables: dict[str, Any]


def _build_on_both(paths: Paths, variables: dict[str, Any]) -> None:
    """The project on DuckDB (models and data tests) and on Spark (models): incrementally where built."""
    on_duckdb = run_dbt(paths, BUILD, variables)
    assert on_duckdb.returncode == 0, on_duckdb.output
    spark_paths = replace(paths, engine=EngineSettings(engine="spark"))
    built = run_dbt(spark_paths, RUN, variables, target_path=paths.data_dir / "dbt" / "target-spark")
    assert not built.failures, f"failed on Spark: {[r['unique_id'] for r in built.failures]}\n{built.output}"
    assert built.returncode == 0, built.output


def _duckdb_tables(paths: Paths) -> list[str]:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        rows = con.execute("select table_name from information_schema.tables "
                           "where table_type = 'BASE TABLE' order by table_name").fetchall()
    return [name for (name,) in rows]


def _plain(value: Any) -> Any:
    """A cell as plain Python, the same from both engines (Spark Rows, NumPy scalars, dates, JSON text)."""
    if hasattr(value, "asDict"):
        value = value.asDict(recursive=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _plain(json.loads(value))
        except ValueError:
            return value
    return _scalar(value.item() if isinstance(value, np.generic) else value)


def _scalar(value: Any) -> Any:
    """Missing values as None, every timestamp and date as a naive datetime, every number but a
    boolean as a float (the engines' integer widths differ)."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):  # pandas' Timestamp included
        return pd.Timestamp(value).tz_localize(None).to_pydatetime()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, float):
        return value + 0.0  # -0.0 as 0.0: equal numbers (a group key's zero keeps its sign on DuckDB only)
    return value


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=TOLERANCE, abs_tol=TOLERANCE) or (math.isinf(left) and left == right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def _build_times(stamps: list[Any]) -> dict[datetime, str]:
    """What each run stamp (``drift_batch_stamp``: dbt's run_started_at) is compared as: "(build 1)",
    "(build 2)"...; each engine's builds started at their own times."""
    return {_scalar(stamp): f"(build {i})" for i, stamp in enumerate(sorted(stamps), start=1)}


def _rows(frame: pd.DataFrame, columns: list[str], build_times: dict[datetime, str]) -> list[list[Any]]:
    rows = [[_plain(frame[c].iloc[i]) for c in columns] for i in range(len(frame))]
    rows = [[build_times.get(value, value) if isinstance(value, datetime) else value for value in row]
            for row in rows]
    return sorted(rows, key=lambda row: [(v is None, repr(round(v, 6)) if isinstance(v, float) else repr(v))
                                         for v in row])


def _differences(paths: Paths, spark: Any) -> dict[str, str]:
    """Every DuckDB table against its Spark twin, row by row: what differs, by table."""
    tables = _duckdb_tables(paths)
    on_spark = {row.tableName for row in spark.sql("show tables in lendguard").collect() if not row.isTemporary}
    assert set(tables) <= on_spark, f"built on DuckDB only: {sorted(set(tables) - on_spark)}"
    assert {"mon_drift_numeric", "mon_drift_categorical", "mon_feature_histograms", "train_loans"} <= set(tables)
    spark.catalog.refreshTable("lendguard.int_requests")
    differences = {}
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        duck_builds = _build_times([r[0] for r in con.execute("select distinct batch_at from int_requests").fetchall()])
        spark_builds = _build_times([r[0] for r in spark.sql("select distinct batch_at from lendguard.int_requests")
                                    .collect()])
        for table in tables:
            duck = con.execute(f'select * from "{table}"').df()
            spark.catalog.refreshTable(f"lendguard.{table}")
            sparks = spark.table(f"lendguard.{table}").toPandas()
            columns = sorted(duck.columns)
            if sorted(sparks.columns) != columns:
                differences[table] = f"columns {columns} vs {sorted(sparks.columns)}"
                continue
            left, right = _rows(duck, columns, duck_builds), _rows(sparks, columns, spark_builds)
            if len(left) != len(right):
                differences[table] = f"{len(left)} rows vs {len(right)}"
                continue
            unequal = [(a, b) for a, b in zip(left, right, strict=True) if not _same(a, b)]
            if unequal:
                differences[table] = f"{len(unequal)} rows differ, first: {unequal[0]}"
    return differences


def test_every_table_is_the_same_on_duckdb_and_spark(engines: Engines) -> None:
    assert not _differences(engines.paths, engines.spark)


def test_the_drift_marts_are_not_empty(engines: Engines) -> None:
    """The comparison means something: the log's drift reaches the marts on both."""
    paths, spark, _ = engines
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        duck = con.execute("select count(*) from mon_drift_numeric where window_kind = 'count'").fetchone()
    assert duck is not None
    assert duck[0] > 0
    on_spark = spark.sql("select count(*) from lendguard.mon_drift_numeric where window_kind = 'count'").first()
    assert on_spark[0] == duck[0]



def test_an_incremental_run_keeps_the_engines_equal(engines: Engines) -> None:
    """Later rows (late and back-dated among them) built incrementally: DuckDB deletes and inserts by key,
    Spark overwrites partitions or appends (macros/portable.sql); the tables stay equal row by row,
    and the rows really arrived (not two unchanged builds). Runs after the tests above: it adds rows."""
    paths, spark, variables = engines
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        before = con.execute("select count(*) from int_requests").fetchone()
    landed = land_later_log(paths, current_loan_book(paths))
    _build_on_both(paths, variables)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        after = con.execute("select count(*), count(distinct batch_at) from int_requests").fetchone()
    assert before is not None
    assert after is not None
    assert after == (before[0] + landed, 2), "the later rows were added by a second, incremental build"
    assert not _differences(paths, spark)
