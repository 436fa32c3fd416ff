"""Incremental monitoring builds (issue #6, item 7) equal a full rebuild, row for row, and a closed
count window never changes (issue #14, item 1).

A copy of the trained deployment gets a first batch of logged predictions (some with outcomes) and
a monitoring build; then a second batch lands (later requests, a drift, late-arriving rows whose
event time falls inside windows already built, and one request back-dated by a year), with
outcomes for old requests (new ones, and changed ones: the latest landed wins), and the incremental
build runs. The count windows closed before it must be unchanged (their rows, statistics and
verdicts), every monitoring mart is read, the same selection is rebuilt with ``--full-refresh``, and
each mart must hold the same rows (floating-point columns to 1e-12 relative: sums may add in another
order). Last, another replica's file lands late (received before rows already built): it joins
the open count window, and again no closed window changes.
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

MONITOR_SELECT = ["path:models/staging", "path:models/intermediate/monitoring", "path:models/monitoring"]
BOOKKEEPING = ("batch_at", "first_reported_at", "last_changed_at", "last_seen_at")
"""Columns that say when a row was computed or seen, not what it holds: they differ by construction."""
COUNT_WINDOW_MARTS = {
    # mart: the columns that name one count window's row in it
    "int_drift_windows": ["model_version", "window_key"],
    "mon_drift_numeric": ["model_version", "window_key", "feature"],
    "mon_drift_categorical": ["model_version", "window_key", "feature"],
    "mon_positive_rates": ["model_version", "window_index", "fairness_group"],
    "mon_fairness_estimated": ["model_version", "window_index", "fairness_group"],
}
"""The label-free marts with count windows: what a closed one holds must never change (outcomes
landing later change the realised marts, which is new information, not a rewrite)."""
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
            "select table_name from information_schema.tables "
            "where (table_name like 'mon\\_%' escape '\\' or table_name like 'int\\_%' escape '\\') "
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


def _closed_count_windows(marts: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The rows of every count window that holds all its requests (drift and output numberings)."""
    drift = marts["int_drift_windows"].query("window_kind == 'count'")
    size = drift["n_requests"].max()
    closed_drift = set(drift.loc[drift["n_requests"] == size, "window_key"])
    scored = marts["mon_positive_rates"].query("window_kind == 'count'")
    per_window = scored.groupby("window_index")["n"].sum()
    closed_scored = set(per_window[per_window == per_window.max()].index)
    out = {}
    for name, keys in COUNT_WINDOW_MARTS.items():
        frame = marts[name].query("window_kind == 'count'")
        key, closed = ("window_key", closed_drift) if "window_key" in keys else ("window_index", closed_scored)
        rows = frame[frame[key].isin(closed)].drop(columns=[c for c in ("batch_at",) if c in frame.columns])
        out[name] = rows.sort_values(keys).reset_index(drop=True)
    return out


def _assert_unchanged(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    """Every closed count window of ``before`` is in ``after`` exactly as it was."""
    assert before["int_drift_windows"].shape[0] >= 2, "the test needs closed windows"
    for name, rows in before.items():
        keys = COUNT_WINDOW_MARTS[name]
        later = after[name].query("window_kind == 'count'").merge(rows[keys], on=keys)[rows.columns]
        pd.testing.assert_frame_equal(later.sort_values(keys).reset_index(drop=True), rows, obj=name)


def _assert_late_rows_land_in_reported_hours(marts: dict[str, pd.DataFrame], first_stamp: object) -> None:
    """Late rows landed in hour windows the first build reported: those say when they changed."""
    windows = marts["int_drift_windows"].query("window_kind == 'hour'")
    revisited = windows[windows["first_reported_at"] == first_stamp]
    assert (revisited["last_changed_at"] > first_stamp).sum() > 0
    assert (windows["last_changed_at"] >= windows["first_reported_at"]).all()


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
        first_stamp = con.execute("select max(batch_at) from int_requests").fetchone()[0]
    closed_first = _closed_count_windows(_marts(paths))

    # Later traffic that drifts, and late rows: received now, but their events are early in the
    # first batch's span (they land in the hour and day windows already reported, not in closed
    # count windows), and one request back-dated by a year.
    later = simulate_traffic("economic_shock", 3_000, seed=22, onset=1_000,
                             start=START + timedelta(days=1, hours=4), mean_interval_seconds=20)
    late = simulate_traffic("stable", 700, seed=23, start=START + timedelta(hours=6), mean_interval_seconds=20)
    _land(paths, version, later, "later", received=START + timedelta(days=3))
    _land(paths, version, late, "late", received=START + timedelta(days=3, hours=1))
    back_dated = simulate_traffic("stable", 1, seed=25, start=START - timedelta(days=365))
    _land(paths, version, back_dated, "backdated", received=START + timedelta(days=3, hours=1, minutes=30))
    # Refused requests sent with the first batch's earliest timestamps: counted in no window, so they
    # must not re-open (renumber and rewrite) the windows from there on.
    refused = simulate_traffic("stable", 5, seed=24, start=START, mean_interval_seconds=20)
    _land(paths, version, refused, "refused", received=START + timedelta(days=3, hours=2), refused=True)
    # Old requests' outcomes: 100-199 flip (a later landing wins), 200-399 are new.
    _land_outcomes(paths, tmp_path, 100, 400, defaulted=1)
    incremental = build(paths, select=MONITOR_SELECT)
    assert incremental.ok, incremental.run.output
    after_increment = _marts(paths)
    _assert_unchanged(closed_first, after_increment)
    _assert_late_rows_land_in_reported_hours(after_increment, first_stamp)

    assert build(paths, select=MONITOR_SELECT, full_refresh=True).ok
    rebuilt = _marts(paths)

    assert set(after_increment) == set(rebuilt)
    assert {"int_drift_requests", "mon_drift_numeric", "mon_feature_histograms", "int_requests",
            "int_scored_requests", "int_group_windows"} <= set(rebuilt)
    assert len(rebuilt["int_requests"]) == 8_706
    # No row the first build numbered was rewritten: late and back-dated rows came after them.
    requests = after_increment["int_requests"].set_index("request_id")
    assert (requests.loc[requests.index.str.startswith("first-"), "batch_at"] == first_stamp).all()
    assert requests.loc["backdated-000000", "drift_count_index"] == requests["drift_count_index"].max()
    assert (rebuilt["mon_drift_numeric"]["window_kind"] == "count").sum() > 0
    outcomes = rebuilt["int_scored_requests"].set_index("request_id")["defaulted"]
    assert outcomes.notna().sum() == 400
    assert outcomes["first-000150"] == 1, "the outcome landed later wins"
    deployment = rebuilt["int_group_windows"].query("window_kind == 'deployment'")
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
    _a_late_replica_file_joins_the_open_window(paths, version, rebuilt)


def _a_late_replica_file_joins_the_open_window(paths: Paths, version: str, built: dict[str, pd.DataFrame]) -> None:
    """Another replica's file, landed after the build that read rows received later than it: it joins
    the open count window; a rebuild from scratch would put it among them (README: Monitoring)."""
    closed_now = _closed_count_windows(built)
    open_window = built["int_requests"]["drift_count_index"].max()
    replica = simulate_traffic("stable", 300, seed=26, start=START + timedelta(days=1, hours=5))
    _land(paths, version, replica, "replica", received=START + timedelta(days=3, hours=1, minutes=5))
    assert build(paths, select=MONITOR_SELECT).ok
    after_replica = _marts(paths)
    _assert_unchanged(closed_now, after_replica)
    requests = after_replica["int_requests"]
    assert (requests.loc[requests["request_id"].str.startswith("replica-"), "drift_count_index"] >= open_window).all()
