"""The read-only snapshot readers open, so no reader ever blocks a build.

DuckDB lets no process read a file while another writes it. After each successful build the
warehouse is checkpointed, copied next to the published snapshot under a temporary name, and
renamed over it: readers that already opened the old snapshot keep reading it (POSIX keeps the
unlinked file alive), new readers get the new one.

The snapshot is self-contained: it holds tables and views over them, never a view that reads a
file by path (the warehouse's views over the landing zone would break in a copied snapshot, and
show what has landed since, not what was built). Such views are dropped from the copy before it is
published; what readers need from the landing zone is materialised by dbt (the staging tables,
``int_requests`` for the prediction log).
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse.errors import LendguardError
from warehouse.landing import TMP_SUFFIX, fsync_dir
from warehouse.paths import SPARK_SCHEMA, Paths

log = logging.getLogger(__name__)


class SnapshotMissingError(LendguardError):
    """No build has been published yet."""


def publish(paths: Paths) -> Path:
    """Copy the warehouse (after a checkpoint) to the published snapshot, atomically.

    On Spark there is nothing to copy: readers read the tables dbt-spark wrote
    (``warehouse.marts.SparkMartReader``), with the schemas written beside them
    (``warehouse.spark_session.publish_tables``); their folder's modification time becomes the
    build's, so the snapshot's age means the same on both engines.
    """
    if paths.engine.engine == "spark":
        if not paths.spark_tables.is_dir():
            raise SnapshotMissingError(f"the Spark build wrote no tables under {paths.spark_tables}")
        from warehouse.spark_session import publish_tables  # noqa: PLC0415 - pyspark: only with the spark engine

        return publish_tables(paths, SPARK_SCHEMA)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("checkpoint")
    paths.snapshot.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.snapshot.with_name(f".{paths.snapshot.name}{TMP_SUFFIX}")
    shutil.copyfile(paths.warehouse, tmp)
    drop_file_views(tmp)
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    tmp.replace(paths.snapshot)
    fsync_dir(paths.snapshot.parent)
    return paths.snapshot


def file_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The views of ``con`` that read files, as quoted names; ``con`` must have external access off
    (binding such a view then fails with a permission error, whatever table function it calls)."""
    found = []
    for schema, view in con.execute(
        "select schema_name, view_name from duckdb_views() where not internal order by 1, 2"
    ).fetchall():
        name = f'"{schema.replace(chr(34), chr(34) * 2)}"."{view.replace(chr(34), chr(34) * 2)}"'
        try:
            con.execute(f"select * from {name} limit 0")
        except duckdb.PermissionException:
            found.append(name)
        except duckdb.Error as exc:  # published anyway: the build succeeded, and the view is a reader's problem
            log.warning("view %s does not bind in a plain DuckDB connection: %s", name, exc)
    return found


def drop_file_views(database: Path) -> list[str]:
    """Drop from ``database`` (a copy about to be published) every view that reads files; their names."""
    with duckdb.connect(str(database), config={"enable_external_access": False}) as con:
        dropped = file_views(con)
        for name in dropped:
            con.execute(f"drop view {name}")
        con.execute("checkpoint")
    if dropped:
        log.debug("not published (views over files): %s", ", ".join(dropped))
    return dropped


def connect_snapshot(paths: Paths) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published snapshot."""
    if not paths.snapshot.exists():
        raise SnapshotMissingError(
            f"no published warehouse at {paths.snapshot}: run `lendguard build` first"
        )
    return duckdb.connect(str(paths.snapshot), read_only=True)


def snapshot_age_seconds(paths: Paths) -> float | None:
    """Seconds since the snapshot (on Spark: the tables) was published, or None if there is none."""
    if not paths.published.exists():
        return None
    modified = datetime.fromtimestamp(paths.published.stat().st_mtime, UTC)
    return (datetime.now(UTC) - modified).total_seconds()
