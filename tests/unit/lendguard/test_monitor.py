"""The monitor's parts without a build: durations for `--every`, the alert message people receive, and
what a person's failover clear acknowledges."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import datetime

import duckdb
import pytest

from lendguard import cli, monitor
from lendguard.monitor import Alert, MonitorReport, acknowledged_alert_ids, alert_notification, parse_duration
from warehouse.dbt import DbtError
from warehouse.failover import clear_failover, read_failover, set_failover
from warehouse.paths import Paths


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("45", 45),
                                               ("0.5h", 1800), (" 2M ", 120)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15x", "m", "0s", "-5m", "1h and 5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def alert(severity: str, check: str = "output_positive_rate", value: float = 0.31) -> Alert:
    return Alert(
        alert_id=f"{check}-{severity}", check_name=check, subject="Hispanic", model_version="3", window_kind="count",
        window_start=datetime(2026, 1, 5, 8), window_end=datetime(2026, 1, 5, 9), value=value, threshold=0.25,
        severity=severity, details='{"n": 340, "positives": 105, "expected_rate": 0.2}',
    )


def test_the_alert_message_lists_every_new_alert_and_how_to_clear_failover() -> None:
    report = MonitorReport(monitor_run_id="run-1", started_at=datetime(2026, 1, 5, 10))
    report.alerts = report.new_alerts = [alert("critical"), alert("warn", "latency_p99", float("nan"))]
    report.failover_set = report.failover_active = True
    message = alert_notification(report, "manual_review")

    assert message.kind == "alert"
    assert "2 new monitoring alert(s), 1 critical" in message.subject
    assert "CRITICAL output_positive_rate [Hispanic] model version 3" in message.text
    assert "lendguard failover clear" in message.text
    body = json.loads(json.dumps(message.webhook_body(), allow_nan=False))
    assert [a["alert_id"] for a in body["alerts"]] == ["output_positive_rate-critical", "latency_p99-warn"]
    assert body["alerts"][0]["details"]["positives"] == 105
    assert body["alerts"][1]["value"] is None
    assert body["failover"] == {"set_by_this_run": True, "active": True, "fallback": "manual_review"}


def test_every_keeps_going_after_a_failed_run_and_stops_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    outcomes: list[object] = [DbtError("dbt could not run"), MonitorReport("run-2", datetime(2026, 1, 5))]
    reports: list[MonitorReport] = []
    failures: list[BaseException] = []

    def fake_run(_paths: object) -> MonitorReport:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        stop.set()
        assert isinstance(outcome, MonitorReport)
        return outcome

    monkeypatch.setattr(monitor, "run_monitor", fake_run)
    runs = monitor.run_every(None, 0.01, stop, on_report=reports.append, on_error=failures.append)  # type: ignore[arg-type]
    assert runs == 2
    assert [r.monitor_run_id for r in reports] == ["run-2"]
    assert [str(f) for f in failures] == ["dbt could not run"]


def test_sigterm_stops_the_schedule_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_run(_paths: object) -> MonitorReport:
        calls.append(1)
        # Sent during the first run, once the schedule's handler is installed (a timer could fire
        # before it is, on a busy machine, and kill pytest itself).
        os.kill(os.getpid(), signal.SIGTERM)
        return MonitorReport(f"run-{len(calls)}", datetime(2026, 1, 5))

    monkeypatch.setattr(monitor, "run_monitor", fake_run)
    assert cli.main(["monitor", "--every", "1h"]) == 0
    assert calls == [1]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_clear_acknowledges_every_alert_open_then(paths: Paths) -> None:
    """A person's clear stands: it records the alerts open in the published snapshot (and those that
    set the flag), and monitoring never acts on those again (lendguard.monitor.acknowledged_alert_ids)."""
    assert clear_failover(paths, by="ops", note="no snapshot yet").acknowledged_alert_ids == []
    paths.snapshot.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.snapshot)) as con:
        con.execute("create table mon_alerts as select * from (values ('a1'), ('a2')) as t(alert_id)")
    set_failover(paths, by="lendguard monitor", reason="drift", alert_ids=["a0"])
    state = clear_failover(paths, by="ops", note="drift explained")
    assert state.acknowledged_alert_ids == ["a0", "a1", "a2"]
    assert read_failover(paths).acknowledged_alert_ids == ["a0", "a1", "a2"]
    assert acknowledged_alert_ids(paths) == {"a0", "a1", "a2"}
