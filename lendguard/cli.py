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

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warehouse.paths import get_paths

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


def cmd_train(args: argparse.Namespace) -> None:
    from ml.train import train  # noqa: PLC0415

    with console.status("training"):
        result = train(get_paths(), alias=args.alias)
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items() if k != "rows")
    console.print(f"registered version [bold]{result.version}[/] as {result.alias} (test split: {metrics})")


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

    train = add("train", cmd_train, "train on the warehouse's training set and register the model in MLflow")
    train.add_argument("--alias", default="champion")

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
    from warehouse.build import NoLoanBookError  # noqa: PLC0415
    from warehouse.dbt import DbtError  # noqa: PLC0415
    from warehouse.importer import ImportRejectedError  # noqa: PLC0415
    from warehouse.loan_book import LoanBookSchemaError  # noqa: PLC0415
    from warehouse.publish import SnapshotMissingError  # noqa: PLC0415

    return (CommandError, NoLoanBookError, DbtError, ImportRejectedError, LoanBookSchemaError,
            SnapshotMissingError, ValueError, LookupError, OSError)


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
