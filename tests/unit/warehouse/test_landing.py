"""The landing zone's promise: a reader globbing *.parquet sees whole files or none."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from warehouse import landing


def _table(start: int, rows: int = 50) -> pa.Table:
    return pa.table({"request_id": [f"r{start + i}" for i in range(rows)], "value": list(range(rows))})


def test_concurrent_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    writer = landing.LandingWriter(tmp_path, "events", writer_id="w1")
    files, rows = 150, 50
    stop = threading.Event()
    reader_errors: list[Exception] = []
    observed: dict[int, list[int]] = {0: [], 1: []}

    def read_loop(reader: int) -> None:
        con = duckdb.connect()
        glob = f"{tmp_path}/events/*.parquet"
        while not stop.is_set():
            try:
                observed[reader].append(con.execute(f"select count(*) from read_parquet('{glob}')").fetchone()[0])
            except duckdb.IOException as exc:
                if "No files found" not in str(exc):
                    reader_errors.append(exc)
            except duckdb.Error as exc:
                reader_errors.append(exc)

    readers = [threading.Thread(target=read_loop, args=(i,)) for i in range(2)]
    for thread in readers:
        thread.start()
    for i in range(files):
        writer.write(_table(i * rows, rows), durable=False)
    stop.set()
    for thread in readers:
        thread.join()

    assert reader_errors == []
    for counts in observed.values():
        assert counts, "the reader ran"
        assert all(count % rows == 0 for count in counts), "a reader saw part of a file"
        assert counts == sorted(counts), "counts only grow"
    final = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/events/*.parquet')").fetchone()[0]
    assert final == files * rows
    assert not list((tmp_path / "events").glob(".*")), "no temporary file is left behind"


def test_writers_have_their_own_prefixes(tmp_path: Path) -> None:
    first = landing.LandingWriter(tmp_path, "events", writer_id="replica-a")
    second = landing.LandingWriter(tmp_path, "events", writer_id="replica-b")
    for i in range(3):
        first.write(_table(i))
        second.write(_table(100 + i))
    names = sorted(p.name for p in (tmp_path / "events").glob("*.parquet"))
    assert len(names) == 6
    assert sum(n.startswith("replica-a-") for n in names) == 3


def test_default_writer_ids_differ_between_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENDGUARD_WRITER_ID", "api-replica-3")  # the API's setting, passed in; never read here
    assert str(__import__("os").getpid()) in landing.default_writer_id()


def test_snapshot_is_invisible_until_complete(tmp_path: Path) -> None:
    def broken_parts(directory: Path) -> None:
        landing.atomic_write_parquet(_table(0), directory / "part-00000.parquet")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        landing.write_snapshot(tmp_path, landing.LOANS, broken_parts, {"_loan_book.yml": "x"})
    assert landing.latest_snapshot(tmp_path, landing.LOANS) is None
    assert list((tmp_path / landing.LOANS).iterdir()) == [], "the half-written snapshot was removed"

    first = landing.write_snapshot(tmp_path, landing.LOANS, landing.write_table_parts([_table(0)]), {})
    second = landing.write_snapshot(tmp_path, landing.LOANS, landing.write_table_parts([_table(1)]), {})
    assert first < second
    latest = landing.latest_snapshot(tmp_path, landing.LOANS)
    assert latest is not None
    assert latest.name == f"snapshot_id={second}"


def test_seed_gives_an_empty_dataset_its_schema(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("request_id", pa.string()), pa.field("probability", pa.float64())])
    path = landing.ensure_seed(tmp_path, "log", schema)
    assert landing.ensure_seed(tmp_path, "log", schema) == path, "idempotent"
    columns = duckdb.sql(f"describe select * from read_parquet('{tmp_path}/log/*.parquet')").fetchall()
    assert [c[0] for c in columns] == ["request_id", "probability"]
    assert landing.dataset_counts(tmp_path, "log").rows == 0


def test_a_restarted_writer_with_a_fixed_id_keeps_its_earlier_files(tmp_path: Path) -> None:
    before = landing.LandingWriter(tmp_path, "events", writer_id="api-replica-1")
    before.write(_table(0))
    after = landing.LandingWriter(tmp_path, "events", writer_id="api-replica-1")  # the same replica, restarted
    after.write(_table(100))
    final = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/events/*.parquet')").fetchone()[0]
    assert final == 100, "the restart's first file did not replace the previous run's first file"
