"""``lendguard status``: where everything is and what state it is in.

The JSON form (``--json``) is a stable contract for scripts and CI: keys are only ever added.
``alerts`` is ``null`` until a snapshot with the monitoring marts has been published.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lendguard.monitor import last_run
from lendguard.pipeline import latest
from ml import registry
from warehouse import landing
from warehouse.failover import flag_path, read_failover
from warehouse.loan_book import LoanBookSchema
from warehouse.marts import MartError, open_marts
from warehouse.paths import Paths
from warehouse.publish import SnapshotMissingError, snapshot_age_seconds

STATUS_SCHEMA_VERSION = 1
ALIASES = ("champion", "candidate")


def _file_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"path": str(path), "exists": False, "bytes": None, "modified_at": None}
    stat = path.stat()
    return {
        "path": str(path),
        "exists": True,
        "bytes": stat.st_size,
        "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
    }


def _loan_book(paths: Paths) -> dict[str, Any] | None:
    snapshot = landing.latest_snapshot(paths.landing, landing.LOANS)
    if snapshot is None:
        return None
    contract = LoanBookSchema.from_yaml(snapshot / landing.SNAPSHOT_SCHEMA_FILE)
    return {
        "snapshot_id": snapshot.name.split("=", 1)[1],
        "name": contract.name,
        "contract_fingerprint": contract.fingerprint(),
        "features": list(contract.feature_names),
    }


def _landing(paths: Paths) -> dict[str, Any]:
    if not paths.landing.exists():
        return {}
    counts = (landing.dataset_counts(paths.landing, d.name) for d in sorted(paths.landing.iterdir()) if d.is_dir())
    return {c.dataset: {"files": c.files, "rows": c.rows, "bytes": c.bytes} for c in counts}


def _models(paths: Paths) -> dict[str, Any]:
    """Versions behind each alias, with their tags (gate and approval state arrive as tags).

    A status check must answer quickly when the registry is down: the command applies
    ``warehouse.settings.REGISTRY_FAIL_FAST`` at its edge (MLflow's defaults retry for minutes).
    """
    try:
        registry.connect(paths)
        client = MlflowClient()
        client.search_registered_models(max_results=1)  # raises when the registry is unreachable
        aliases: dict[str, Any] = {}
        for alias in ALIASES:
            try:
                version = client.get_model_version_by_alias(registry.MODEL_NAME, alias)
            except MlflowException:
                aliases[alias] = None
                continue
            assert version.run_id is not None, "ml.registry registers every version from its training run"
            run = client.get_run(version.run_id)
            aliases[alias] = {
                "version": str(version.version),
                "run_id": version.run_id,
                "model": run.data.params.get("model"),  # the search-space candidate the version is
                "registered_at": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).isoformat(),
                "metrics": dict(run.data.metrics),
                "gate": version.tags.get("gate_result"),
                "approval": version.tags.get("approval"),
                "approval_by": version.tags.get("approval_by"),
                "approval_at": version.tags.get("approval_at"),
            }
    except Exception as exc:
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}", "aliases": {}}
    return {"reachable": True, "error": None, "aliases": aliases}


def collect_status(paths: Paths) -> dict[str, Any]:
    age = snapshot_age_seconds(paths)
    return {
        "status_schema_version": STATUS_SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(),
        "data_dir": str(paths.data_dir),
        "warehouse": _file_state(paths.warehouse),
        "snapshot": {**_file_state(paths.published), "age_seconds": None if age is None else round(age, 1)},
        "loan_book": _loan_book(paths),
        "landing": {"path": str(paths.landing), "datasets": _landing(paths)},
        "mlflow": {"tracking_uri": paths.tracking_uri, "model_name": registry.MODEL_NAME, **_models(paths)},
        "pipeline": _pipeline(paths),
        "failover": _failover(paths),
        "alerts": _alerts(paths),
    }


def _failover(paths: Paths) -> dict[str, Any]:
    """The API's failover flag as last written (``active`` false and no ``set_at``: never set)."""
    return {**asdict(read_failover(paths)), "flag_path": str(flag_path(paths))}


def _alerts(paths: Paths) -> dict[str, Any] | None:
    """Open monitoring alerts (``mon_alerts`` in the snapshot) and the last ``lendguard monitor`` run.

    None until a snapshot with ``mon_alerts`` has been published.
    """
    try:
        with open_marts(paths) as marts:
            counts = {row["severity"]: row["n"] for row in marts.rows(
                "select severity, count(*) as n from mon_alerts group by 1")}
            latest = marts.rows(
                "select alert_id, check_name, subject, model_version, window_kind, "
                "cast(window_start as varchar) as window_start, value, threshold, severity from mon_alerts "
                "order by mon_alerts.window_start desc nulls last limit 5"
            )
        monitor_run = last_run(paths)
    except (SnapshotMissingError, MartError, duckdb.Error):  # duckdb: reading the landed monitor runs
        return None
    return {
        "open": sum(counts.values()), "warn": counts.get("warn", 0), "critical": counts.get("critical", 0),
        "latest": latest,
        "last_monitor_run": monitor_run,
    }


def _pipeline(paths: Paths) -> dict[str, Any] | None:
    """The latest delivery-pipeline run and its stages."""
    run = latest(paths)
    if run is None:
        return None
    return {
        "run_id": run.run_id, "status": run.status, "version": run.version, "actor": run.actor,
        "started_at": run.started_at, "reason": run.reason, "dev_api_url": run.dev_api_url,
        "stages": [{k: s.get(k) for k in ("stage", "status", "started_at", "ended_at", "actor")} for s in run.stages],
    }


def print_status(state: dict[str, Any], console: Console) -> None:
    """The human form of ``lendguard status``."""
    table = Table("what", "state", show_header=False)
    snapshot = state["snapshot"]
    present = "present" if state["warehouse"]["exists"] else "missing"
    _add_row(table, "warehouse", f"{state['warehouse']['path']} ({present})")
    age = "never published" if snapshot["age_seconds"] is None else f"published {snapshot['age_seconds']:.0f} s ago"
    _add_row(table, "snapshot", f"{snapshot['path']} ({age})")
    book = state["loan_book"]
    _add_row(table, "loan book", "none landed" if book is None else f"{book['name']} (snapshot {book['snapshot_id']})")
    for name, counts in state["landing"]["datasets"].items():
        _add_row(table, f"landing/{name}", f"{counts['files']:,} files, {counts['rows']:,} rows")
    mlflow_state = state["mlflow"]
    reachable = "" if mlflow_state["reachable"] else f" (unreachable: {mlflow_state['error']})"
    _add_row(table, "MLflow", mlflow_state["tracking_uri"] + reachable)
    for alias, info in mlflow_state["aliases"].items():
        if info is None:
            _add_row(table, alias, "none")
        else:
            decided = f" by {info['approval_by']} at {info['approval_at']}" if info.get("approval_by") else ""
            detail = (f"version {info['version']} (gate {info['gate'] or 'n/a'}, "
                      f"approval {info['approval'] or 'n/a'}{decided})")
            _add_row(table, alias, detail)
    run = state["pipeline"]
    if run is None:
        _add_row(table, "pipeline", "no run yet")
    else:
        stages = ", ".join(f"{s['stage']} {s['status']}" for s in run["stages"])
        reason = f" ({run['reason']})" if run["reason"] else ""
        _add_row(table, "pipeline", f"run {run['run_id']}: {run['status']}{reason}, version {run['version']}; {stages}")
    failover = state["failover"]
    if failover is None:
        _add_row(table, "failover", "not deployed yet")
    elif failover["active"]:
        _add_row(table, "failover", f"ACTIVE ({failover['fallback']}) since {failover['set_at']}, set by "
                      f"{failover['set_by']}: {failover['reason']}")
    else:
        cleared = f"; cleared by {failover['cleared_by']} at {failover['cleared_at']}" if failover["cleared_at"] else ""
        _add_row(table, "failover", f"off{cleared}")
    alerts = state["alerts"]
    if alerts is None:
        _add_row(table, "alerts", "not monitored yet")
    else:
        run = alerts["last_monitor_run"]
        last = "never run" if run is None else f"last run {run['started_at']} ({run['status']})"
        _add_row(table, "alerts", f"{alerts['open']} open ({alerts['critical']} critical, {alerts['warn']} warn); "
                      f"`lendguard monitor`: {last}")
    console.print(table)


def _add_row(table: Table, what: str, value: str) -> None:
    """Values are data (paths, reasons, names), never markup: ``[annual_income]`` must stay."""
    table.add_row(escape(what), escape(value))
