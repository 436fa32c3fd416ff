"""One door to the marts: training, evaluation, the dashboard, status, export and the monitor read
them through a :class:`MartReader`, whichever engine built them (``LENDGUARD_ENGINE``).

- ``duckdb`` (the default): :class:`DuckDBSnapshotReader` holds one read-only connection to the
  published snapshot (:mod:`warehouse.publish`) for its whole life, so every query of one reader
  sees the same build, even when a newer one is published meanwhile (the snapshot renamed over it
  stays alive while the connection holds it).
- ``spark``: :class:`SparkMartReader` queries through a SparkSession (``getOrCreate``: the process's
  own, a cluster's, or a local one) the tables dbt-spark writes in :data:`SPARK_DATABASE`. Plain
  Parquet tables have no snapshot: a reader opened while a build rewrites them may see tables of
  two builds (Delta Lake or Iceberg would give one; their jars cannot be installed here).

Callers write DuckDB SQL (the default engine's dialect) with ``?`` or ``$n`` parameters; the Spark
reader transpiles it with sqlglot and binds the parameters as named markers, so no caller builds
SQL per engine. An engine's error becomes a :class:`MartError` (:class:`MartMissingError` when a
relation or column is not in the marts), so a caller that fails soft need not know the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

import duckdb
import pyarrow as pa

from warehouse.errors import LendguardError
from warehouse.paths import SPARK_SCHEMA
from warehouse.publish import SnapshotMissingError, connect_snapshot
from warehouse.settings import SettingsError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from warehouse.paths import Paths


Params = Sequence[Any]
Row = dict[str, Any]
T = TypeVar("T")

SPARK_DATABASE = SPARK_SCHEMA
"""The schema the dbt-spark target writes its tables to (its profile's ``schema``; declared once, in paths)."""
_SPARK_MISSING = ("TABLE_OR_VIEW_NOT_FOUND", "UNRESOLVED_COLUMN", "SCHEMA_NOT_FOUND", "FIELD_NOT_FOUND")
"""Spark's error conditions for a relation or column that does not exist."""


class MartError(LendguardError):
    """A query over the marts failed; the message is the engine's error class and first line."""


class MartMissingError(MartError):
    """A relation or column the query names is not in the marts (yet: they grow with the project)."""


class MartReader(Protocol):
    """What readers of the marts may ask; a context manager whose life is one consistent read."""

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of ``sql`` (DuckDB dialect, ``?`` or ``$n`` parameters) as dicts of Python values."""

    def frame(self, sql: str, params: Params = ()) -> pd.DataFrame:
        """The rows of ``sql`` as a pandas frame."""

    def arrow(self, sql: str, params: Params = ()) -> pa.Table:
        """The rows of ``sql`` as an Arrow table."""

    def tables(self) -> list[str]:
        """Every base table (not views), sorted."""

    def write_parquet(self, table: str, target: Path) -> None:
        """Write every row of ``table`` to the Parquet file ``target`` (the engine's own writer when
        it has one, so the file's types are the engine's)."""

    def close(self) -> None:
        """End the read (its snapshot is let go)."""

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None: ...


def open_marts(paths: Paths) -> MartReader:
    """A reader of ``paths``' marts on its engine; raises ``SnapshotMissingError`` before the first build."""
    if paths.engine.engine == "spark":
        return SparkMartReader.from_paths(paths)
    return DuckDBSnapshotReader(paths)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Closing:
    """``with reader:`` closes it at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class DuckDBSnapshotReader(_Closing):
    """The published DuckDB snapshot, one read-only connection held for the reader's life."""

    def __init__(self, paths: Paths) -> None:
        self._connection = connect_snapshot(paths)

    def _execute(self, sql: str, params: Params) -> duckdb.DuckDBPyConnection:
        try:
            return self._connection.execute(sql, list(params))
        except (duckdb.CatalogException, duckdb.BinderException) as exc:
            raise MartMissingError(_first_line(exc)) from exc
        except duckdb.Error as exc:
            raise MartError(_first_line(exc)) from exc

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = self._execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def frame(self, sql: str, params: Params = ()) -> pd.DataFrame:
        return self._execute(sql, params).df()

    def arrow(self, sql: str, params: Params = ()) -> pa.Table:
        return self._execute(sql, params).fetch_arrow_table()

    def tables(self) -> list[str]:
        return [str(r["table_name"]) for r in self.rows(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE' order by 1")]

    def write_parquet(self, table: str, target: Path) -> None:
        quoted = str(target).replace("'", "''")
        self._execute(f"copy (select * from {_quoted(table)}) to '{quoted}' (format parquet)", ())

    def close(self) -> None:
        self._connection.close()


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


class SparkMartReader(_Closing):
    """The tables of ``database`` in a SparkSession's catalog, queried in Spark SQL."""

    def __init__(self, spark: SparkSession, database: str = SPARK_DATABASE) -> None:
        self._spark = spark
        self._database = database

    @classmethod
    def from_paths(cls, paths: Paths, database: str = SPARK_DATABASE) -> SparkMartReader:
        """A reader on the process's SparkSession (a local one if there is none) of ``paths``' tables.

        A local session's catalog starts empty in every process (the tables were written by
        another: ``lendguard build``), so each table folder dbt-spark left under
        ``paths.spark_warehouse`` is registered as a Parquet table the first time, and refreshed
        on every later open: the reader sees the files as they are now. A session whose catalog
        already has ``database`` (a cluster's metastore) needs no folder.
        """
        spark = _local_session(paths)
        folder = paths.spark_warehouse / f"{database}.db"
        if folder.is_dir():
            _register_tables(spark, folder, database)
        if not spark.catalog.databaseExists(database):
            raise SnapshotMissingError(f"no Spark tables in {database} (nor at {folder}): run `lendguard build` first")
        return cls(spark, database)

    def _query(self, sql: str, params: Params) -> DataFrame:
        text, count = spark_sql(sql, self._database)
        if len(params) != count:
            raise MartError(f"the query takes {count} parameters, {len(params)} given")
        return self._spark.sql(text, args={f"p{i}": value for i, value in enumerate(params, start=1)})

    def _run(self, sql: str, params: Params, fetch: Callable[[DataFrame], T]) -> T:
        """``fetch`` the rows of ``sql``; Spark's errors (at analysis or while running) as mart errors."""
        from pyspark.errors import PySparkException  # noqa: PLC0415 - pyspark: only with the spark engine

        try:
            return fetch(self._query(sql, params))
        except PySparkException as exc:
            condition = exc.getCondition() or ""
            error = MartMissingError if condition.startswith(_SPARK_MISSING) else MartError
            raise error(_first_line(exc)) from exc

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._run(sql, params, lambda df: [r.asDict(recursive=True) for r in df.collect()])

    def frame(self, sql: str, params: Params = ()) -> pd.DataFrame:
        return self._run(sql, params, lambda df: _decimals_as_doubles(df).toPandas())

    def arrow(self, sql: str, params: Params = ()) -> pa.Table:
        return self._run(sql, params, lambda df: _naive_utc(df.toArrow()))

    def tables(self) -> list[str]:
        return sorted(t.name for t in self._spark.catalog.listTables(self._database)
                      if not t.isTemporary and t.tableType != "VIEW")

    def write_parquet(self, table: str, target: Path) -> None:
        """One file, written from Arrow on the driver (Spark itself writes a folder of parts)."""
        import pyarrow.parquet as pq  # noqa: PLC0415 - only the export writes files

        pq.write_table(self.arrow(f"select * from {_quoted(table)}"), target)

    def close(self) -> None:
        """Nothing to let go: the session outlives the reader (it is the process's)."""


def _register_tables(spark: SparkSession, folder: Path, database: str) -> None:
    """Each table folder under ``folder`` as a Parquet table of ``database``; refreshed if known."""
    from warehouse.spark_session import table_schemas  # noqa: PLC0415 - pyspark: only with the spark engine

    if not spark.catalog.databaseExists(database):
        spark.sql(f"create database `{database}`")
    known = {t.name for t in spark.catalog.listTables(database)}
    schemas = table_schemas(folder)  # as the build's catalog had them (empty tables, partition columns' types)
    for table in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        name = f"`{database}`.`{table.name}`"
        if table.name in known:
            spark.catalog.refreshTable(name)  # the session lists a table's files once, until refreshed
        else:
            spark.catalog.createTable(name, path=str(table), source="parquet", schema=schemas.get(table.name))


def _naive_utc(table: pa.Table) -> pa.Table:
    """``table`` with its time-zone-aware timestamp columns as naive UTC wall clocks, as DuckDB's marts
    hold them (Spark's ``timestamp`` reaches Arrow with the session's zone; the instants are kept)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = pa.field(field.name, pa.timestamp(field.type.unit), field.nullable, field.metadata)
            table = table.set_column(index, naive, table.column(index).cast(naive.type))
    return table


def _decimals_as_doubles(frame: DataFrame) -> DataFrame:
    """``frame`` with its decimal columns as doubles: what DuckDB's pandas conversion gives (pandas
    has no decimal type; Spark's would hand over columns of ``Decimal`` objects)."""
    from pyspark.sql.types import DecimalType  # noqa: PLC0415 - pyspark: only with the spark engine

    decimals = {f.name for f in frame.schema.fields if isinstance(f.dataType, DecimalType)}
    if not decimals:
        return frame
    return frame.withColumns({name: frame[name].cast("double") for name in decimals})


def _local_session(paths: Paths) -> SparkSession:
    """The process's SparkSession, or lendguard's local one (``warehouse.spark_session``) with an
    in-memory catalog: the tables are registered from their folders, and a reading process (the
    dashboard, status) must not boot the Derby catalog a build in another process holds."""
    try:
        from warehouse.spark_session import local_session  # noqa: PLC0415 - pyspark: only with the spark engine, seconds to import
    except ImportError as exc:
        raise SettingsError("LENDGUARD_ENGINE=spark needs pyspark: install requirements-spark.lock") from exc
    return local_session(paths, config={"spark.sql.catalogImplementation": "in-memory"})


@lru_cache(maxsize=512)
def spark_sql(sql: str, database: str = SPARK_DATABASE) -> tuple[str, int]:
    """``sql`` (DuckDB dialect) in Spark SQL, its tables qualified with ``database``, its ``?`` and
    ``$n`` parameters as the named markers ``:p1``, ``:p2``...; and how many parameters it takes."""
    from sqlglot import exp, parse_one  # noqa: PLC0415 - sqlglot: about 0.4 s, only with the spark engine

    tree = parse_one(_numbered(sql), read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    numbers: set[int] = set()

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            numbers.add(int(node.this))
            return exp.Placeholder(this=f"p{node.this}")
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name not in ctes:
            node.set("db", exp.to_identifier(database))
        return node

    text = tree.transform(rewrite).sql(dialect="spark")
    return text, max(numbers, default=0)


def _numbered(sql: str) -> str:
    """``sql`` with its positional ``?`` parameters written ``$1``, ``$2``... in the order they appear."""
    from sqlglot import TokenType  # noqa: PLC0415 - as in spark_sql
    from sqlglot.dialects.duckdb import DuckDB  # noqa: PLC0415 - as above

    parts, start, number = [], 0, 0
    for token in DuckDB().tokenize(sql):
        if token.token_type == TokenType.PLACEHOLDER and token.text == "?":
            number += 1
            parts += [sql[start:token.start], f"${number}"]
            start = token.end + 1
    return "".join([*parts, sql[start:]])
