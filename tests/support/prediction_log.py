"""Reading the prediction log that the API lands, as the tests check it (independently of dbt)."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from warehouse.landing import PREDICTION_LOG
from warehouse.paths import Paths


def all_log_rows(paths: Paths) -> list[dict[str, Any]]:
    """Every prediction-log row in the landing zone, duplicates kept (a duplicate is a bug tests look for)."""
    files = sorted((paths.landing / PREDICTION_LOG).glob("*.parquet"))
    return [row for path in files for row in pq.read_table(path).to_pylist()]


def log_rows(paths: Paths) -> dict[str, dict[str, Any]]:
    """Every prediction-log row in the landing zone, by request id."""
    return {row["request_id"]: row for row in all_log_rows(paths)}
