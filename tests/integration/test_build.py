"""dbt builds into a real DuckDB file; readers use the published snapshot; writers keep landing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from tests.support.deployment import SMALL_BOOK
from warehouse import landing
from warehouse.build import NoLoanBookError, build, current_loan_book, run_unit_tests
from warehouse.importer import land_simulated
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.project import project_vars
from warehouse.publish import connect_snapshot

pytestmark = pytest.mark.slow


def test_build_without_a_loan_book_says_what_to_do(paths: Paths) -> None:
    with pytest.raises(NoLoanBookError, match="lendguard simulate"):
        build(paths)


def test_the_dbt_unit_tests_pass(trained_copy: Paths) -> None:
    """Every dbt unit test (known answers on small fixtures: windows, KS, KL, binomial intervals…).

    In a copy: dbt writes to the warehouse file, which another worker's dbt may have open."""
    run = run_unit_tests(trained_copy)
    assert run.returncode == 0, run.output[-3000:]
    unit_tests = [r for r in run.results if r["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) >= 6, "the unit tests were selected"
    assert all(r["status"] == "pass" for r in unit_tests)


def test_the_warehouse_file_is_free_once_a_build_returns(paths: Paths) -> None:
    """dbt runs in this process: it must let go of the warehouse, or every other process's build (and
    ``lendguard sql``) would find it locked. Another process opens it for writing at once."""
    land_simulated(paths, 2_000, seed=5)
    build(paths)  # raises when dbt could not run; its tests' verdicts on so small a book do not matter here
    opened = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                             str(paths.warehouse)], capture_output=True, text=True, check=False)
    assert opened.returncode == 0, opened.stderr


def test_the_build_publishes_features_and_split(built_deployment: Paths) -> None:
    loan_book = current_loan_book(built_deployment)
    with connect_snapshot(built_deployment) as con:
        train = con.execute("select * from train_loans").df()
        columns = {row[0] for row in con.execute("describe feat_loans").fetchall()}
    assert len(train) == SMALL_BOOK
    assert set(loan_book.feature_names) <= columns
    assert loan_book.group_column not in columns, "the group column is renamed, never a feature"
    # The split is the MD5 bucket of the loan id, reproducible outside SQL.
    expected = train["loan_id"].map(lambda key: int(hashlib.md5(key.encode()).hexdigest()[:8], 16) % 100)  # noqa: S324
    test_share = project_vars()["test_split_percent"]
    assert (train["split"] == "test").equals(expected < test_share)
    assert abs((train["split"] == "test").mean() - test_share / 100) < 0.02
    # Derived features come from the contract's SQL.
    ratio = train["loan_amount"] / train["annual_income"]
    assert train["loan_to_income"].to_numpy() == pytest.approx(ratio.to_numpy())


def _log_rows(paths: Paths, start: datetime, count: int, writer: str) -> pa.Table:
    schema = prediction_log_schema(current_loan_book(paths))
    rows = [
        {
            "request_id": f"{writer}-{i}",
            "received_at": datetime(2026, 1, 1),
            "occurred_at": start + timedelta(minutes=7 * i),
            "status_code": 200 if i % 10 else 422,
            "model_version": "1",
            "probability": (i % 7) / 10,
            "decision": "manual_review" if i % 3 == 0 else "auto_approve",
            "mode": "normal",
            "latency_ms": float(i % 13),
        }
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def test_prediction_log_becomes_the_hourly_table(tmp_path, built_deployment: Paths) -> None:
    from dataclasses import replace

    deployment = replace(
        built_deployment,
        landing=tmp_path / "landing",
        warehouse=tmp_path / "w.duckdb",
        snapshot=tmp_path / "published" / "w.duckdb",
        state_dir=tmp_path / "state",
    )
    # Re-use the built loan book: link its snapshot into this deployment's landing zone.
    source = landing.latest_snapshot(built_deployment.landing, landing.LOANS)
    (deployment.landing / landing.LOANS).mkdir(parents=True)
    (deployment.landing / landing.LOANS / source.name).symlink_to(source)
    table = _log_rows(deployment, datetime(2026, 3, 2, 9, 0), 200, "api-a")
    landing.LandingWriter(deployment.landing, landing.PREDICTION_LOG, "api-a").write(table)
    result = build(deployment)
    assert result.ok, result.run.output
    with connect_snapshot(deployment) as con:
        hourly = con.execute("select * from mon_ops_hourly order by hour_start").df()
    frame = table.to_pandas()
    frame["hour"] = frame["occurred_at"].dt.floor("h")
    expected = frame.groupby("hour").agg(
        requests=("request_id", "size"),
        errors=("status_code", lambda s: int((s >= 400).sum())),
        positives=("decision", lambda s: int((s == "manual_review").sum())),
        p50=("latency_ms", "median"),
    )
    assert list(pd.to_datetime(hourly["hour_start"])) == list(expected.index)
    assert hourly["requests"].tolist() == expected["requests"].tolist()
    assert hourly["errors"].tolist() == expected["errors"].tolist()
    assert hourly["positive_predictions"].tolist() == expected["positives"].tolist()
    assert hourly["latency_p50_ms"].to_numpy() == pytest.approx(expected["p50"].to_numpy())


BUILT_UNDER_LOAD = ["path:models/staging", "path:models/features", "int_requests"]
"""What the loops touch, and int_requests: the snapshot's copy of the prediction log (the staging
view over the log's files is not published)."""


def test_readers_and_writers_keep_working_during_a_build(trained_copy: Paths) -> None:
    """A reader on the snapshot and a writer landing files, while dbt rebuilds: no errors anywhere.

    Nothing here counts how often the loops ran (that depends on the scheduler): both have run once
    before the first build starts, and every batch landed before the second build is in it. The
    builds select what the loops touch (staging and features): the rest of the project adds minutes,
    not concurrency; the loops pause between rounds so dbt is not starved of the two cores."""
    deployment = trained_copy
    stop = threading.Event()
    reading, writing = threading.Event(), threading.Event()
    reader_errors: list[BaseException] = []
    writer_errors: list[BaseException] = []
    landed: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                with connect_snapshot(deployment) as con:
                    con.execute("select count(*), avg(annual_income) from feat_loans").fetchone()
            except (duckdb.Error, OSError) as exc:
                reader_errors.append(exc)
            reading.set()
            stop.wait(0.01)

    def write() -> None:
        writer = landing.LandingWriter(deployment.landing, landing.PREDICTION_LOG, "concurrent-writer")
        while not stop.is_set():
            batch = _log_rows(deployment, datetime(2026, 2, 1), 5, f"w{len(landed)}")
            try:
                writer.write(batch)
            except OSError as exc:
                writer_errors.append(exc)
            else:
                landed.extend(batch["request_id"].to_pylist())
            writing.set()
            stop.wait(0.02)

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    try:
        assert reading.wait(60), "the reader is at work"
        assert writing.wait(60), "the writer is at work"
        results = [build(deployment, select=BUILT_UNDER_LOAD)]
        before_second = list(landed)
        results.append(build(deployment, select=BUILT_UNDER_LOAD))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert all(r.ok for r in results), results[-1].run.output
    assert reader_errors == []
    assert writer_errors == []
    with connect_snapshot(deployment) as con:
        logged = {row[0] for row in con.execute("select request_id from int_requests").fetchall()}
    assert len(before_second) >= 5
    assert set(before_second) <= logged, "rows landed before (and during) the first build are in the second"
