"""The command line: help that explains itself, one-line expected failures, bugs that show as bugs,
output that survives Rich markup, and ``--json`` that parses."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from lendguard import cli, pipeline
from lendguard.monitor import Alert, MonitorReport
from lendguard.status import collect_status, print_status
from tests.support.deployment import deployment_env
from tests.support.servers import free_port
from warehouse.errors import LendguardError
from warehouse.freshness import LogFreshness
from warehouse.paths import Paths, get_paths
from warehouse.settings import get_settings
from warehouse.simulator import SCENARIOS


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty deployment the in-process CLI points at."""
    data_dir = tmp_path / "data"
    for name, value in deployment_env(data_dir).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # the in-process CLI reads its settings once per process: start afresh
    get_paths.cache_clear()
    yield data_dir
    get_settings.cache_clear()
    get_paths.cache_clear()


def commands(
    group: click.Group = cli.cli, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


ALL_COMMANDS = sorted(path for path, _ in commands())


def test_the_commands_the_docs_and_ci_use_exist() -> None:
    expected = {
        "simulate", "import", "build", "compact-log", "train", "pipeline", "pipeline run", "pipeline stage",
        "approve", "reject", "serve", "api-key", "api-key create", "scenarios", "replay", "monitor", "failover",
        "failover status", "failover set", "failover clear", "outcomes", "dashboard", "export-marts", "status", "demo",
            "config", "dashboard serve", "doctor", "report", "reference-data", "reference-data load", "upgrade",
    }
    assert {" ".join(path) for path in ALL_COMMANDS} == expected


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_explains_itself_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli.cli, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"lendguard {' '.join(path)}" in result.output.split("Examples:")[1]
    command = dict(commands())[path]
    ctx = click.Context(command, info_name=path[-1], show_default=True)
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
            if not param.is_flag and not param.required:
                record = param.get_help_record(ctx)
                assert record is not None
                assert "default:" in record[1], f"{param.opts[0]} shows no default"


def test_enumerations_list_their_values_from_their_source() -> None:
    replay = CliRunner().invoke(cli.cli, ["replay", "--help"], terminal_width=300).output
    assert all(name in replay for name in SCENARIOS)
    stage = CliRunner().invoke(cli.cli, ["pipeline", "stage", "--help"], terminal_width=300).output
    assert all(name in stage for name, *_ in pipeline.STAGES)
    unknown = CliRunner().invoke(cli.cli, ["pipeline", "stage", "retrain"])
    assert unknown.exit_code == 2
    assert "'retrain' is not one of" in unknown.stderr


def test_version() -> None:
    result = CliRunner().invoke(cli.cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"lendguard, version {version('lendguard')}"


@pytest.fixture
def extra_command() -> Iterator[click.Group]:
    """A command raising what a test says, added to the real group for one test."""
    yield cli.cli
    cli.cli.commands.pop("raise", None)


def raising(exc: BaseException) -> click.Command:
    @cli.cli.command("raise")
    def raise_() -> None:
        raise exc

    return raise_


def test_an_expected_failure_is_one_literal_line_and_its_exit_code(extra_command: click.Group) -> None:
    raising(LendguardError("drift in [annual_income] ([bold]not bold[/])", exit_code=5))
    result = CliRunner().invoke(extra_command, ["raise"])
    assert result.exit_code == 5
    assert result.stderr == "error: drift in [annual_income] ([bold]not bold[/])\n"
    assert result.stdout == ""


def test_verbose_adds_the_traceback(extra_command: click.Group) -> None:
    raising(LendguardError("the gate refused"))
    result = CliRunner().invoke(extra_command, ["-v", "raise"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith("error: the gate refused\n")


def test_a_bug_is_not_swallowed(extra_command: click.Group) -> None:
    raising(KeyError("annual_income"))
    result = CliRunner().invoke(extra_command, ["raise"])
    assert isinstance(result.exception, KeyError)
    assert "error:" not in result.stderr
    with pytest.raises(KeyError, match="annual_income"):
        cli.main(["raise"])


def test_interrupted(extra_command: click.Group) -> None:
    raising(KeyboardInterrupt())
    result = CliRunner().invoke(extra_command, ["raise"])
    assert result.exit_code == cli.EXIT_INTERRUPTED == 130
    assert result.stderr == "interrupted\n"


def test_a_real_service_failure_exits_one_with_one_line(deployment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["build"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no loan book in ")
    assert len(err.strip().splitlines()) == 1, err
    assert cli.main(["-v", "build"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "NoLoanBookError" in err


def test_usage_errors_exit_two(deployment: Path) -> None:
    result = CliRunner().invoke(cli.cli, ["approve", "7", "--by", "someone"])
    assert result.exit_code == 2
    assert "Missing option '--note'" in result.stderr
    blank = CliRunner().invoke(cli.cli, ["approve", "7", "--by", " ", "--note", "why"])
    assert blank.exit_code == 2
    assert "must not be blank" in blank.stderr
    every = CliRunner().invoke(cli.cli, ["monitor", "--every", "soon"])
    assert every.exit_code == 2
    assert "not a duration" in every.stderr
    stray = CliRunner().invoke(cli.cli, ["build", "models/staging"])
    assert stray.exit_code == 2, "selectors follow --select"
    assert "unexpected argument(s): models/staging" in stray.stderr


def test_alert_lines_keep_bracketed_names(capsys: pytest.CaptureFixture[str]) -> None:
    report = MonitorReport(monitor_run_id="run-[1]", started_at=datetime(2026, 1, 5, 10))
    drift = Alert(alert_id="a1", check_name="drift_ks", subject="[annual_income]", model_version="1",
                  window_kind="count", window_start=datetime(2026, 1, 5, 8), window_end=datetime(2026, 1, 5, 9),
                  value=0.4, threshold=0.2, severity="warn", details="{}")
    report.alerts = report.new_alerts = [drift]
    cli._print_monitor_report(report)  # `lendguard monitor`'s printer, no warehouse
    out = capsys.readouterr().out
    assert "[annual_income]" in out
    assert "run-[1]" in out


def test_a_dead_logger_shows_in_the_monitor_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = MonitorReport(monitor_run_id="run-2", started_at=datetime(2026, 1, 5, 10))
    report.log_freshness = LogFreshness(status="error", newest_received_at=datetime(2026, 1, 4, 4),
                                        age_seconds=30 * 3600, warn_after="1 hour", error_after="24 hour")
    cli._print_monitor_report(report)
    out = " ".join(capsys.readouterr().out.split())  # the console wraps at its width
    assert "prediction log: newest row received 30.0 h ago (error; warn after 1 hour, error after 24 hour)" in out
    assert report.to_json()["prediction_log_freshness"] == {
        "status": "error", "age_seconds": 30 * 3600, "newest_received_at": "2026-01-04T04:00:00"}


def test_the_model_report_summary_is_a_table_and_a_path_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    summary = {
        "version": "3", "model": "logreg_[c1]", "max_fpr_gap": 0.05, "top_features": ["credit_score", "[x]"],
        "monotone": "none declared", "warnings": [],
        "policies": [{"policy": "group_thresholds", "deployed": True, "cost_per_applicant": 0.4429, "fpr_gap": 0.0357,
                      "auc": 0.8132, "tpr": 0.657},
                     {"policy": "single_threshold", "deployed": False, "cost_per_applicant": 0.4244,
                      "fpr_gap": None, "auc": 0.8132, "tpr": 0.6813}],
        "champion": {"version": "2", "cost_per_applicant": 0.45, "fpr_gap": 0.04, "auc": 0.8,
                     "changed_decisions": 0.031},
    }
    path = "/a/very/long/data/directory/that/would/not/fit/in/eighty/columns/reports/model-3.html"
    cli._print_report_summary(summary, path)  # what `pipeline run` and `report` print, no warehouse
    out = capsys.readouterr().out
    assert "logreg_[c1]" in out
    assert "top features: credit_score, [x]" in out
    for cell in ("group_thresholds (deployed)", "0.4429", "0.0357", "0.6813", "champion 2", "0.4500"):
        assert cell in out, cell
    assert "3.1% of test decisions differ from the champion's" in out
    assert f"report: {path}\n" in out


def test_json_outputs_parse(deployment: Path) -> None:
    status = CliRunner().invoke(cli.cli, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["snapshot"]["exists"] is False
    flag = CliRunner().invoke(cli.cli, ["failover", "status", "--json"])
    assert flag.exit_code == 0, flag.output
    assert json.loads(flag.stdout)["active"] is False


@pytest.mark.slow
def test_build_selection_json_and_export(deployment: Path, tmp_path: Path) -> None:
    """A selection that matches nothing fails and publishes nothing; a real build and export print JSON."""
    runner = CliRunner()
    assert runner.invoke(cli.cli, ["simulate", "--loans", "2000", "--seed", "3"]).exit_code == 0
    nothing = runner.invoke(cli.cli, ["build", "--select", "no_such_model", "path:models/nowhere"])
    assert nothing.exit_code == 1
    assert nothing.stderr == "error: --select no_such_model path:models/nowhere matches no dbt node: " \
                             "nothing was built or published\n"
    assert not Paths.from_env({"LENDGUARD_DATA_DIR": str(deployment)}).snapshot.exists()

    built = runner.invoke(cli.cli, ["build", "--json"])
    assert built.exit_code == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["ok"] is True
    assert summary["failures"] == []
    assert summary["passed"] > 50
    assert Path(summary["snapshot"]).exists()

    exported = runner.invoke(cli.cli, ["export-marts", "--out", str(tmp_path / "marts"), "--json"])
    assert exported.exit_code == 0, exported.stderr
    files = json.loads(exported.stdout)["files"]
    assert files
    assert all(Path(f).suffix == ".parquet" and Path(f).exists() for f in files)


def test_shell_completion_offers_commands_and_values() -> None:
    def complete(words: str) -> list[str]:
        env = {"_LENDGUARD_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        result = CliRunner().invoke(cli.cli, [], env=env, prog_name="lendguard")
        assert result.exit_code == 0, result.output
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]

    assert complete("lendguard repl") == ["replay"]
    assert complete("lendguard rep") == ["replay", "report"]
    assert complete("lendguard replay --scenario econ") == ["economic_shock"]
    assert complete("lendguard pipeline stage deploy") == ["deploy-dev", "deploy-prod"]


def test_replay_to_a_stopped_api_is_one_line_and_no_summary(deployment: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = CliRunner()
    assert runner.invoke(cli.cli, ["simulate", "--loans", "1000"]).exit_code == 0
    result = runner.invoke(cli.cli, ["replay", "--url", f"http://127.0.0.1:{port}", "--requests", "5"])
    assert result.exit_code == 1
    assert "replayed" not in result.stdout
    assert result.stderr.startswith(f"error: no answer from http://127.0.0.1:{port} to any of the 5 requests: ")
    assert len(result.stderr.splitlines()) == 1


def test_status_prints_data_not_markup(deployment: Path) -> None:
    state = collect_status(get_paths())
    state["pipeline"] = {"run_id": "r-1", "status": "failed", "version": "2", "stages": [],
                         "reason": "gate failed: [annual_income] moved, [bold]x[/bold]"}
    console = Console(record=True, width=300)
    print_status(state, console)
    assert "gate failed: [annual_income] moved, [bold]x[/bold]" in console.export_text()


def test_third_party_loggers_are_quiet_unless_verbose(extra_command: click.Group) -> None:
    @extra_command.command("raise")
    def log_some() -> None:
        logging.getLogger("alembic.runtime.migration").info("Running upgrade")
        logging.getLogger("mlflow.store").warning("mlflow chatter")
        logging.getLogger("urllib3.connectionpool").error("connection refused")
        logging.getLogger("lendguard.pipeline").warning("our own warning")
        logging.getLogger("lendguard.pipeline").debug("our own detail")

    quiet = CliRunner().invoke(extra_command, ["raise"]).stderr
    assert "our own warning" in quiet
    assert "connection refused" in quiet, "anyone's errors are shown"
    assert "mlflow chatter" not in quiet
    assert "Running upgrade" not in quiet
    assert "our own detail" not in quiet
    verbose = CliRunner().invoke(extra_command, ["-v", "raise"]).stderr
    assert all(text in verbose for text in ("Running upgrade", "mlflow chatter", "our own detail"))


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def one_line_naming(result: Result, port: int) -> str:
    """The one ``error:`` line a busy port gives, checked to name the port and this process as its holder."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: port {port} is already in use by pid {os.getpid()} ("), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("which", ["--port", "--dev-port"])
def test_the_demo_refuses_a_busy_port_before_doing_anything(deployment: Path, busy_port: int, which: str) -> None:
    ports = {"--port": str(free_port()), "--dev-port": str(free_port()), which: str(busy_port)}
    result = CliRunner().invoke(cli.cli, ["demo", *(item for pair in ports.items() for item in pair)])
    assert one_line_naming(result, busy_port).endswith("give the demo other ports: make demo PORT=8100 DEV_PORT=8101 "
                                                       "(lendguard demo --port --dev-port)\n")
    assert not deployment.exists(), "nothing was simulated, built or trained"


def test_the_demo_needs_two_ports(deployment: Path) -> None:
    port = str(free_port())
    result = CliRunner().invoke(cli.cli, ["demo", "--port", port, "--dev-port", port])
    assert result.exit_code == 2
    assert f"the demo's API and its dev API need two ports, got {port} for both" in result.stderr


def test_the_demo_ports_come_from_the_settings(deployment: Path, busy_port: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENDGUARD_DEV_API_PORT", str(busy_port))
    monkeypatch.setenv("LENDGUARD_API_PORT", str(free_port()))
    get_settings.cache_clear()
    one_line_naming(CliRunner().invoke(cli.cli, ["demo"]), busy_port)


def test_serve_and_dashboard_serve_refuse_a_busy_port(deployment: Path, busy_port: int) -> None:
    served = one_line_naming(CliRunner().invoke(cli.cli, ["serve", "--port", str(busy_port)]), busy_port)
    assert served.endswith("stop it or choose another port (--port or LENDGUARD_API_PORT)\n")
    every_interface = CliRunner().invoke(cli.cli, ["serve", "--host", "0.0.0.0", "--port", str(busy_port)])  # noqa: S104
    one_line_naming(every_interface, busy_port)
    dashboard = CliRunner().invoke(cli.cli, ["dashboard", "serve", "--port", str(busy_port)])
    assert one_line_naming(dashboard, busy_port).endswith("stop it or choose another port (--port)\n")


def test_pipeline_run_refuses_a_busy_dev_port_before_the_run_starts(
    deployment: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LENDGUARD_DEV_API_PORT", str(busy_port))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli.cli, ["pipeline", "run"])
    assert one_line_naming(result, busy_port).endswith("give the dev API another port (LENDGUARD_DEV_API_PORT)\n")
    assert pipeline.latest(get_paths()) is None, "no run was started (so none is left open)"


def test_the_help_names_the_data_directory_and_every_demo_step() -> None:
    top = CliRunner().invoke(cli.cli, ["--help"], terminal_width=200).output
    assert "$LENDGUARD_DATA_DIR" in top
    demo = CliRunner().invoke(cli.cli, ["demo", "--help"], terminal_width=200).output
    steps = ["simulate", "build", "pipeline", "serve", "replay", "monitor", "dashboard"]
    for number, step in enumerate(steps, start=1):
        assert f"\n  {number}. {step}" in demo, step
    assert "make demo PORT=8100 DEV_PORT=8101" in demo


def test_dashboard_out_onto_an_existing_file_says_why_in_one_line(deployment: Path, tmp_path: Path) -> None:
    existing = tmp_path / "report.html"
    existing.write_text("yesterday's page")
    refused = CliRunner().invoke(cli.cli, ["dashboard", "--out", str(existing)])
    assert refused.exit_code == 1
    assert refused.stderr == f"error: {existing} exists: pass --overwrite to replace it, or choose another --out\n"
    assert existing.read_text() == "yesterday's page"
    under_a_file = CliRunner().invoke(cli.cli, ["dashboard", "--out", str(existing / "page.html")])
    assert under_a_file.stderr == (f"error: cannot write {existing / 'page.html'}: {existing} is a file, "
                                   "not a directory\n")
    overwrite = CliRunner().invoke(cli.cli, ["dashboard", "--out", str(existing), "--overwrite"])
    assert overwrite.stderr.startswith("error: no published warehouse"), "past the check: nothing is built here"


@pytest.mark.parametrize(("args", "shown"), [(["pipeline", "stage", "gate"], False),
                                             (["-v", "pipeline", "stage", "gate"], True)])
def test_mlflow_prints_its_registrations_only_with_verbose(deployment: Path, args: list[str], shown: bool,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.utils import logging_utils  # MLflow (seconds): only this test

    monkeypatch.setattr(logging_utils, "MLFLOW_LOGGING_STREAM", logging_utils.MLFLOW_LOGGING_STREAM)  # restored after
    assert cli.main(args) == 1  # no pipeline run here; the command ran as far as its first check
    capsys.readouterr()
    logging_utils.enable_logging()  # as MLflow's own context managers do on their way out (log_model, autolog)
    logging_utils.eprint("Successfully registered model 'lendguard'.")  # as mlflow.register_model prints it
    assert ("Successfully registered model 'lendguard'." in capsys.readouterr().err) is shown
