"""``lendguard monitor``: build the monitoring marts, run the checks, notify, switch failover, record.

One run:

1. ``dbt build`` of the staging views and the monitoring marts with the tests tagged ``monitor``
   (they fail on ``mon_alerts`` rows: warn alerts as dbt warnings, critical ones as errors), then
   publish the snapshot;
2. read ``mon_alerts`` from the published snapshot; an alert is *new* when its ``alert_id`` was
   never notified (the ``alert_notifications`` landing dataset is the record) nor acknowledged by a
   person clearing failover while it was open (the ``failover_events`` clear rows), so every alert
   is notified once, not again on the next run. An alert's id is its breach (check, subject,
   model version, window kind, window key: ``monitoring_alert_id``), and count windows are numbered
   in ingestion order, so late or back-dated rows never give an old breach a new id;
3. new critical alerts switch the API to failover (``warehouse.failover.set_failover``) unless it
   is already on; only a person clears it (``lendguard failover clear --by NAME --note TEXT``), and
   the clear stands: the alerts open then are acknowledged and never set it again;
4. one notification lists every new alert (same channels as approval requests, ``ml.notify``);
5. the run is landed in ``monitor_runs`` and each newly notified alert in ``alert_notifications``.

A failed delivery is recorded with the alert (``delivered`` false) and is not retried: the alert
stays in ``mon_alerts``, ``lendguard status`` and the dashboard.

``run_every`` repeats it on a fixed interval until asked to stop (SIGTERM or Ctrl-C end it
between runs); a run that fails is reported and the loop goes on.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from ml import notify
from warehouse import datasets
from warehouse.build import DELIVERY_SELECT, build
from warehouse.dbt import DbtError
from warehouse.errors import LendguardError
from warehouse.failover import read_failover, set_failover
from warehouse.freshness import LogFreshness, prediction_log_freshness
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.project import project_vars
from warehouse.settings import NotifySettings, get_settings

log = logging.getLogger(__name__)

ACTOR = "lendguard monitor"
"""Who sets failover when a monitoring run finds critical alerts (the run itself is ``pipeline.actor``'s)."""
MONITOR_TEST_PREFIX = "test.lendguard.monitor_"
"""unique_id prefix of the monitor checks (models/monitoring/_monitoring__models.yml names them)."""
MONITOR_SELECT = ["path:models/staging", "path:models/intermediate/monitoring", "path:models/monitoring",
                  *DELIVERY_SELECT]
"""What a monitor run builds: the staging tables of the landing zone, the monitoring marts (with
their tests) and the delivery marts, so the snapshot it publishes is current for every reader (the
audit trail and the approvals included). Features, training sets and batch scores change with the
loan book, not with traffic, so ``lendguard build`` keeps those (and the loan book's staging table:
MONITOR_EXCLUDE)."""
MONITOR_EXCLUDE = ["stg_landing__loans"]
ALERTS_NODE = "model.lendguard.mon_alerts"
ALERT_COLUMNS = ("alert_id", "check_name", "subject", "model_version", "window_kind", "window_start",
                 "window_end", "value", "threshold", "severity", "details")
TEXT_ALERTS = 50
"""Alerts listed in a notification's text (the JSON payload carries all of them)."""

OK, ALERTS, CRITICAL, FAILED = "ok", "alerts", "critical", "failed"


class MonitorBuildError(DbtError):
    """The build ran but did not rebuild ``mon_alerts``: its alerts would be stale, so none are acted on."""


@dataclass(frozen=True)
class Alert:
    """One ``mon_alerts`` row."""

    alert_id: str
    check_name: str
    subject: str
    model_version: str | None
    window_kind: str
    window_start: datetime | None
    window_end: datetime | None
    value: float | None
    threshold: float | None
    severity: str
    details: str | None

    @property
    def critical(self) -> bool:
        return self.severity == "critical"

    def to_json(self) -> dict[str, Any]:
        """Strict-JSON form for webhooks and ``--json`` (times ISO-8601, details parsed)."""
        try:
            details = json.loads(self.details) if self.details else None
        except ValueError:
            details = self.details
        return {
            **{k: getattr(self, k) for k in ("alert_id", "check_name", "subject", "model_version", "window_kind",
                                              "severity")},
            "window_start": _iso(self.window_start), "window_end": _iso(self.window_end),
            "value": _finite(self.value), "threshold": _finite(self.threshold), "details": _strict(details),
        }

    def line(self) -> str:
        window = f"{self.window_kind} window from {_iso(self.window_start) or '?'}"
        return (f"{self.severity.upper():8} {self.check_name} [{self.subject}] model version {self.model_version}, "
                f"{window}: {_fmt(self.value)} (limit {_fmt(self.threshold)})")


@dataclass
class MonitorReport:
    """What one run found and did (also landed as a ``monitor_runs`` row)."""

    monitor_run_id: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = OK
    alerts: list[Alert] = field(default_factory=list)
    new_alerts: list[Alert] = field(default_factory=list)
    deliveries: list[notify.Delivery] = field(default_factory=list)
    failover_set: bool = False
    failover_active: bool = False
    dbt_failures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    log_freshness: LogFreshness | None = None

    @property
    def critical_new(self) -> list[Alert]:
        return [a for a in self.new_alerts if a.critical]

    def to_json(self) -> dict[str, Any]:
        return {
            "monitor_run_id": self.monitor_run_id, "status": self.status,
            "started_at": _iso(self.started_at), "ended_at": _iso(self.ended_at),
            "alerts_open": len(self.alerts), "alerts_new": len(self.new_alerts),
            "critical_new": len(self.critical_new), "failover_set": self.failover_set,
            "failover_active": self.failover_active,
            "new_alerts": [a.to_json() for a in self.new_alerts],
            "deliveries": [asdict(d) for d in self.deliveries],
            "dbt_failures": self.dbt_failures, "error": self.error,
            "prediction_log_freshness": None if self.log_freshness is None else {
                "status": self.log_freshness.status, "age_seconds": self.log_freshness.age_seconds,
                "newest_received_at": _iso(self.log_freshness.newest_received_at),
            },
        }


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _strict(value: Any) -> Any:
    """JSON-safe: non-finite floats become null."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.4f}"


def read_alerts(paths: Paths) -> list[Alert]:
    """Every row of ``mon_alerts`` in the published snapshot, critical first."""
    with open_marts(paths) as marts:
        rows = marts.rows(
            f"select {', '.join(ALERT_COLUMNS)} from mon_alerts "
            "order by severity = 'critical' desc, check_name, model_version, window_kind, window_start, subject"
        )
    return [Alert(**row) for row in rows]


def _landed(paths: Paths, dataset: str, columns: str) -> list[tuple[Any, ...]]:
    """Rows of a landing dataset, read straight from its files (the record must not wait for a build)."""
    return datasets.query_landed(paths, dataset, f"select {columns} from landed")


def notified_alert_ids(paths: Paths) -> set[str]:
    """Alert ids some earlier run notified."""
    return {row[0] for row in _landed(paths, datasets.ALERT_NOTIFICATIONS, "alert_id")}


def acknowledged_alert_ids(paths: Paths) -> set[str]:
    """Alert ids that were open when a person cleared failover (every clear's, so each clear stands)."""
    rows = _landed(paths, datasets.FAILOVER_EVENTS, "action, alert_ids")
    return {alert_id for action, ids in rows if action == "clear" and ids for alert_id in json.loads(ids)}


def last_run(paths: Paths) -> dict[str, Any] | None:
    """The latest landed monitor run (for ``lendguard status``)."""
    rows = _landed(paths, datasets.MONITOR_RUNS,
                   "monitor_run_id, started_at, ended_at, status, alerts_open, alerts_new, critical_new, failover_set")
    if not rows:
        return None
    latest = max(rows, key=lambda r: r[1] or datetime.min)
    keys = ("monitor_run_id", "started_at", "ended_at", "status", "alerts_open", "alerts_new", "critical_new",
            "failover_set")
    return {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in zip(keys, latest, strict=True)}


def alert_notification(report: MonitorReport, fallback: str) -> notify.Notification:
    """One message listing every new alert, worst first, with what failover did and how to clear it."""
    new = report.new_alerts
    critical = report.critical_new
    subject = (f"[lendguard] {len(new)} new monitoring alert(s), {len(critical)} critical"
               + (": API switched to failover" if report.failover_set else ""))
    lines = [f"lendguard monitor (run {report.monitor_run_id}) found {len(new)} new alert(s) "
             f"({len(report.alerts)} open in mon_alerts).", ""]
    lines += [f"  {a.line()}" for a in new[:TEXT_ALERTS]]
    if len(new) > TEXT_ALERTS:
        lines.append(f"  … and {len(new) - TEXT_ALERTS} more (all of them in mon_alerts and in this message's JSON)")
    lines.append("")
    if report.failover_set:
        lines += [f"The API is now in FAILOVER ({fallback}) because of the critical alert(s) above.",
                  "Only a person can end it, once the cause is understood:",
                  '  lendguard failover clear --by "YOUR NAME" --note "WHY"']
    elif critical and report.failover_active:
        lines.append("The API was already in failover; it stays there until a person clears it.")
    lines += ["", "Details: select * from mon_alerts order by window_start desc (published snapshot).", ""]
    payload = {
        "monitor_run_id": report.monitor_run_id,
        "alerts": [a.to_json() for a in new],
        "alerts_open": len(report.alerts),
        "failover": {"set_by_this_run": report.failover_set, "active": report.failover_active, "fallback": fallback},
    }
    return notify.Notification(kind=notify.KIND_ALERT, subject=subject, text="\n".join(lines), payload=payload)


def run_monitor(
    paths: Paths,
    *,
    settings: NotifySettings | None = None,
    actor: str | None = None,
) -> MonitorReport:
    """One monitoring run (see the module docstring); raises ``DbtError`` when dbt could not run.

    ``settings`` and ``actor`` left as None are this process's (``notify``, ``pipeline.actor``).
    """
    actor = actor or get_settings().pipeline.actor
    report = MonitorReport(monitor_run_id=f"{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", started_at=_now())
    try:
        result = build(paths, select=MONITOR_SELECT, exclude=MONITOR_EXCLUDE, monitor=True)
    except DbtError as exc:
        report.status, report.error = FAILED, str(exc).splitlines()[0]
        _record_run(paths, report, actor)
        raise
    report.dbt_failures = [
        {"unique_id": f["unique_id"], "status": f["status"], "message": f["message"]}
        for f in result.run.failures if not str(f.get("unique_id", "")).startswith(MONITOR_TEST_PREFIX)
    ]
    alerts_node = next((r for r in result.run.results if r.get("unique_id") == ALERTS_NODE), None)
    if alerts_node is None or alerts_node.get("status") != "success":
        failing = ", ".join(f["unique_id"] for f in report.dbt_failures) or "none reported"
        report.status = FAILED
        state = "not selected" if alerts_node is None else alerts_node["status"]
        report.error = f"mon_alerts was not rebuilt ({state}); failing nodes: {failing}"
        _record_run(paths, report, actor)
        raise MonitorBuildError(report.error)
    try:  # a dead logger shows here: quiet windows are not a quiet API
        report.log_freshness = prediction_log_freshness(paths)
    except DbtError as exc:
        log.warning("prediction-log freshness not checked: %s", str(exc).splitlines()[0])
    report.alerts = read_alerts(paths)
    handled = notified_alert_ids(paths) | acknowledged_alert_ids(paths)
    report.new_alerts = [a for a in report.alerts if a.alert_id not in handled]

    fallback = str(project_vars().get("monitor_failover_fallback", "manual_review"))
    state = read_failover(paths)
    report.failover_active = state.active
    critical = report.critical_new
    if critical and not state.active:
        checks = sorted({a.check_name for a in critical})
        set_failover(
            paths, by=ACTOR, fallback=fallback,
            reason=f"{len(critical)} critical monitoring alert(s): {', '.join(checks)}",
            alert_ids=[a.alert_id for a in critical],
        )
        report.failover_set = report.failover_active = True
    if report.new_alerts:
        report.deliveries = notify.send(alert_notification(report, fallback),
                                        settings or get_settings().notify)
        _record_notifications(paths, report)
    report.status = CRITICAL if critical else ALERTS if report.alerts else OK
    _record_run(paths, report, actor)
    return report


def _record_notifications(paths: Paths, report: MonitorReport) -> None:
    delivered = any(d.ok for d in report.deliveries)
    deliveries = json.dumps([asdict(d) for d in report.deliveries])
    now = _now()
    datasets.land_rows(paths, datasets.ALERT_NOTIFICATIONS, [{
        "alert_id": a.alert_id, "monitor_run_id": report.monitor_run_id, "check_name": a.check_name,
        "subject": a.subject, "model_version": a.model_version, "window_kind": a.window_kind,
        "window_start": a.window_start, "severity": a.severity, "value": a.value, "threshold": a.threshold,
        "delivered": delivered, "deliveries": deliveries, "notified_at": now,
    } for a in report.new_alerts])


def _record_run(paths: Paths, report: MonitorReport, actor: str) -> None:
    report.ended_at = _now()
    details = {"deliveries": [asdict(d) for d in report.deliveries], "dbt_failures": report.dbt_failures,
               "error": report.error, "new_alert_ids": [a.alert_id for a in report.new_alerts],
               "prediction_log_freshness": None if report.log_freshness is None else report.log_freshness.status}
    datasets.land_rows(paths, datasets.MONITOR_RUNS, [{
        "monitor_run_id": report.monitor_run_id, "started_at": report.started_at, "ended_at": report.ended_at,
        "actor": actor, "status": report.status, "dbt_failures": len(report.dbt_failures),
        "alerts_open": len(report.alerts), "alerts_new": len(report.new_alerts),
        "critical_new": len(report.critical_new), "failover_set": report.failover_set,
        "details": json.dumps(details, default=str),
    }])


# ----- scheduling ---------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)?", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``15m``, ``1h30m``, ``90s`` or ``90`` (seconds); at least one second."""
    compact = text.strip().replace(" ", "")
    parts = list(_DURATION.finditer(compact))
    if not compact or not parts or "".join(p.group(0) for p in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 15m, 1h, 1h30m, 90s)")
    seconds = sum(float(p.group(1)) * _UNIT_SECONDS[(p.group(2) or "").lower() or None] for p in parts)
    if seconds < 1:
        raise ValueError(f"duration {text!r} is shorter than a second")
    return seconds


def run_every(
    paths: Paths,
    interval_seconds: float,
    stop: threading.Event,
    *,
    on_report: Callable[[MonitorReport], None],
    on_error: Callable[[BaseException], None],
    errors: tuple[type[BaseException], ...] = (LendguardError, OSError, ValueError, LookupError, duckdb.Error),
) -> int:
    """Run the monitor now and then every ``interval_seconds`` (start to start) until ``stop`` is set.

    A failed run is passed to ``on_error`` and the schedule goes on. Returns the number of runs.
    """
    runs = 0
    while not stop.is_set():
        started = _now()
        try:
            on_report(run_monitor(paths))
        except errors as exc:
            on_error(exc)
        runs += 1
        elapsed = (_now() - started).total_seconds()
        stop.wait(max(0.0, interval_seconds - elapsed))
    return runs
