"""Incremental monitoring builds (issue #6, item 7) equal a full rebuild, row for row.

A copy of the trained deployment gets a first batch of logged predictions (some with outcomes) and
a monitoring build; then a second batch lands (later requests, a drift, and late-arriving rows whose
event time falls inside windows already built, which shifts every later count window), with
outcomes for old requests (new ones, and changed ones: the latest landed wins), and the incremental
build runs. Every monitoring mart is read, the same selection is rebuilt with ``--full-refresh``, and each
mart must hold the same rows (floating-point columns to 1e-12 relative: sums may add in another order).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tests.support.deployment import copy_deployment
from warehouse import landing
from warehouse.build import build, current_loan_book
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.publish import connect_snapshot
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

MONITOR_SELECT = ["path:models/staging", "path:models/monitoring"]
BOOKKEEPING = ("batch_at",)
"""Columns that say when a row was computed, not what it holds: they differ by construction."""
START = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def _land(paths: Paths, version: str, traffic: pa.Table, prefix: str, received: datetime,
          *, refused: bool = False) -> None:
    """``traffic`` as accepted, scored log rows (probabilities made up: drift does not read them),
    or as refused ones (422: no decision)."""
    loan_book = current_loan_book(paths)
    schema = prediction_log_schema(loan_book)
    n = traffic.num_rows
    frame = traffic.to_pandas()
    occurred = frame["occurred_at"].dt.tz_convert(None)
    probability = (frame["credit_score"].rank(pct=True) * 0.5).to_numpy()
    # One a second: a batch spans more than the lookback, so an incremental run re-reads only its tail
    # (rows outside it change only by renumbering or by an outcome landing).
    received_at = [received.replace(tzinfo=None) + timedelta(seconds=i) for i in range(n)]
    columns = {
        "request_id": [f"{prefix}-{i:06d}" for i in range(n)],
        "received_at": received_at,
        "occurred_at": occurred,
        "status_code": [422 if refused else 200] * n,
        "model_version": [version] * n,
        "threshold": [None if refused else 0.2] * n,
        "probability": [None] * n if refused else probability,
        "decision": [None] * n if refused else ["manual_review" if p >= 0.2 else "auto_approve" for p in probability],
        "mode": ["normal"] * n,
        "latency_ms": [3.0] * n,
    }
    arrays = {}
    for field in schema:
        if field.name in columns:
            arrays[field.name] = pa.array(columns[field.name], type=field.type)
        elif field.name in frame.columns:
            arrays[field.name] = pa.array(frame[field.name], type=field.type, from_pandas=True)
        else:
            arrays[field.name] = pa.nulls(n, field.type)
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, prefix).write(pa.table(arrays, schema=schema))


def _land_outcomes(paths: Paths, tmp_path: Path, first: int, last: int, defaulted: int) -> None:
    """Outcomes for the first batch's requests ``first`` to ``last`` (received long before the lookback)."""
    from warehouse.outcomes import import_outcomes

    path = tmp_path / f"outcomes-{first}-{last}-{defaulted}.csv"
    pd.DataFrame({"request_id": [f"first-{i:06d}" for i in range(first, last)],
                  "defaulted": [(i + defaulted) % 2 for i in range(first, last)]}).to_csv(path, index=False)
    import_outcomes(paths, path)


def _marts(paths: Paths) -> dict[str, pd.DataFrame]:
    with connect_snapshot(paths) as con:
        names = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_name like 'mon\\_%' escape '\\' "
            "and table_type in ('BASE TABLE', 'VIEW') order by 1"
        ).fetchall()]
        return {name: con.execute(f"select * from {name}").df() for name in names}


def _rounded(value: object) -> object:
    """JSON details with their numbers to 12 significant digits (sums may add in another order)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order; batch_at (when a row was computed) left out, JSON numbers rounded."""
    frame = frame.drop(columns=[c for c in BOOKKEEPING if c in frame.columns])
    if "details" in frame.columns:
        frame["details"] = [
            None if text is None else json.dumps(_rounded(json.loads(text)), sort_keys=True)
            for text in frame["details"]
        ]
    ordered = frame.sort_values(list(frame.columns), kind="mergesort", na_position="last")
    return ordered.reset_index(drop=True)


def test_an_incremental_monitoring_build_equals_a_full_refresh(tmp_path: Path, trained_deployment: Paths) -> None:
    from ml import registry

    version = registry.alias_version(trained_deployment, "champion")
    assert version is not None
    paths = copy_deployment(trained_deployment, tmp_path, "*.duckdb", "*.duckdb.wal")  # the first build makes it
    first = simulate_traffic("stable", 5_000, seed=21, start=START, mean_interval_seconds=20)
    _land(paths, version, first, "first", received=START + timedelta(days=2))
    _land_outcomes(paths, tmp_path, 0, 200, defaulted=0)
    assert build(paths, select=MONITOR_SELECT).ok
    with connect_snapshot(paths) as con:
        first_stamp = con.execute("select max(batch_at) from mon_requests").fetchone()[0]

    # Later traffic that drifts, and late rows: received now, but their events are early in the
    # first batch's span (so count windows already built are renumbered from there on).
    later = simulate_traffic("economic_shock", 3_000, seed=22, onset=1_000,
                             start=START + timedelta(days=1, hours=4), mean_interval_seconds=20)
    late = simulate_traffic("stable", 700, seed=23, start=START + timedelta(hours=6), mean_interval_seconds=20)
    _land(paths, version, later, "later", received=START + timedelta(days=3))
    _land(paths, version, late, "late", received=START + timedelta(days=3, hours=1))
    # Refused requests sent with the first batch's earliest timestamps: counted in no window, so they
    # must not re-open (renumber and rewrite) the windows from there on.
    refused = simulate_traffic("stable", 5, seed=24, start=START, mean_interval_seconds=20)
    _land(paths, version, refused, "refused", received=START + timedelta(days=3, hours=2), refused=True)
    # Old requests' outcomes: 100-199 flip (a later landing wins), 200-399 are new.
    _land_outcomes(paths, tmp_path, 100, 400, defaulted=1)
    incremental = build(paths, select=MONITOR_SELECT)
    assert incremental.ok, incremental.run.output
    after_increment = _marts(paths)

    assert build(paths, select=MONITOR_SELECT, full_refresh=True).ok
    rebuilt = _marts(paths)

    assert set(after_increment) == set(rebuilt)
    assert {"mon_drift_requests", "mon_drift_numeric", "mon_feature_histograms", "mon_requests",
            "mon_scored_requests", "mon_group_windows"} <= set(rebuilt)
    assert len(rebuilt["mon_requests"]) == 8_705
    # Only the rows from the earliest counted new row (the late batch) on were renumbered and
    # rewritten; the refused rows before it re-opened nothing.
    requests = after_increment["mon_requests"]
    before_late = requests[(requests["event_at"] < START.replace(tzinfo=None) + timedelta(hours=6))
                           & (requests["status_code"] == 200)]
    assert len(before_late) > 500
    assert (before_late["batch_at"] == first_stamp).all()
    assert (rebuilt["mon_drift_numeric"]["window_kind"] == "count").sum() > 0
    outcomes = rebuilt["mon_scored_requests"].set_index("request_id")["defaulted"]
    assert outcomes.notna().sum() == 400
    assert outcomes["first-000150"] == 1, "the outcome landed later wins"
    deployment = rebuilt["mon_group_windows"].query("window_kind == 'deployment'")
    assert deployment["n_with_outcome"].sum() == 400
    differences = {}
    for name, expected in rebuilt.items():
        got = after_increment[name]
        assert list(got.columns) == list(expected.columns), name
        try:
            assert len(got) == len(expected), f"{len(got)} rows, a full rebuild has {len(expected)}"
            pd.testing.assert_frame_equal(
                _canonical(got), _canonical(expected), check_exact=False, rtol=1e-12, atol=1e-12, obj=name,
            )
        except AssertionError as exc:
            differences[name] = str(exc)[:2000]
    assert not differences, differences
