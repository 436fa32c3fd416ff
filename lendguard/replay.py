"""Replaying simulated production traffic against a running scoring API.

Each application carries its own timestamp (``occurred_at``), so weeks of simulated traffic pass
through in minutes and still fill many monitoring windows.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.loan_book import LoanBookSchema

SCORE_PATH = "/v1/score"


@dataclass(frozen=True)
class ReplayResult:
    """What a replay sent and what came back."""

    scenario: str
    sent: int
    status_counts: dict[int, int]
    decisions: dict[str, int]
    seconds: float
    latency_ms_p50: float
    latency_ms_p99: float
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.status_counts.get(200, 0)


def ending_at(traffic: pa.Table, end: datetime) -> pa.Table:
    """``traffic`` with every ``occurred_at`` moved by one amount so that the last is ``end``.

    The simulator dates its timeline from a fixed day; the API refuses an ``occurred_at`` before
    its horizon (the serving version's registration less an allowance, ``api.body_checks``), so a
    replay sends the same spacing ending at the moment it starts: weeks back at most, as in life."""
    stamps = traffic.column("occurred_at")
    last = pc.max(stamps).as_py()
    if last is None:
        return traffic
    shift = pa.scalar(end - last, type=pa.duration("us"))
    return traffic.set_column(traffic.column_names.index("occurred_at"), "occurred_at", pc.add(stamps, shift))


def application_bodies(applications: pa.Table, loan_book: LoanBookSchema) -> list[dict[str, Any]]:
    """Request bodies: the contract's inputs and group, ``loan_id`` as the application id, and the
    application's own timestamp when the table has ``occurred_at``.

    Integer inputs are sent as JSON integers (the warehouse stores every number as a double).
    """
    columns = [*loan_book.group_columns, *loan_book.input_names]
    integers = [f.name for f in loan_book.numeric_features if f.integer]
    rows: list[dict[str, Any]] = applications.select(columns).to_pylist()  # pyarrow has no type information
    ids = applications.column("loan_id").to_pylist()
    stamps = (applications.column("occurred_at").to_pylist() if "occurred_at" in applications.column_names
              else [None] * len(rows))
    for row, application_id, occurred_at in zip(rows, ids, stamps, strict=True):
        for name in integers:
            if row[name] is not None:
                row[name] = int(row[name])
        row["application_id"] = str(application_id)
        if occurred_at is not None:
            row["occurred_at"] = occurred_at.isoformat() if isinstance(occurred_at, datetime) else occurred_at
    return rows


async def _send_all(
    base_url: str, bodies: list[dict[str, Any]], concurrency: int, on_done: Callable[[], None] | None,
    collect: dict[str, dict[str, Any]] | None,
) -> tuple[list[int], list[float], Counter[str], list[str]]:
    statuses: list[int] = []
    latencies: list[float] = []
    decisions: Counter[str] = Counter()
    failures: list[str] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                try:
                    response = await client.post(SCORE_PATH, json=body)
                except httpx.HTTPError as exc:
                    failures.append(f"{body.get('application_id')}: {exc!r}")
                    statuses.append(0)
                else:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        answer = response.json()
                        decisions[answer["decision"]] += 1
                        if collect is not None:
                            collect[str(body.get("application_id"))] = answer
                    elif len(failures) < 20:
                        failures.append(f"{body.get('application_id')}: {response.status_code} {response.text[:300]}")
                latencies.append((time.perf_counter() - started) * 1000)
                if on_done is not None:
                    on_done()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, latencies, decisions, failures


def replay(
    base_url: str,
    scenario: str,
    bodies: list[dict[str, Any]],
    *,
    concurrency: int = 16,
    on_done: Callable[[], None] | None = None,
    collect: dict[str, dict[str, Any]] | None = None,
) -> ReplayResult:
    """POST every body to ``base_url``; return counts and client-side latency.

    ``collect``, when given, receives every 200 answer keyed by the body's ``application_id``.
    """
    started = time.perf_counter()
    statuses, latencies, decisions, failures = asyncio.run(
        _send_all(base_url, bodies, concurrency, on_done, collect)
    )
    seconds = time.perf_counter() - started
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return ReplayResult(
        scenario=scenario,
        sent=len(bodies),
        status_counts=dict(Counter(statuses)),
        decisions=dict(decisions),
        seconds=seconds,
        latency_ms_p50=float(np.percentile(lat, 50)),
        latency_ms_p99=float(np.percentile(lat, 99)),
        failures=failures,
    )
