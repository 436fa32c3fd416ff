"""The landing zone: immutable Parquet files that every producer except dbt writes.

DuckDB allows one writer per database file, so the API, the ml stages, the simulator and outcome
feeds never open the warehouse. They land Parquet here and dbt reads it through a glob. Each file
is written under a temporary name that the glob cannot match, flushed to disk, then renamed into
place, so a reader sees a whole file or none. Each writer process has its own file prefix, so many
API replicas (or object-storage writers) never collide.

Loan books are landed as *snapshots*: a directory ``snapshot_id=<id>/`` renamed into place whole,
so a new loan book replaces the old one atomically while the old one stays for lineage.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LOANS = "loans"
PREDICTION_LOG = "prediction_log"
SNAPSHOT_SCHEMA_FILE = "_loan_book.yml"
TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_parquet(
    table: pa.Table, final_path: Path, *, durable: bool = True, compression: str = "zstd"
) -> Path:
    """Write ``table`` to ``final_path`` so that readers see all of it or nothing."""
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = final_path.with_name(f".{final_path.name}{TMP_SUFFIX}")
    with tmp.open("wb") as handle:
        pq.write_table(table, handle, compression=compression)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    tmp.replace(final_path)
    if durable:
        fsync_dir(final_path.parent)
    return final_path


def default_writer_id() -> str:
    """A prefix unique to this process: host, pid and start time (a configured one is passed in instead)."""
    host = socket.gethostname().split(".")[0].replace("-", "")[:20] or "host"
    return f"{host}-{os.getpid()}-{int(time.time() * 1000)}"


class LandingWriter:
    """Appends immutable files to one dataset, under this writer's own prefix. Thread-safe.

    Names are ``<writer id>-<run>-<sequence>.parquet``: the run token (start time and a random
    part) keeps a restarted replica with a fixed ``LENDGUARD_WRITER_ID`` from replacing the files
    its previous run landed (the rename would silently overwrite them).
    """

    def __init__(self, root: Path, dataset: str, writer_id: str | None = None, *, compression: str = "zstd") -> None:
        self.directory = root / dataset
        self.compression = compression
        self.writer_id = writer_id or default_writer_id()
        self.run = f"{int(time.time() * 1000):011x}{uuid.uuid4().hex[:4]}"
        self._sequence = itertools.count()
        self._lock = threading.Lock()

    def write(self, table: pa.Table, *, durable: bool = True) -> Path:
        with self._lock:
            seq = next(self._sequence)
        name = f"{self.writer_id}-{self.run}-{seq:09d}.parquet"
        return atomic_write_parquet(table, self.directory / name, durable=durable, compression=self.compression)


def new_snapshot_id() -> str:
    """Sortable by time, unique across processes."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


def write_snapshot(
    root: Path, dataset: str, write_parts: Callable[[Path], None], sidecar: dict[str, str]
) -> str:
    """Land a whole dataset version as one directory, renamed into place when complete.

    ``write_parts`` writes the Parquet files into the (hidden) directory it is given; ``sidecar``
    maps file names to text written beside them (the loan-book contract). If anything fails, the
    temporary directory is removed and nothing becomes visible.
    """
    snapshot_id = new_snapshot_id()
    base = root / dataset
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".snapshot_id={snapshot_id}{TMP_SUFFIX}"
    tmp.mkdir()
    try:
        write_parts(tmp)
        for name, text in sidecar.items():
            (tmp / name).write_text(text)
        for part in tmp.iterdir():
            with part.open("rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(tmp)
        tmp.rename(base / f"snapshot_id={snapshot_id}")
        fsync_dir(base)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return snapshot_id


def write_table_parts(parts: Iterable[pa.Table]) -> Callable[[Path], None]:
    """A ``write_parts`` for :func:`write_snapshot` from a stream of tables (bounded memory)."""

    def write(directory: Path) -> None:
        for index, part in enumerate(parts):
            atomic_write_parquet(part, directory / f"part-{index:05d}.parquet", durable=False)

    return write


def latest_snapshot(root: Path, dataset: str) -> Path | None:
    """The newest complete snapshot directory of ``dataset``, if any."""
    snapshots = sorted((root / dataset).glob("snapshot_id=*"))
    return snapshots[-1] if snapshots else None


def ensure_seed(root: Path, dataset: str, schema: pa.Schema) -> Path:
    """Land a zero-row file carrying ``schema`` so dbt's glob source exists before any data does.

    The name carries a hash of the schema: a new loan-book contract adds a new seed, and
    ``union_by_name`` lets older files sit beside it.
    """
    digest = hashlib.sha256(schema.to_string().encode()).hexdigest()[:12]
    path = root / dataset / f"0000-seed-{digest}.parquet"
    if not path.exists():
        atomic_write_parquet(schema.empty_table(), path)
    return path


@dataclass(frozen=True)
class DatasetCounts:
    """What a dataset holds, read from Parquet footers only (cheap)."""

    dataset: str
    files: int
    rows: int
    bytes: int


def dataset_counts(root: Path, dataset: str) -> DatasetCounts:
    files = [p for p in (root / dataset).rglob("*.parquet") if not p.name.startswith(".")]
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    return DatasetCounts(dataset, len(files), rows, sum(p.stat().st_size for p in files))
