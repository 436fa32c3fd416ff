"""Group commit: every row lands exactly once, durably, before its request is answered."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from api.log_writer import (
    LOG_NOTE_COLUMN,
    TEXT_MAX_CHARS,
    LogWriteError,
    LogWriterClosedError,
    PredictionLogWriter,
)
from warehouse.landing import PREDICTION_LOG, LandingWriter
from warehouse.loan_book import simulated_schema
from warehouse.prediction_log import prediction_log_schema

SCHEMA = prediction_log_schema(simulated_schema())


def row(request_id: str, **values: Any) -> dict[str, Any]:
    return {"request_id": request_id, "received_at": datetime(2026, 1, 5, 8), "status_code": 200, **values}


def writer_for(root: Path, landing: LandingWriter | None = None, **options: Any) -> PredictionLogWriter:
    return PredictionLogWriter(landing or LandingWriter(root, PREDICTION_LOG, "test"), SCHEMA, **options)


def files(root: Path) -> list[Path]:
    return sorted((root / PREDICTION_LOG).glob("*.parquet"))


def on_disk(root: Path) -> pa.Table:
    parts = [pq.read_table(p) for p in files(root)]
    return pa.concat_tables(parts) if parts else SCHEMA.empty_table()


class RecordingLanding(LandingWriter):
    """The real landing writer, noting whether each file was asked to be durable."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.durable: list[bool] = []

    def write(self, table: pa.Table, *, durable: bool = True) -> Path:
        path = super().write(table, durable=durable)
        self.durable.append(durable)
        return path


class FailingLanding(LandingWriter):
    """A landing zone whose disk is full."""

    def write(self, table: pa.Table, *, durable: bool = True) -> Path:  # noqa: ARG002 - same signature
        raise OSError(28, "No space left on device")


def test_concurrent_rows_land_once_each_grouped_and_durable_before_return(tmp_path: Path) -> None:
    n = 120
    seen_on_return: list[bool] = []

    landing = RecordingLanding(tmp_path, PREDICTION_LOG, "test")

    async def main() -> PredictionLogWriter:
        writer = writer_for(tmp_path, landing, max_batch=50, max_wait_ms=5)
        await writer.start()

        async def one(i: int) -> None:
            await writer.append(row(f"r{i:04d}", probability=i / n), started=time.perf_counter())
            # Returned: the row must already be in a renamed, complete file.
            seen_on_return.append(f"r{i:04d}" in on_disk(tmp_path).column("request_id").to_pylist())

        await asyncio.gather(*(one(i) for i in range(n)))
        await writer.stop()
        return writer

    writer = asyncio.run(main())
    table = on_disk(tmp_path)
    assert sorted(table.column("request_id").to_pylist()) == [f"r{i:04d}" for i in range(n)]
    assert all(seen_on_return)
    assert landing.durable == [True] * len(files(tmp_path)), "fsync + rename for every file"
    assert 1 < len(files(tmp_path)) < n, "grouped, and no group above max_batch"
    assert max(pq.ParquetFile(p).metadata.num_rows for p in files(tmp_path)) <= 50
    assert (writer.rows_written, writer.files_written) == (n, len(files(tmp_path)))
    assert table.schema.equals(SCHEMA)
    assert table.column("annual_income").null_count == n, "missing columns are written as null"
    assert min(table.column("latency_ms").to_pylist()) >= 0
    assert not list((tmp_path / PREDICTION_LOG).glob(".*")), "no temporary files left behind"


def test_a_failed_write_fails_every_waiter_and_the_writer_carries_on(tmp_path: Path) -> None:
    landing = FailingLanding(tmp_path, PREDICTION_LOG, "test")

    async def main() -> list[BaseException | None]:
        writer = writer_for(tmp_path, landing, max_wait_ms=5)
        await writer.start()
        outcomes = await asyncio.gather(*(writer.append(row(f"r{i}")) for i in range(10)), return_exceptions=True)
        writer.landing = LandingWriter(tmp_path, PREDICTION_LOG, "test")  # the disk is freed
        await writer.append(row("after"))
        await writer.stop()
        return outcomes

    outcomes = asyncio.run(main())
    assert all(isinstance(o, LogWriteError) for o in outcomes)
    assert "No space left on device" in str(outcomes[0])
    assert on_disk(tmp_path).column("request_id").to_pylist() == ["after"]


def test_a_row_that_does_not_convert_fails_alone(tmp_path: Path) -> None:
    async def main() -> list[BaseException | None]:
        writer = writer_for(tmp_path, max_wait_ms=20)
        await writer.start()
        rows = [row("good1"), row("bad", probability="high"), row("good2")]
        outcomes = await asyncio.gather(*(writer.append(r) for r in rows), return_exceptions=True)
        await writer.stop()
        return outcomes

    good1, bad, good2 = asyncio.run(main())
    assert good1 is None
    assert good2 is None
    assert isinstance(bad, LogWriteError)
    assert sorted(on_disk(tmp_path).column("request_id").to_pylist()) == ["good1", "good2"]


def test_stop_flushes_what_is_pending_without_waiting_out_the_window(tmp_path: Path) -> None:
    """The window is an hour, the deadline two minutes: only a stop that flushes at once meets it
    (a stop that waited out the window fails here however fast or slow the machine is)."""
    async def main() -> None:
        writer = writer_for(tmp_path, max_wait_ms=3_600_000)
        await writer.start()
        tasks = [asyncio.create_task(writer.append(row(f"r{i}"))) for i in range(5)]
        await asyncio.sleep(0)
        await asyncio.wait_for(writer.stop(), timeout=120)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)

    asyncio.run(main())
    assert on_disk(tmp_path).num_rows == 5


def test_rows_are_refused_when_stopped_or_off_schema(tmp_path: Path) -> None:
    async def main() -> None:
        writer = writer_for(tmp_path)
        with pytest.raises(LogWriterClosedError):
            await writer.append(row("early"))
        await writer.start()
        with pytest.raises(ValueError, match="not in the prediction-log schema"):
            await writer.append(row("x", surprise=1))
        with pytest.raises(ValueError, match="request_id"):
            await writer.append({"received_at": datetime(2026, 1, 5), "status_code": 200})
        await writer.stop()
        with pytest.raises(LogWriterClosedError):
            await writer.append(row("late"))

    asyncio.run(main())
    assert files(tmp_path) == []


def test_text_that_cannot_be_stored_as_given_is_stored_escaped_and_the_row_says_so(tmp_path: Path) -> None:
    """Issue 13: a lone surrogate made the whole row fail to encode and it was dropped."""
    huge = "y" * (TEXT_MAX_CHARS + 10)

    async def main() -> None:
        writer = writer_for(tmp_path)
        await writer.start()
        await writer.append(row("surrogate", status_code=400, application_id="a\ud800b"))
        await writer.append(row("nul", status_code=400, application_id="a\x00b", error="bad\x00"))
        await writer.append(row("huge", status_code=400, raw_body=huge))
        await writer.append(row("bytes", status_code=400, raw_body=b"\xff{"))
        await writer.append(row("plain", application_id="é-1"))
        await writer.stop()

    asyncio.run(main())
    rows = {r["request_id"]: r for r in on_disk(tmp_path).to_pylist()}
    assert rows["surrogate"]["application_id"] == "a\\ud800b"
    assert rows["surrogate"][LOG_NOTE_COLUMN] == "application_id: escaped (lone surrogate)"
    assert (rows["nul"]["application_id"], rows["nul"]["error"]) == ("a\\x00b", "bad\\x00")
    assert rows["nul"][LOG_NOTE_COLUMN] == "application_id: escaped (NUL); error: escaped (NUL)"
    assert rows["huge"]["raw_body"] == huge[:TEXT_MAX_CHARS]
    assert rows["huge"][LOG_NOTE_COLUMN] == f"raw_body: truncated ({TEXT_MAX_CHARS + 10} characters)"
    assert rows["bytes"]["raw_body"] == "\\xff{"
    assert rows["bytes"][LOG_NOTE_COLUMN] == "raw_body: escaped (invalid UTF-8)"
    assert rows["plain"]["application_id"] == "é-1"
    assert rows["plain"][LOG_NOTE_COLUMN] is None
