"""One door to the marts (issue #17 item 5): the reader, its consistency, its errors, and that nothing
else in the package opens DuckDB. The Spark reader against a real Spark: ``test_marts_spark.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from warehouse.marts import MartError, MartMissingError, open_marts, spark_sql
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.publish import SnapshotMissingError, publish

PACKAGES = ("warehouse", "ml", "api", "lendguard")
OPENS_DUCKDB = {
    "warehouse/marts.py": "the reader itself (DuckDBSnapshotReader)",
    "warehouse/publish.py": "owns the snapshot file: checkpoints the warehouse, strips and opens the copy",
    "ml/scoring.py": "the scorer's in-process engine (and training's parity check of the same SQL)",
    "warehouse/datasets.py": "query_landed: reads the landing zone's files, not marts",
    "warehouse/importer.py": "validates and converts an imported loan book file, in memory",
    "warehouse/outcomes.py": "joins a simulated outcome file to the landed prediction log, in memory",
}
"""The modules that may call ``duckdb.connect`` or ``connect_snapshot``, and why."""


def _opens_duckdb(path: Path) -> list[int]:
    """Lines of ``path`` that open DuckDB: ``duckdb.connect(...)``, ``connect_snapshot(...)``, or an
    import of ``connect`` from duckdb."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "duckdb" and "connect" in {a.name for a in node.names}:
            lines.append(node.lineno)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "connect" and isinstance(func.value, ast.Name)
                and func.value.id == "duckdb"):
            lines.append(node.lineno)
        if (isinstance(func, ast.Name) and func.id == "connect_snapshot") or (
                isinstance(func, ast.Attribute) and func.attr == "connect_snapshot"):
            lines.append(node.lineno)
    return lines


def test_no_module_opens_duckdb_but_the_reader_the_scorer_and_the_file_owners() -> None:
    opening = {str(path.relative_to(PROJECT_DIR)): lines
               for package in PACKAGES for path in sorted((PROJECT_DIR / package).rglob("*.py"))
               if "data" not in path.relative_to(PROJECT_DIR).parts and (lines := _opens_duckdb(path))}
    outside = {module: lines for module, lines in opening.items() if module not in OPENS_DUCKDB}
    assert not outside, f"read the marts through warehouse.marts.open_marts, not DuckDB: {outside}"
    assert set(OPENS_DUCKDB) <= set(opening), "an allowed module no longer opens DuckDB: take it off the list"


def _build(paths: Paths, sql: str) -> None:
    """Write the warehouse with ``sql`` and publish it, as a build does."""
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute(sql)
    publish(paths)


def test_a_reader_sees_one_published_build_for_its_whole_read(paths: Paths) -> None:
    _build(paths, "create table mon_alerts as select 'a1' as alert_id")
    with open_marts(paths) as marts:
        assert marts.rows("select alert_id from mon_alerts") == [{"alert_id": "a1"}]
        _build(paths, "create or replace table mon_alerts as select 'a2' as alert_id")
        assert marts.rows("select alert_id from mon_alerts") == [{"alert_id": "a1"}], "still its own build"
        assert marts.tables() == ["mon_alerts"]
    with open_marts(paths) as marts:
        assert marts.rows("select alert_id from mon_alerts") == [{"alert_id": "a2"}], "a new read sees the new build"


def test_rows_frames_arrow_and_parameters(paths: Paths, tmp_path: Path) -> None:
    _build(paths, "create table eval_metrics as select * from (values ('1', 0.5::double), ('2', 0.7)) t(version, auc);"
                  "create view eval_latest as select * from eval_metrics")
    with open_marts(paths) as marts:
        assert marts.rows("select auc from eval_metrics where version = ?", ["2"]) == [{"auc": pytest.approx(0.7)}]
        assert marts.frame("select version from eval_metrics where version = $1 or version = $1", ["1"])[
            "version"].tolist() == ["1"]
        assert marts.arrow("select version from eval_metrics order by 1").column("version").to_pylist() == ["1", "2"]
        assert marts.tables() == ["eval_metrics"], "base tables only, not views"
        marts.write_parquet("eval_metrics", tmp_path / "m.parquet")
    assert duckdb.sql(f"select count(*) from '{tmp_path / 'm.parquet'}'").fetchone() == (2,)


def test_engine_errors_become_mart_errors(paths: Paths) -> None:
    _build(paths, "create table mon_alerts as select 'a1' as alert_id")
    with open_marts(paths) as marts:
        with pytest.raises(MartMissingError, match=r"CatalogException.*mon_nope"):
            marts.rows("select * from mon_nope")
        with pytest.raises(MartMissingError, match=r"BinderException.*severity"):
            marts.rows("select severity from mon_alerts")
        with pytest.raises(MartError, match="ConversionException") as raised:
            marts.rows("select cast(alert_id as integer) from mon_alerts")
        assert not isinstance(raised.value, MartMissingError)


def test_before_the_first_build_there_is_nothing_to_read(paths: Paths) -> None:
    with pytest.raises(SnapshotMissingError, match="lendguard build"):
        open_marts(paths)


def test_the_engine_is_a_setting(tmp_path: Path) -> None:
    assert Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path)}).engine.engine == "duckdb"
    spark = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path), "LENDGUARD_ENGINE": "spark"})
    assert (spark.engine.engine, spark.spark_warehouse) == ("spark", tmp_path.resolve() / "spark" / "warehouse")


def test_duckdb_sql_becomes_spark_sql_with_named_parameters_and_qualified_tables() -> None:
    text, count = spark_sql("with h as (select * from mon_ops_hourly where x = '?' and y = ? limit ?) "
                            "select cast(n as varchar) from h join mon_alerts using (k) "
                            "order by n desc nulls last")
    assert count == 2
    assert text == ("WITH h AS (SELECT * FROM lendguard.mon_ops_hourly WHERE x = '?' AND y = :p1 LIMIT :p2) "
                    "SELECT CAST(n AS STRING) FROM h JOIN lendguard.mon_alerts USING (k) ORDER BY n DESC")
    assert spark_sql("select * from t where a = $1 and b in (select b from t where a = $1 limit $2)", "db") == (
        "SELECT * FROM db.t WHERE a = :p1 AND b IN (SELECT b FROM db.t WHERE a = :p1 LIMIT :p2)", 2)
