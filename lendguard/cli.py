"""``lendguard``: the one command-line entry point. Thin: every command calls a service function.

Failures end with a one-line reason on stderr and a non-zero exit; nothing half-done is left
behind (each service writes atomically).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warehouse.paths import Paths, get_paths

if TYPE_CHECKING:
    from lendguard.pipeline import PipelineRun

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

console = Console()
errors = Console(stderr=True)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CRITICAL = 3
"""`lendguard monitor` found new critical alerts (and switched the API to failover)."""


class CommandError(RuntimeError):
    """A command could not do its job; the message says why in one line or a short list."""


def cmd_simulate(args: argparse.Namespace) -> None:
    from warehouse.importer import land_simulated  # noqa: PLC0415

    with console.status(f"simulating {args.loans:,} loans (seed {args.seed})"):
        result = land_simulated(get_paths(), args.loans, args.seed)
    console.print(f"landed {result.rows:,} simulated loans as snapshot [bold]{result.snapshot_id}[/]")


def cmd_import(args: argparse.Namespace) -> None:
    from warehouse.importer import import_loan_book  # noqa: PLC0415

    with console.status(f"checking {args.file} against {args.schema}"):
        result = import_loan_book(get_paths(), Path(args.file), Path(args.schema))
    console.print(f"imported {result.rows:,} loans as snapshot [bold]{result.snapshot_id}[/]")


def cmd_build(args: argparse.Namespace) -> None:
    from warehouse.build import build  # noqa: PLC0415

    with console.status("dbt build"):
        result = build(get_paths(), select=args.select, full_refresh=args.full_refresh)
    run = result.run
    passed = sum(1 for r in run.results if r["status"] in {"success", "pass"})
    console.print(f"dbt build: {passed} ok, {len(run.warnings)} warnings, {len(run.failures)} failures")
    for failure in run.failures:
        errors.print(f"  [red]{failure['status']}[/] {failure['unique_id']}: {escape(str(failure['message']))}")
    console.print(f"published {result.snapshot}")
    if not result.ok:
        raise CommandError(f"{len(run.failures)} dbt node(s) failed (listed above)")


def cmd_compact_log(args: argparse.Namespace) -> None:
    from warehouse.build import build_lock, compact_prediction_log  # noqa: PLC0415

    paths = get_paths()
    with console.status("compacting the prediction log"), build_lock(paths):
        result = compact_prediction_log(paths, min_age_seconds=args.min_age)
    console.print(f"prediction log: {result.source_files:,} files merged into {result.merged_files:,} "
                  f"({result.rows:,} rows, {result.duplicates_dropped:,} duplicates dropped, "
                  f"{result.recovered_sources:,} left by an interrupted run removed)")


def cmd_train(_: argparse.Namespace) -> None:
    from lendguard import pipeline  # noqa: PLC0415

    paths = get_paths()
    run = pipeline.start_run(paths)
    for stage in ("train", "thresholds", "evaluate"):
        with console.status(f"{stage}"):
            pipeline.run_stage(paths, run, stage)
        console.print(f"{stage}: done")
    console.print(f"registered version [bold]{run.version}[/] as candidate (pipeline run {run.run_id}); "
                  "next: `lendguard pipeline stage gate` or `lendguard pipeline run`")


def _print_stage(name: str) -> None:
    console.print(f"[bold]{name}[/] …")


def cmd_pipeline_run(args: argparse.Namespace) -> None:
    from lendguard import pipeline  # noqa: PLC0415

    paths = get_paths()
    run = pipeline.run_pipeline(paths, supersede=args.supersede, on_stage=_print_stage)
    console.print(f"pipeline run {run.run_id}: version [bold]{run.version}[/] passed the gate and the dev tests "
                  f"and awaits approval:\n  lendguard approve {run.version} --by NAME --note TEXT\n"
                  f"  lendguard reject {run.version} --by NAME --note TEXT")
    if args.wait:
        console.print("waiting for the decision …")
        run = pipeline.wait_for_decision(paths, run.run_id, timeout=args.timeout)
        console.print(f"pipeline run {run.run_id}: {run.status}")
        if run.status != pipeline.DEPLOYED:
            raise CommandError(f"version {run.version} was not deployed: {run.reason}")


def cmd_pipeline_stage(args: argparse.Namespace) -> None:
    from lendguard import pipeline  # noqa: PLC0415

    paths = get_paths()
    if args.name == "train":
        run = pipeline.start_run(paths, supersede=args.supersede)
    else:
        current = pipeline.latest(paths)
        if current is None:
            raise CommandError("no pipeline run yet: start one with `lendguard pipeline stage train`")
        run = current
    if args.name == "deploy-prod":
        _deploy_prod(paths, run)
        return
    with console.status(args.name):
        pipeline.run_stage(paths, run, args.name)
    console.print(f"{args.name}: {run.stage(args.name)['status']} (pipeline run {run.run_id}, version {run.version})")


def _deploy_prod(paths: Paths, run: PipelineRun) -> None:
    """``approve`` deploys; this stage command (CI servers call it) confirms or retries that."""
    from lendguard import pipeline  # noqa: PLC0415
    from ml import registry  # noqa: PLC0415

    if run.status == pipeline.DEPLOYED:
        console.print(f"deploy-prod: version {run.version} is already deployed (pipeline run {run.run_id})")
        return
    if run.version is None or registry.alias_version(paths, "champion") != run.version:
        raise CommandError(f"version {run.version} is not approved: deploy-prod follows "
                           "`lendguard approve VERSION --by NAME --note TEXT`")
    run.status = pipeline.RUNNING
    pipeline.run_stage(paths, run, "deploy-prod")
    run.status = pipeline.DEPLOYED
    pipeline.save(paths, run)
    console.print(f"deploy-prod: version {run.version} deployed (pipeline run {run.run_id})")


def _decide(args: argparse.Namespace, *, approve: bool) -> None:
    from lendguard import pipeline  # noqa: PLC0415

    run = pipeline.decide(get_paths(), args.version, approve=approve, by=args.by, note=args.note)
    verb = "approved" if approve else "rejected"
    tail = "" if run is None else f"; pipeline run {run.run_id} is {run.status}"
    console.print(f"version {args.version} {verb} by {args.by}{tail}")


def cmd_approve(args: argparse.Namespace) -> None:
    _decide(args, approve=True)


def cmd_reject(args: argparse.Namespace) -> None:
    _decide(args, approve=False)


def cmd_serve(args: argparse.Namespace) -> None:
    from api.server import serve  # noqa: PLC0415

    serve(host=args.host, port=args.port, alias=args.alias, workers=args.workers)


def cmd_api_key_create(args: argparse.Namespace) -> None:
    from api.auth import create_key  # noqa: PLC0415
    from api.settings import ENV_API_KEYS_FILE  # noqa: PLC0415

    target = args.file or os.environ.get(ENV_API_KEYS_FILE, "").strip()
    if not target:
        raise CommandError(f"no keys file: pass --file PATH or set {ENV_API_KEYS_FILE}")
    key = create_key(Path(target), args.name, args.scope)
    errors.print(f"key {args.name!r} ({', '.join(dict.fromkeys(args.scope))}) added to {target}; "
                 "it is shown once, below, and stored nowhere:")
    sys.stdout.write(key + "\n")


def cmd_scenarios(_: argparse.Namespace) -> None:
    from warehouse.simulator import SCENARIOS  # noqa: PLC0415

    table = Table("scenario", "from request", "what changes")
    for scenario in SCENARIOS.values():
        table.add_row(scenario.name, "-" if scenario.onset is None else f"{scenario.onset:,}", scenario.changes)
    console.print(table)


def cmd_replay(args: argparse.Namespace) -> None:
    from lendguard.demo import replay_scenario  # noqa: PLC0415

    result = replay_scenario(args.url, args.scenario, args.requests, seed=args.seed, onset=args.onset,
                             concurrency=args.concurrency, console=console)
    if result.ok != result.sent:
        raise CommandError(f"{result.sent - result.ok} of {result.sent} requests failed: {result.failures[:3]}")


def cmd_status(args: argparse.Namespace) -> None:
    from lendguard.status import collect_status  # noqa: PLC0415

    state = collect_status(get_paths())
    if args.json:
        sys.stdout.write(json.dumps(state, indent=2) + "\n")
        return
    from lendguard.status import print_status  # noqa: PLC0415

    print_status(state, console)


def cmd_dashboard(args: argparse.Namespace) -> None:
    from api.dashboard.export import export_dashboard  # noqa: PLC0415

    out = Path(args.out)
    with console.status("rendering the dashboard from the published snapshot"):
        view = export_dashboard(get_paths(), out, version=args.version, window=args.window)
    rows = ", ".join(f"{panel} {n:,} rows" for panel, n in view.panel_rows.items())
    console.print(f"wrote {out} (model version {view.version or 'none'}; {rows}); it opens offline")


def cmd_export_marts(args: argparse.Namespace) -> None:
    from warehouse.exports import export_marts  # noqa: PLC0415

    with console.status("exporting the marts from the published snapshot"):
        written = export_marts(get_paths(), Path(args.out))
    console.print(f"wrote {len(written)} Parquet files to {args.out}: {', '.join(p.stem for p in written)}")


def cmd_demo(args: argparse.Namespace) -> None:
    from lendguard.demo import run_demo  # noqa: PLC0415

    run_demo(
        loans=args.loans, scenario=args.scenario, requests=args.requests, port=args.port,
        keep_serving=args.keep_serving, console=console,
    )


def _print_monitor_report(report: object) -> None:
    from lendguard.monitor import MonitorReport  # noqa: PLC0415

    assert isinstance(report, MonitorReport)
    counts = f"{len(report.alerts)} open alert(s), {len(report.new_alerts)} new ({len(report.critical_new)} critical)"
    console.print(f"monitor run {report.monitor_run_id}: [bold]{report.status}[/] — {counts}")
    for alert in report.new_alerts:
        style = "red" if alert.critical else "yellow"
        console.print(f"  [{style}]{escape(alert.line())}[/]")
    for delivery in report.deliveries:
        state = "sent" if delivery.ok else f"NOT sent ({delivery.error})"
        console.print(f"  notification by {delivery.channel} to {delivery.target}: {escape(state)}")
    if report.new_alerts and not report.deliveries:
        console.print("  notifications are not configured (LENDGUARD_SMTP_HOST / LENDGUARD_WEBHOOK_URL): recorded only")
    if report.failover_set:
        console.print("  [red bold]failover set[/]: the API applies its fallback until a person runs "
                      "`lendguard failover clear --by NAME --note TEXT`")
    elif report.failover_active:
        console.print("  failover is active (set earlier); `lendguard failover status` says why")
    for failure in report.dbt_failures:
        errors.print(f"  [red]{failure['status']}[/] {failure['unique_id']}: {escape(str(failure['message']))}")


def cmd_monitor(args: argparse.Namespace) -> int:
    """Exit 0: ran, no new critical alert; 3: new critical alert(s) (failover set); 1: dbt nodes failed."""
    from lendguard import monitor  # noqa: PLC0415

    paths = get_paths()
    if args.every is None:
        with console.status("monitoring: dbt build with the monitor checks"):
            report = monitor.run_monitor(paths)
        if args.json:
            sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        else:
            _print_monitor_report(report)
        if report.critical_new:
            return EXIT_CRITICAL
        return EXIT_FAILED if report.dbt_failures else 0
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    interval = monitor.parse_duration(args.every)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        errors.print(f"{signal.Signals(signum).name}: stopping after the current run (again to abort)")
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    console.print(f"monitoring every {args.every} ({interval:.0f} s); Ctrl-C or SIGTERM stops it")
    try:
        runs = monitor.run_every(
            paths, interval, stop, on_report=_print_monitor_report,
            on_error=lambda exc: errors.print(f"[red]monitor run failed:[/] {escape(str(exc).splitlines()[0])}"),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(f"stopped after {runs} run(s)")
    return 0


def cmd_failover(args: argparse.Namespace) -> None:
    from warehouse import failover  # noqa: PLC0415

    paths = get_paths()
    if args.failover_command == "set":
        state = failover.set_failover(paths, by=args.by, reason=args.reason, fallback=args.fallback)
        console.print(f"failover [red bold]set[/] by {escape(args.by)}: every API reading {paths.data_dir} "
                      f"applies {state.fallback} until `lendguard failover clear --by NAME --note TEXT`")
        return
    if args.failover_command == "clear":
        before = failover.read_failover(paths)
        failover.clear_failover(paths, by=args.by, note=args.note)
        was = "" if before.active else " (it was not active; the decision is recorded anyway)"
        console.print(f"failover cleared by {escape(args.by)}: the API returns to the model's decisions{was}")
        return
    state = failover.read_failover(paths)
    if args.json:
        sys.stdout.write(json.dumps(asdict(state), indent=2) + "\n")
    elif state.active:
        console.print(f"failover [red bold]ACTIVE[/] ({state.fallback}) since {state.set_at}, set by {state.set_by}: "
                      f"{escape(state.reason or '')}; alerts: {', '.join(state.alert_ids) or 'none'}")
    elif state.cleared_at:
        console.print(f"failover off: cleared by {state.cleared_by} at {state.cleared_at} "
                      f"({escape(state.clear_note or '')})")
    else:
        console.print("failover off (never set)")


def cmd_outcomes(args: argparse.Namespace) -> None:
    from warehouse import outcomes  # noqa: PLC0415

    paths = get_paths()
    if args.simulate:
        if args.file:
            raise CommandError("give a FILE or --simulate, not both")
        with console.status("simulating outcomes for the logged decisions"):
            result = outcomes.simulate_outcomes(paths, seed=args.seed)
    elif args.file:
        with console.status(f"checking {args.file}"):
            result = outcomes.import_outcomes(paths, Path(args.file))
    else:
        raise CommandError("give an outcomes FILE (.csv or .parquet) or --simulate")
    console.print(f"landed {result.rows:,} outcomes ({result.defaults:,} defaulted) as batch "
                  f"[bold]{result.batch_id}[/]; `lendguard build` or `lendguard monitor` brings them into "
                  "mon_realised_quality")


def _add_monitoring_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add: Callable[[str, Callable[[argparse.Namespace], object], str], argparse.ArgumentParser],
) -> None:
    """``monitor``, ``failover`` and ``outcomes``."""
    monitor = add("monitor", cmd_monitor, "build the monitoring marts, run the checks, notify new alerts, "
                  "set failover on critical ones (exit 3 when a new critical alert was found)")
    monitor.add_argument("--every", metavar="DURATION", help="keep running every DURATION (15m, 1h, 90s) until stopped")
    monitor.add_argument("--json", action="store_true", help="print the run's report as JSON (single run)")

    failover_parser = sub.add_parser("failover", help="the API's failover flag: status, set, clear (a person's call)")
    failover_sub = failover_parser.add_subparsers(dest="failover_command", required=True, metavar="COMMAND")
    failover_status = failover_sub.add_parser("status", help="is failover on, since when, who set it and why")
    failover_status.set_defaults(handler=cmd_failover)
    failover_status.add_argument("--json", action="store_true")
    failover_set = failover_sub.add_parser("set", help="switch the API to its fallback now (recorded)")
    failover_set.set_defaults(handler=cmd_failover)
    failover_set.add_argument("--by", required=True, help="your name")
    failover_set.add_argument("--reason", required=True, help="why")
    failover_set.add_argument("--fallback", default="manual_review", choices=["manual_review", "previous_champion"])
    failover_clear = failover_sub.add_parser("clear", help="back to the model's decisions (a person's call, recorded)")
    failover_clear.set_defaults(handler=cmd_failover)
    failover_clear.add_argument("--by", required=True, help="your name")
    failover_clear.add_argument("--note", required=True, help="why it is safe to return to the model")

    outcomes = add("outcomes", cmd_outcomes, "land loan outcomes (request_id, defaulted, optional outcome_at) "
                   "from a CSV/Parquet file, checked whole first; or --simulate them for the logged decisions")
    outcomes.add_argument("file", nargs="?", help=".csv or .parquet with request_id, defaulted[, outcome_at]")
    outcomes.add_argument("--simulate", action="store_true", help="draw outcomes from the simulator's truth")
    outcomes.add_argument("--seed", type=int, default=17, help="with --simulate")


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - every command's options in one place
    parser = argparse.ArgumentParser(
        prog="lendguard", description="Fair loan-risk scoring, delivered and monitored inside the data warehouse."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], object], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    simulate = add("simulate", cmd_simulate, "land a simulated (seeded) loan book as the current one")
    simulate.add_argument("--loans", type=int, default=100_000, help="number of loans (default 100,000)")
    simulate.add_argument("--seed", type=int, default=42)

    importer = add("import", cmd_import, "check a CSV or Parquet loan book against its schema and land it")
    importer.add_argument("file")
    importer.add_argument("--schema", required=True, help="YAML declaring the columns (see warehouse/schemas/)")

    build = add("build", cmd_build, "run dbt build on the landed data and publish the read-only snapshot")
    build.add_argument("--select", nargs="+", help="dbt selection (default: everything)")
    build.add_argument("--full-refresh", action="store_true",
                       help="rebuild the incremental models (monitoring marts) from the whole log")

    compact_log = add("compact-log", cmd_compact_log,
                      "merge the prediction log's small files (also done by every build)")
    compact_log.add_argument("--min-age", type=float, default=60.0,
                             help="only files closed at least this many seconds ago (default 60)")

    add("train", cmd_train, "train, choose thresholds, evaluate and register a candidate (pipeline stages 1-3)")

    pipeline = sub.add_parser("pipeline", help="the model-delivery pipeline").add_subparsers(
        dest="pipeline_command", required=True, metavar="COMMAND")
    run = pipeline.add_parser("run", help="train → thresholds → evaluate → gate → deploy-dev → test-dev → "
                              "request-approval (then wait for `lendguard approve`)")
    run.set_defaults(handler=cmd_pipeline_run)
    run.add_argument("--wait", action="store_true", help="block until a person approves or rejects")
    run.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds")
    run.add_argument("--supersede", action="store_true", help="abandon a run that is still open")
    stage = pipeline.add_parser("stage", help="run one stage of the current pipeline run (CI servers)")
    stage.set_defaults(handler=cmd_pipeline_stage)
    stage.add_argument("name", choices=["train", "thresholds", "evaluate", "gate", "deploy-dev", "test-dev",
                                        "request-approval", "deploy-prod"])
    stage.add_argument("--supersede", action="store_true", help="with train: abandon a run that is still open")

    for verb, handler in (("approve", cmd_approve), ("reject", cmd_reject)):
        decision = add(verb, handler, f"{verb} a candidate version (a person's decision, recorded)")
        decision.add_argument("version")
        decision.add_argument("--by", required=True, help="your name")
        decision.add_argument("--note", required=True, help="why")

    serve = add("serve", cmd_serve, "run the scoring API (Litestar under uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--alias", default="champion", help="model alias to serve")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes on the one port (one per core; they share idempotency answers)")

    _add_api_key_commands(sub)

    add("scenarios", cmd_scenarios, "list the simulator's traffic scenarios")

    replay = add("replay", cmd_replay, "send a simulated traffic scenario to a running API")
    replay.add_argument("--url", default="http://127.0.0.1:8000")
    replay.add_argument("--scenario", default="stable")
    replay.add_argument("--requests", type=int, default=3_000)
    replay.add_argument("--seed", type=int, default=7)
    replay.add_argument("--onset", type=int, default=None, help="first affected request (default: the scenario's)")
    replay.add_argument("--concurrency", type=int, default=16)

    _add_monitoring_commands(sub, add)

    dashboard = add("dashboard", cmd_dashboard, "write the monitoring dashboard as one self-contained HTML file "
                    "(opens offline; the API serves the same page at /dashboard)")
    dashboard.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write (atomically)")
    dashboard.add_argument("--version", help="model version of the drift and output panels (default: the champion)")
    dashboard.add_argument("--window", choices=["latest", "deployment"], default="latest",
                           help="drift and output panels: the latest count window (default) or the whole deployment")
    export = add("export-marts", cmd_export_marts, "copy the mon_* and dlv_* marts of the published snapshot "
                 "to Parquet files, for BI tools")
    export.add_argument("--out", required=True, metavar="DIR")

    status = add("status", cmd_status, "show where everything is and what state it is in")
    status.add_argument("--json", action="store_true", help="stable machine-readable form")

    demo = add("demo", cmd_demo, "simulate → build → train → serve → replay → build, then summarise")
    demo.add_argument("--loans", type=int, default=100_000)
    demo.add_argument("--scenario", default="economic_shock")
    demo.add_argument("--requests", type=int, default=4_000)
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--keep-serving", action="store_true", help="leave the API up at the end")
    return parser


def _add_api_key_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api_key = sub.add_parser("api-key", help="API keys (stored as SHA-256 hashes in LENDGUARD_API_KEYS_FILE)")
    commands = api_key.add_subparsers(dest="api_key_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="mint a key, print it once, store its hash")
    create.set_defaults(handler=cmd_api_key_create)
    create.add_argument("name", help="who holds the key (recorded as the actor of admin calls)")
    create.add_argument("--scope", action="append", choices=["score", "admin"], required=True,
                        help="repeat for several: score (scoring routes), admin (/v1/admin/...)")
    create.add_argument("--file", help="keys file (default: $LENDGUARD_API_KEYS_FILE)")


def _known_errors() -> tuple[type[BaseException], ...]:
    from duckdb import Error as DuckDBError  # noqa: PLC0415

    from lendguard.pipeline import PipelineBusyError, StageFailedError  # noqa: PLC0415
    from ml.delivery import GateRefusedError  # noqa: PLC0415
    from warehouse.build import NoLoanBookError  # noqa: PLC0415
    from warehouse.dbt import DbtError  # noqa: PLC0415
    from warehouse.importer import ImportRejectedError  # noqa: PLC0415
    from warehouse.loan_book import LoanBookSchemaError  # noqa: PLC0415
    from warehouse.publish import SnapshotMissingError  # noqa: PLC0415

    return (CommandError, NoLoanBookError, DbtError, ImportRejectedError, LoanBookSchemaError,
            SnapshotMissingError, StageFailedError, PipelineBusyError, GateRefusedError, TimeoutError,
            ValueError, LookupError, OSError, DuckDBError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    except _known_errors() as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_FAILED
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
