"""A dead logger shows: dbt's source freshness on the prediction log, from real landed files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from warehouse import landing
from warehouse.build import current_loan_book
from warehouse.freshness import EMPTY, prediction_log_freshness
from warehouse.importer import land_simulated
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema

pytestmark = pytest.mark.slow


def _land_request(paths: Paths, request_id: str, received_at: datetime) -> None:
    schema = prediction_log_schema(current_loan_book(paths))
    row = {"request_id": request_id, "received_at": received_at, "status_code": 200}
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, writer_id=request_id).write(
        pa.Table.from_pylist([row], schema=schema))


def test_a_log_nobody_writes_to_warns_then_errors(paths: Paths) -> None:
    land_simulated(paths, 200, seed=1)
    landing.ensure_seed(paths.landing, landing.PREDICTION_LOG, prediction_log_schema(current_loan_book(paths)))
    assert prediction_log_freshness(paths).status == EMPTY, "a log with no row yet is not a dead logger"

    now = datetime.now(UTC).replace(tzinfo=None)  # the log's timestamps are naive UTC
    _land_request(paths, "dead-since-yesterday", now - timedelta(hours=30))
    dead = prediction_log_freshness(paths)
    assert (dead.status, dead.stale) == ("error", True)
    assert dead.age_seconds is not None
    assert 29 * 3600 < dead.age_seconds < 31 * 3600
    assert "error after 24 hour" in dead.line()

    _land_request(paths, "quiet-for-two-hours", now - timedelta(hours=2))
    assert prediction_log_freshness(paths).status == "warn"

    _land_request(paths, "just-now", now)
    live = prediction_log_freshness(paths)
    assert (live.status, live.stale) == ("pass", False)
