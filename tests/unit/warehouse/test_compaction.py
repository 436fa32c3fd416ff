"""Prediction-log compaction loses and repeats nothing: with a writer landing files meanwhile, when
interrupted between its steps, and when killed (SIGKILL) at random moments."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse import compaction, landing
from warehouse.compaction import compact

DATASET = "prediction_log"


def _table(start: int, rows: int) -> pa.Table:
    return pa.table({
        "request_id": [f"r{start + i:08d}" for i in range(rows)],
        "status_code": pa.array([200] * rows, pa.int32()),
        "probability": [((start + i) % 97) / 97 for i in range(rows)],
    })


def rows_on_disk(directory: Path) -> collections.Counter[tuple[str, int, float]]:
    """Every row of every final file, duplicates counted."""
    found: collections.Counter[tuple[str, int, float]] = collections.Counter()
    for path in directory.glob("*.parquet"):
        table = pq.read_table(path)
        found.update(zip(*(table[c].to_pylist() for c in ("request_id", "status_code", "probability")), strict=True))
    return found


def deduplicated(directory: Path) -> collections.Counter[tuple[str, int, float]]:
    """What the staging model reads: one row per request id."""
    sql = f"""
        select request_id, status_code, probability from (
            select *, row_number() over (partition by request_id) as n
            from read_parquet('{directory}/*.parquet', union_by_name = true)
        ) where n = 1"""
    return collections.Counter(duckdb.sql(sql).fetchall())


def expected(rows: int) -> collections.Counter[tuple[str, int, float]]:
    table = _table(0, rows)
    return collections.Counter(zip(*(table[c].to_pylist() for c in ("request_id", "status_code", "probability")),
                                   strict=True))


def land(root: Path, files: int, rows: int = 7, start: int = 0, writer_id: str = "api") -> int:
    writer = landing.LandingWriter(root, DATASET, writer_id=writer_id)
    for i in range(files):
        writer.write(_table(start + i * rows, rows), durable=False)
    return start + files * rows


def test_small_closed_files_become_one_and_the_rows_stay(tmp_path: Path) -> None:
    landing.ensure_seed(tmp_path, DATASET, _table(0, 0).schema)
    total = land(tmp_path, 40)
    directory = tmp_path / DATASET
    result = compact(directory, min_age_seconds=0)
    assert (result.merged_files, result.source_files, result.rows, result.duplicates_dropped) == (1, 40, total, 0)
    names = sorted(p.name for p in directory.glob("*.parquet"))
    assert len(names) == 2
    assert names[0].startswith(compaction.SEED_PREFIX), "the seed (schema carrier) is kept"
    assert rows_on_disk(directory) == expected(total)
    assert compact(directory, min_age_seconds=0).merged_files == 0, "nothing more to do"


def test_recent_files_temporary_files_and_large_files_are_left_alone(tmp_path: Path) -> None:
    land(tmp_path, 5)
    directory = tmp_path / DATASET
    (directory / ".api-x-000000009.parquet.tmp").write_bytes(b"half written")
    assert compact(directory, min_age_seconds=3600).merged_files == 0, "too recent"
    assert compact(directory, min_age_seconds=0, small_bytes=10).merged_files == 0, "not small"
    assert compact(directory, min_age_seconds=0).merged_files == 1
    assert (directory / ".api-x-000000009.parquet.tmp").exists(), "another writer's temporary file is not touched"
    old = time.time() - 7200
    os.utime(directory / ".api-x-000000009.parquet.tmp", (old, old))
    assert compact(directory, min_age_seconds=0).stale_temporaries == 1, "one left by a killed writer is removed"
    assert not (directory / ".api-x-000000009.parquet.tmp").exists()


def test_files_of_different_schemas_are_merged_separately(tmp_path: Path) -> None:
    land(tmp_path, 3)
    writer = landing.LandingWriter(tmp_path, DATASET, writer_id="other-contract")
    for i in range(3):
        writer.write(_table(1000 + i * 5, 5).append_column("purpose", pa.array(["car"] * 5)))
    directory = tmp_path / DATASET
    assert compact(directory, min_age_seconds=0).merged_files == 2
    assert sum(rows_on_disk(directory).values()) == 3 * 7 + 3 * 5


@pytest.mark.parametrize("deleted_before_crash", [0, 1, 17])
def test_a_crash_between_writing_and_deleting_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deleted_before_crash: int
) -> None:
    total = land(tmp_path, 30)
    directory = tmp_path / DATASET
    deletions = 0
    real_unlink = Path.unlink

    def crashing_unlink(self: Path, missing_ok: bool = False) -> None:
        nonlocal deletions
        if deletions == deleted_before_crash:
            raise KeyboardInterrupt("killed")  # not an Exception: nothing may catch it
        deletions += 1
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crashing_unlink)
    with pytest.raises(KeyboardInterrupt):
        compact(directory, min_age_seconds=0)
    monkeypatch.undo()
    assert sum(rows_on_disk(directory).values()) == 2 * total - deleted_before_crash * 7, "rows now in two files"
    assert deduplicated(directory) == expected(total), "what dbt reads is unchanged meanwhile"

    land(tmp_path, 5, start=total, writer_id="api-later")  # the API kept writing
    result = compact(directory, min_age_seconds=0)
    assert result.recovered_sources == 30 - deleted_before_crash
    assert rows_on_disk(directory) == expected(total + 35), "every row exactly once"


def test_compaction_alongside_a_live_writer_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """However the scheduler interleaves the two: after every compaction run, what dbt reads holds
    every row landed before the run began and no file holds a row twice; at the end every row is on
    disk exactly once, in one file. Nothing counts how often compaction ran while the writer wrote."""
    landing.ensure_seed(tmp_path, DATASET, _table(0, 0).schema)  # as a build leaves it: dbt's glob matches
    directory = tmp_path / DATASET
    writer = landing.LandingWriter(tmp_path, DATASET, writer_id="live")
    batches, rows = 150, 3
    landed = [0]
    writer_errors: list[BaseException] = []

    def write_all() -> None:
        try:
            for _ in range(batches):
                writer.write(_table(landed[0], rows), durable=False)
                landed[0] += rows  # acknowledged: the file is in place
        except Exception as exc:  # reported by the assertion below
            writer_errors.append(exc)

    thread = threading.Thread(target=write_all)
    thread.start()
    try:
        while thread.is_alive():
            acknowledged = landed[0]
            compact(directory, min_age_seconds=0, min_files=2)
            missing = expected(acknowledged) - deduplicated(directory)
            assert not missing, f"{len(missing)} landed rows are not read after a compaction run"
            repeated = [row for row, count in rows_on_disk(directory).items() if count > 1]
            assert not repeated, f"rows in two files after a compaction run: {repeated[:3]}"
    finally:
        thread.join()
    assert writer_errors == []
    assert landed[0] == batches * rows
    compact(directory, min_age_seconds=0)
    assert rows_on_disk(directory) == expected(batches * rows), "every row exactly once"
    assert len(list(directory.glob("*.parquet"))) == 2, f"the seed, and {batches} files became one"


_COMPACT_FOREVER = """
import sys, time
from pathlib import Path
from warehouse.compaction import compact
unlink = Path.unlink
def slow_unlink(self, missing_ok=False):  # widen the window between the merged file and the deletes
    time.sleep(0.003)
    unlink(self, missing_ok=missing_ok)
Path.unlink = slow_unlink
while True:
    compact(Path(sys.argv[1]), min_age_seconds=0, min_files=2)
"""


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_repeats_a_row(tmp_path: Path) -> None:
    """A real ``kill -9`` of a compaction process, 6 times, while files keep landing."""
    directory = tmp_path / DATASET
    rng = random.Random(5)
    total = land(tmp_path, 20)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    kills = interrupted = 0
    for round_ in range(6):
        process = subprocess.Popen([sys.executable, "-c", _COMPACT_FOREVER, str(directory)], env=env)
        merged_before = set(directory.glob(f"{compaction.COMPACTED_PREFIX}*"))
        deadline = time.monotonic() + 120  # generous: a busy machine starts Python slowly
        while set(directory.glob(f"{compaction.COMPACTED_PREFIX}*")) == merged_before:  # it is at work
            assert time.monotonic() < deadline, "the compaction process never merged"
            total = land(tmp_path, 1, start=total, writer_id=f"api-{round_}")
            time.sleep(0.01)
        deadline = time.monotonic() + rng.random() * 0.3  # then kill it somewhere in a run
        while time.monotonic() < deadline:
            total = land(tmp_path, 1, start=total, writer_id=f"api-{round_}")
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        interrupted += rows_on_disk(directory) != expected(total)
        assert deduplicated(directory) == expected(total), f"after kill {kills}: what dbt reads is unchanged"
    print(f"{kills} kills, {interrupted} left a compaction half done, {total} rows")  # noqa: T201 - -s shows it
    compact(directory, min_age_seconds=0)
    assert rows_on_disk(directory) == expected(total), "after a clean run every row is there exactly once"
    assert len(list(directory.glob("*.parquet"))) <= 2
