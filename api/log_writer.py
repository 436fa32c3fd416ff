"""The durable prediction log: group commit of request rows into the landing zone.

A decision must not be given unless its log row is on disk, yet one fsync per request would cap
the API at the disk's sync rate and bury dbt under tiny files. So rows are committed in groups
(a :class:`~api.batching.MicroBatcher`): each request hands its row over and waits; one
background task takes everything pending, writes one Parquet file in a worker thread (temporary
name, fsync, rename, fsync of the directory, via ``LandingWriter``) and only then wakes every
request of the group. If the write fails, all of them get a ``LogWriteError``.

A row is never dropped for its content: text Parquet cannot hold as given (a lone surrogate,
undecodable bytes) or that would break readers (NUL) is stored escaped (``\\ud800``, ``\\xff``,
``\\x00``), text beyond :data:`TEXT_MAX_CHARS` is truncated, and ``log_note`` says which columns
were changed and how.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from api.batching import BatcherClosedError, MicroBatcher
from warehouse.landing import LandingWriter

log = logging.getLogger(__name__)

LATENCY_COLUMN = "latency_ms"
LOG_NOTE_COLUMN = "log_note"
TEXT_MAX_CHARS = 65_536
"""Longest text stored in a log cell; validated inputs are far shorter, a raw body is cut at 16 KiB."""
_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)

_Entry = tuple[dict[str, Any], float | None]
"""A row and the ``time.perf_counter()`` reading its latency counts from (None: no latency)."""


class LogWriteError(RuntimeError):
    """The row could not be made durable (the decision must not be given)."""


class LogWriterClosedError(LogWriteError):
    """A row was appended to a writer that is not running."""


class PredictionLogWriter:
    """Appends rows conforming to ``schema`` to ``landing``, one Parquet file per group.

    ``append`` returns only once the row's file is fsynced and renamed into place. One instance
    per event loop; start it before the first append and stop it to flush what is pending.
    """

    def __init__(
        self, landing: LandingWriter, schema: pa.Schema, *, max_batch: int = 512, max_wait_ms: float = 2.0
    ) -> None:
        self.landing = landing
        self.schema = schema
        self._columns = frozenset(schema.names)
        self._required = tuple(f.name for f in schema if not f.nullable)
        self._batcher: MicroBatcher[_Entry, None] = MicroBatcher(
            self._write, max_batch=max_batch, max_wait_ms=max_wait_ms, name="prediction-log-writer"
        )
        self.files_written = 0
        self.rows_written = 0
        self.on_durable: list[Callable[[Mapping[str, Any]], None]] = []
        """Called with each row once it is durable, on the event loop (``api.metrics`` counts there)."""

    @classmethod
    def for_landing(
        cls, root: Path, dataset: str, schema: pa.Schema, *, writer_id: str | None = None,
        max_batch: int = 512, max_wait_ms: float = 2.0,
    ) -> PredictionLogWriter:
        # Snappy, not the landing zone's usual zstd: zstd costs about 0.7 ms more per file whatever
        # its size, on every group commit's critical path; compaction rewrites these files in zstd.
        landing = LandingWriter(root, dataset, writer_id, compression="snappy")
        return cls(landing, schema, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @property
    def running(self) -> bool:
        return self._batcher.running

    @property
    def pending(self) -> int:
        """Rows handed over and not yet durable (waiting for, or in, a group write)."""
        return self._batcher.pending

    async def start(self) -> None:
        await self._batcher.start()

    async def stop(self) -> None:
        """Refuse new rows, write every pending one, then end the background task."""
        if not self.running:
            return
        await self._batcher.stop()
        log.info("prediction log closed: %d rows in %d files", self.rows_written, self.files_written)

    async def append(self, row: Mapping[str, Any], *, started: float | None = None) -> None:
        """Queue ``row`` and wait until it is durable.

        Missing columns are written as null. ``started`` (a ``time.perf_counter()`` reading)
        makes the writer fill ``latency_ms`` just before the group is written: receipt to log
        write, the closest a row can say about itself. Raises ``LogWriteError`` if the row could
        not be made durable, ``ValueError`` if it names columns the schema does not have.
        """
        unknown = set(row).difference(self._columns)
        if unknown:
            raise ValueError(f"log row has column(s) not in the prediction-log schema: {sorted(unknown)}")
        missing = [name for name in self._required if row.get(name) is None]
        if missing:
            raise ValueError(f"log row lacks required column(s) {missing}")
        try:
            await self._batcher.submit((dict(row), started))
        except BatcherClosedError as exc:
            raise LogWriterClosedError("the prediction log writer is not running") from exc
        except LogWriteError:
            raise
        except Exception as exc:
            raise LogWriteError(f"prediction log write failed: {type(exc).__name__}: {exc}") from exc
        for listener in self.on_durable:
            listener(row)

    def _write(self, entries: list[_Entry]) -> list[BaseException | None]:
        """Runs in a worker thread: Arrow conversion, Parquet, fsync, rename.

        A row whose values do not convert (a bug upstream) must not cost the rest of its group
        their decisions, so on a conversion error rows are converted one by one and only the
        misfits fail.
        """
        now = time.perf_counter()
        rows = []
        for row, started in entries:
            if started is not None:
                row[LATENCY_COLUMN] = (now - started) * 1000.0
            rows.append(storable(row, noted=LOG_NOTE_COLUMN in self._columns))
        results: list[BaseException | None] = [None] * len(rows)
        try:
            table = pa.Table.from_pylist(rows, schema=self.schema)
        except _CONVERSION_ERRORS:
            for index, row in enumerate(rows):
                try:
                    pa.Table.from_pylist([row], schema=self.schema)
                except _CONVERSION_ERRORS as exc:
                    results[index] = LogWriteError(f"log row does not fit the schema: {type(exc).__name__}: {exc}")
            table = pa.Table.from_pylist([r for r, e in zip(rows, results, strict=True) if e is None], self.schema)
        if table.num_rows:
            self.landing.write(table, durable=True)
            self.files_written += 1
            self.rows_written += table.num_rows
        return results


def storable(row: dict[str, Any], *, noted: bool = True) -> dict[str, Any]:
    """``row`` with every text value Parquet (and DuckDB after it) can store, noted in ``log_note``."""
    notes = []
    for column, value in row.items():
        if isinstance(value, bytes):
            text, note = storable_text(value.decode("utf-8", errors="backslashreplace"))
            row[column] = text
            notes.append(f"{column}: {', '.join(filter(None, ['escaped (invalid UTF-8)', note]))}")
        elif isinstance(value, str) and column != LOG_NOTE_COLUMN:
            text, note = storable_text(value)
            if note is not None:
                row[column] = text
                notes.append(f"{column}: {note}")
    if notes and noted:
        row[LOG_NOTE_COLUMN] = "; ".join(filter(None, [row.get(LOG_NOTE_COLUMN), *notes]))
    return row


def storable_text(text: str) -> tuple[str, str | None]:
    """``text`` escaped and cut as needed, and a note saying what was done (None: stored as given)."""
    notes = []
    if len(text) > TEXT_MAX_CHARS:
        notes.append(f"truncated ({len(text)} characters)")
        text = text[:TEXT_MAX_CHARS]
    if "\x00" in text:
        notes.append("escaped (NUL)")
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            notes.append("escaped (lone surrogate)")
            text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text, ", ".join(notes) or None
