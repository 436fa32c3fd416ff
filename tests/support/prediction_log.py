"""Reading the prediction log that the API lands, as the tests check it (independently of dbt)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from warehouse.landing import PREDICTION_LOG
from warehouse.paths import Paths


def landed_rows(landing: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every prediction-log row landed in ``landing`` (``columns`` of it, or all), duplicates kept (a
    duplicate is a bug tests look for); temporary files are not part of the log."""
    files = sorted((landing / PREDICTION_LOG).glob("*.parquet"))
    return [row for path in files for row in pq.read_table(path, columns=columns).to_pylist()]


def landed_request_ids(landing: Path) -> collections.Counter[str]:
    """Every request id landed in ``landing``, counted."""
    return collections.Counter(row["request_id"] for row in landed_rows(landing, ["request_id"]))


def all_log_rows(paths: Paths) -> list[dict[str, Any]]:
    """Every prediction-log row in the deployment's landing zone, duplicates kept."""
    return landed_rows(paths.landing)


def log_rows(paths: Paths) -> dict[str, dict[str, Any]]:
    """Every prediction-log row in the landing zone, by request id."""
    return {row["request_id"]: row for row in all_log_rows(paths)}
