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
        result = build(get_paths(), select=args.select)
    run = result.run
    passed = sum(1 for r in run.results if r["status"] in {"success", "pass"})
    console.print(f"dbt build: {passed} ok, {len(run.warnings)} warnings, {len(run.failures)} failures")
    for failure in run.failures:
        errors.print(f"  [red]{failure['status']}[/] {failure['unique_id']}: {escape(str(failure['message']))}")
    console.print(f"published {result.snapshot}")
    if not result.ok:
        raise CommandError(f"{len(run.failures)} dbt node(s) failed (listed above)")


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

    serve(host=args.host, port=args.port, alias=args.alias)


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


def cmd_demo(args: argparse.Namespace) -> None:
    from lendguard.demo import run_demo  # noqa: PLC0415

    run_demo(
        loans=args.loans, scenario=args.scenario, requests=args.requests, port=args.port,
        keep_serving=args.keep_serving, console=console,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lendguard", description="Fair loan-risk scoring, delivered and monitored inside the data warehouse."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
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

    add("scenarios", cmd_scenarios, "list the simulator's traffic scenarios")

    replay = add("replay", cmd_replay, "send a simulated traffic scenario to a running API")
    replay.add_argument("--url", default="http://127.0.0.1:8000")
    replay.add_argument("--scenario", default="stable")
    replay.add_argument("--requests", type=int, default=3_000)
    replay.add_argument("--seed", type=int, default=7)
    replay.add_argument("--onset", type=int, default=None, help="first affected request (default: the scenario's)")
    replay.add_argument("--concurrency", type=int, default=16)

    status = add("status", cmd_status, "show where everything is and what state it is in")
    status.add_argument("--json", action="store_true", help="stable machine-readable form")

    demo = add("demo", cmd_demo, "simulate → build → train → serve → replay → build, then summarise")
    demo.add_argument("--loans", type=int, default=100_000)
    demo.add_argument("--scenario", default="economic_shock")
    demo.add_argument("--requests", type=int, default=4_000)
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--keep-serving", action="store_true", help="leave the API up at the end")
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    from lendguard.pipeline import PipelineBusyError, StageFailedError  # noqa: PLC0415
    from ml.delivery import GateRefusedError  # noqa: PLC0415
    from warehouse.build import NoLoanBookError  # noqa: PLC0415
    from warehouse.dbt import DbtError  # noqa: PLC0415
    from warehouse.importer import ImportRejectedError  # noqa: PLC0415
    from warehouse.loan_book import LoanBookSchemaError  # noqa: PLC0415
    from warehouse.publish import SnapshotMissingError  # noqa: PLC0415

    return (CommandError, NoLoanBookError, DbtError, ImportRejectedError, LoanBookSchemaError,
            SnapshotMissingError, StageFailedError, PipelineBusyError, GateRefusedError, TimeoutError,
            ValueError, LookupError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.handler(args)
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    except _known_errors() as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
