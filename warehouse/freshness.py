"""Is the prediction log still being written? dbt's source freshness on ``landing.prediction_log``.

A live API lands a row for every request, so a log whose newest row is old means the API, its
logger or the landing zone has stopped: monitoring built on it would report quiet windows, not a
failure. The limits (warn, error) are declared on the source in
``models/staging/_staging__sources.yml``; ``lendguard monitor`` runs this after its build and
reports the verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from warehouse.build import build_lock, current_loan_book, dbt_vars
from warehouse.dbt import DbtError, run_dbt
from warehouse.paths import Paths

SOURCE = "source:landing.prediction_log"
SOURCE_ID = "source.lendguard.landing.prediction_log"
EMPTY = "empty"
"""Status of a log with no row yet (a deployment that has served nothing is not a dead logger)."""


@dataclass(frozen=True)
class LogFreshness:
    """dbt's verdict on the prediction log: pass, warn or error (``empty`` when it holds no row)."""

    status: str
    newest_received_at: datetime | None
    age_seconds: float | None
    warn_after: str
    error_after: str

    @property
    def stale(self) -> bool:
        return self.status in {"warn", "error"}

    def line(self) -> str:
        if self.status == EMPTY:
            return "prediction log: no row landed yet"
        hours = (self.age_seconds or 0.0) / 3600  # dbt gives an age whenever the log has a row
        return (f"prediction log: newest row received {hours:.1f} h ago ({self.status}; "
                f"warn after {self.warn_after}, error after {self.error_after})")


def _limit(criteria: dict[str, dict[str, object] | None], key: str) -> str:
    limit = criteria.get(key) or {}
    return f"{limit.get('count')} {limit.get('period')}" if limit.get("count") else "never"


def prediction_log_freshness(paths: Paths) -> LogFreshness:
    """Run ``dbt source freshness`` on the prediction log; raises ``DbtError`` when dbt could not run.

    Its own target folder (a freshness run rewrites the manifest, which the build's must stay),
    under the build lock (dbt opens the warehouse file, which one process at a time may write).
    """
    target = paths.data_dir / "dbt" / "freshness"
    (target / "sources.json").unlink(missing_ok=True)  # never an earlier run's verdict
    with build_lock(paths):
        run = run_dbt(paths, ["source", "freshness", "--select", SOURCE], dbt_vars(current_loan_book(paths)),
                      target_path=target)
    try:
        results = json.loads((target / "sources.json").read_text())["results"]
        result = next(r for r in results if r["unique_id"] == SOURCE_ID)
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise DbtError(f"dbt source freshness gave no verdict on the prediction log (exit {run.returncode}):\n"
                       f"{run.output[-2000:]}") from exc
    if result.get("status") == "runtime error":
        raise DbtError(f"dbt source freshness could not read the prediction log: {result.get('message')}")
    newest = datetime.fromisoformat(result["max_loaded_at"]) if result.get("max_loaded_at") else None
    if newest is not None and newest.year == 1:  # dbt's stand-in for max() over no row
        newest = None
    criteria = result.get("criteria") or {}
    return LogFreshness(
        status=result["status"] if newest else EMPTY,
        newest_received_at=newest,
        age_seconds=result.get("max_loaded_at_time_ago_in_s") if newest else None,
        warn_after=_limit(criteria, "warn_after"),
        error_after=_limit(criteria, "error_after"),
    )
