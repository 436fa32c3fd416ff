"""``lendguard demo``: the whole path once, end to end, on the embedded simulated data.

simulate → build → deliver (pipeline, approval) → serve (a real uvicorn process) → replay a drift
scenario → ``lendguard monitor`` (marts, alerts; a critical alert switches the running API to
failover, which the demo shows with one more request) → the dashboard as one HTML file, then a
short summary of what happened and where to look. Ends by itself unless asked to keep the API up.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lendguard.processes import ServerProcess, serve_command, start_server
from lendguard.progress import step
from lendguard.replay import ReplayResult, application_bodies, ending_at, replay
from warehouse.build import build, current_loan_book
from warehouse.errors import LendguardError
from warehouse.importer import land_simulated
from warehouse.marts import open_marts
from warehouse.paths import Paths, get_paths
from warehouse.project import project_vars
from warehouse.settings import get_settings
from warehouse.simulator import SCENARIOS, simulate_traffic


def say(console: Console, text: str) -> None:
    """Print plain text, never Rich markup: names such as ``[annual_income]`` and paths stay as they are."""
    console.print(text, markup=False)


class ReplayFailedError(LendguardError):
    """Replayed requests were not answered (the API is down or refused them)."""


def replay_scenario(
    url: str, scenario: str, requests: int, *, seed: int = 7, onset: int | None = None,
    concurrency: int = 16, console: Console,
) -> ReplayResult:
    """Simulate ``requests`` applications of ``scenario`` and send them to the API at ``url``."""
    traffic = ending_at(simulate_traffic(scenario, requests, seed, onset=onset), datetime.now(UTC))
    bodies = application_bodies(traffic, current_loan_book(get_paths()))
    progress = Progress(TextColumn(f"replaying {scenario}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True, disable=not console.is_terminal)
    with progress:
        task = progress.add_task("replay", total=len(bodies))
        result = replay(url, scenario, bodies, concurrency=concurrency, on_done=lambda: progress.advance(task))
    if result.sent and result.status_counts.get(0, 0) == result.sent:  # status 0: no HTTP answer at all
        raise ReplayFailedError(f"no answer from {url} to any of the {result.sent:,} requests: {result.failures[0]}")
    effective_onset = SCENARIOS[scenario].onset if onset is None else onset
    drift = "no drift" if effective_onset is None else f"drift from request {effective_onset:,}"
    say(console,
        f"replayed {result.sent:,} '{scenario}' applications in {result.seconds:.1f} s "
        f"({result.sent / max(result.seconds, 1e-9):,.0f}/s, p50 {result.latency_ms_p50:.1f} ms, "
        f"p99 {result.latency_ms_p99:.1f} ms); {drift}"
        f"; responses {result.status_counts}, decisions {result.decisions}"
    )
    return result


def start_api(paths: Paths, port: int, console: Console) -> ServerProcess:
    """The production API as its own process (``lendguard serve``), ready; its log is ``api.log``."""
    with console.status(f"starting the API on port {port}"):
        return start_server(serve_command(port), port=port, log_path=paths.data_dir / "api.log", name="the API")


def hourly_summary(paths: Paths) -> dict[str, Any]:
    with open_marts(paths) as marts:
        return marts.rows(
            "select count(*) as hours, sum(requests) as requests, sum(errors) as errors, "
            "sum(positive_predictions) as positive_predictions, min(hour_start) as first_hour, "
            "max(hour_start) as last_hour from mon_ops_hourly"
        )[0]


def monitor_summary(report: Any, console: Console) -> None:
    """What the monitoring run found: alerts by severity and check, and whether failover was set."""
    counts: dict[tuple[str, str], int] = {}
    for alert in report.new_alerts:
        counts[alert.severity, alert.check_name] = counts.get((alert.severity, alert.check_name), 0) + 1
    found = ", ".join(f"{n} {severity} {check}" for (severity, check), n in sorted(counts.items())) or "no alerts"
    say(console, f"6/7 monitor: {found}")
    for alert in [a for a in report.new_alerts if a.critical][:5]:
        say(console, f"    {alert.line()}")
    if report.failover_set:
        say(console, "    a critical alert set the failover flag: every application now goes to manual review")


def failover_probe(url: str) -> str:
    """One more application, to show the API's answer while failover is set."""
    probe = ending_at(simulate_traffic("stable", 1, 99), datetime.now(UTC))
    body = application_bodies(probe, current_loan_book(get_paths()))[0]
    deadline = time.monotonic() + 5.0  # replicas re-read the flag every 0.5 s
    while True:
        answer = httpx.post(f"{url}/v1/score", json=body, timeout=10.0).json()
        if answer.get("mode") == "failover" or time.monotonic() > deadline:
            return f"mode={answer.get('mode')}, decision={answer.get('decision')}"
        time.sleep(0.2)


def policy_summary(paths: Paths, version: str) -> dict[str, dict[str, Any]]:
    """Per policy: test AUC, cost per applicant, FPR per gated group and the gap (the fairness story)."""
    with open_marts(paths) as marts:
        frame = marts.frame(
            "select policy, group_name, repaid, fpr, auc, cost_per_applicant from eval_metrics "
            "where candidate_version = ? and role = 'candidate' order by policy, group_name", [version]
        )
    summary: dict[str, dict[str, Any]] = {}
    for policy, rows in frame.groupby("policy"):
        overall = rows[rows["group_name"] == "__overall__"].iloc[0]
        gated = rows[(rows["group_name"] != "__overall__") & (rows["repaid"] >= project_vars()["fpr_gap_min_repaid"])]
        summary[str(policy)] = {
            "auc": overall["auc"], "cost": overall["cost_per_applicant"],
            "fprs": ", ".join(f"{g} {f:.3f}" for g, f in zip(gated["group_name"], gated["fpr"], strict=True)),
            "gap": gated["fpr"].max() - gated["fpr"].min(),
        }
    return summary


def where_to_look(paths: Paths, console: Console) -> None:
    """The demo's closing pointers, each command with its full path so it runs as printed."""
    console.rule("where to look")
    tools = Path(sys.executable).parent  # the interpreter's bin/: runnable as printed, venv activated or not
    if paths.engine.engine == "spark":  # no DuckDB file: the marts are Parquet tables Spark wrote
        say(console, f"warehouse tables (Parquet, one folder per table): {paths.published}")
        say(console, f"  as Parquet files for any tool: LENDGUARD_ENGINE=spark {tools / 'lendguard'} export-marts "
                     f"--out {paths.data_dir / 'marts'}")
    else:
        say(console, f"warehouse snapshot (read-only): {tools / 'duckdb'} -readonly {paths.snapshot}")
        say(console, "  e.g. select hour_start, model_version, requests, errors, positive_rate from mon_ops_hourly "
                     "order by hour_start, model_version;")
    say(console, f"landing zone: {paths.landing}")
    say(console, f"MLflow: {tools / 'mlflow'} ui --backend-store-uri {paths.tracking_uri}")
    say(console, f"state of everything: {tools / 'lendguard'} status; failover: {tools / 'lendguard'} failover status "
                 f"(clearing it is a person's call: {tools / 'lendguard'} failover clear --by NAME --note TEXT)")


def run_demo(
    *, loans: int, scenario: str, requests: int, port: int, dev_port: int, keep_serving: bool, console: Console
) -> None:
    """The whole path once (the module doc); ``port`` for the production API, ``dev_port`` for the
    pipeline's dev API (``lendguard demo`` checks both before it imports this module)."""
    from api.dashboard.export import export_dashboard  # noqa: PLC0415  # jinja2: only the demo
    from lendguard import pipeline  # noqa: PLC0415  # scikit-learn/pandas (seconds): only the demo
    from lendguard.monitor import run_monitor  # noqa: PLC0415  # jinja2/ml.notify: only the demo

    settings = get_settings()
    settings = settings.model_copy(update={"pipeline": settings.pipeline.model_copy(update={"dev_api_port": dev_port})})
    paths = get_paths()
    console.rule("lendguard demo")
    with step(console, f"1/7 simulating {loans:,} loans"):
        landed = land_simulated(paths, loans, seed=42)
    say(console, f"1/7 landed {landed.rows:,} simulated loans (snapshot {landed.snapshot_id})")
    with step(console, "2/7 dbt build"):
        built = build(paths)
    say(console, f"2/7 dbt build: {len(built.run.results)} nodes, {len(built.run.failures)} failures; "
                  f"published {paths.published}")
    with step(console, "3/7 delivery pipeline") as rename:
        run = pipeline.run_pipeline(paths, supersede=True, settings=settings,
                                    on_stage=lambda name: rename(f"3/7 pipeline: {name}"))
    for policy, row in policy_summary(paths, str(run.version)).items():
        say(console, f"    {policy}: test AUC {row['auc']:.3f}, cost per applicant {row['cost']:.3f}, "
                      f"FPR by group {row['fprs']} (gap {row['gap']:.3f})")
    say(console, f"3/7 version {run.version} passed the gate and the dev tests; it awaits approval")
    pipeline.decide(paths, str(run.version), approve=True, by="lendguard demo",
                    note="approved by the demo; in production a person runs `lendguard approve`")
    say(console, f"    approved as 'lendguard demo' (recorded); version {run.version} is the champion")
    with step(console, "    batch scores with the champion (dbt build score_loans)"):
        # The step-2 build scored with the champion of its time (none, on a fresh warehouse).
        rescored = build(paths, select=["score_loans"])
    say(console, f"    score_loans rebuilt with version {run.version}: {len(rescored.run.failures)} failures")
    server = start_api(paths, port, console)
    say(console, f"4/7 production API ready at {server.url} (pid {server.pid})")
    try:
        result = replay_scenario(server.url, scenario, requests, console=console)
        say(console, f"5/7 replay: {result.ok:,} of {result.sent:,} scored")
        with step(console, "6/7 lendguard monitor (dbt build of the monitoring marts and their checks)"):
            report = run_monitor(paths, actor="lendguard demo")
        monitor_summary(report, console)
        if report.failover_active:
            say(console, f"    the running API follows the flag: {failover_probe(server.url)}")
    finally:
        if not keep_serving:
            server.stop()
    dashboard = paths.data_dir / "dashboard.html"
    with step(console, "7/7 dashboard"):
        export_dashboard(paths, dashboard, get_settings().dashboard.mlflow_ui_url)
    summary = hourly_summary(paths)
    say(console, f"7/7 dashboard (one offline HTML file): {dashboard}; mon_ops_hourly: {summary['requests']:,} "
                 f"requests over {summary['hours']} hours, {summary['positive_predictions']:,} sent to manual review")
    where_to_look(paths, console)
    if keep_serving:
        say(console, f"the API keeps serving at {server.url} (pid {server.pid}); stop it with: kill {server.pid}")
    if result.ok != result.sent:
        raise ReplayFailedError(f"{result.sent - result.ok} replayed requests failed: {result.failures[:3]}")
