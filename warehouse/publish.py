"""The read-only snapshot readers open, so no reader ever blocks a build.

DuckDB lets no process read a file while another writes it. After each successful build the
warehouse is checkpointed, copied next to the published snapshot under a temporary name, and
renamed over it: readers that already opened the old snapshot keep reading it (POSIX keeps the
unlinked file alive), new readers get the new one.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse.errors import LendguardError
from warehouse.landing import TMP_SUFFIX, fsync_dir
from warehouse.paths import Paths


class SnapshotMissingError(LendguardError):
    """No build has been published yet."""


def publish(paths: Paths) -> Path:
    """Copy the warehouse (after a checkpoint) to the published snapshot, atomically."""
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("checkpoint")
    paths.snapshot.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.snapshot.with_name(f".{paths.snapshot.name}{TMP_SUFFIX}")
    shutil.copyfile(paths.warehouse, tmp)
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    tmp.replace(paths.snapshot)
    fsync_dir(paths.snapshot.parent)
    return paths.snapshot


def connect_snapshot(paths: Paths) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published snapshot."""
    if not paths.snapshot.exists():
        raise SnapshotMissingError(
            f"no published warehouse at {paths.snapshot}: run `lendguard build` first"
        )
    return duckdb.connect(str(paths.snapshot), read_only=True)


def snapshot_age_seconds(paths: Paths) -> float | None:
    """Seconds since the snapshot was published, or None if there is none."""
    if not paths.snapshot.exists():
        return None
    modified = datetime.fromtimestamp(paths.snapshot.stat().st_mtime, UTC)
    return (datetime.now(UTC) - modified).total_seconds()
