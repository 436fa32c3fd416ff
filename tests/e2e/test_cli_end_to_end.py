"""The real CLI and the real server process, end to end, in a deployment of their own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import duckdb
import httpx
import pytest

from lendguard.processes import serve_command, start_server
from tests.support.cli import E2E_BOOK, deployment_environment, lendguard, ok
from tests.support.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An empty deployment of the test's own."""
    return deployment_environment(tmp_path / "data")


class DemoRun(NamedTuple):
    env: dict[str, str]
    completed: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`lendguard demo` once (what `make demo` runs); the CLI test then carries on in its deployment,
    so the module trains the search space once, not twice."""
    env = deployment_environment(tmp_path_factory.mktemp("demo") / "data")
    # A guard against a hang, not a speed goal: the whole path took 6.5 min with both cores saturated.
    completed = lendguard(env, "demo", "--loans", str(E2E_BOOK), "--requests", "200", "--port", str(free_port()),
                          "--dev-port", env["LENDGUARD_DEV_API_PORT"], timeout=1200)
    return DemoRun(env, completed)


def test_demo_runs_the_whole_path_and_ends_by_itself(demo_run: DemoRun) -> None:
    demo = demo_run.completed
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}"
    out = demo.stdout
    assert "Successfully registered model" not in demo.stderr + out, "MLflow's own prints stay out without -v"
    assert "INFO" not in demo.stderr, "no library's INFO lines"
    tools = Path(sys.executable).parent
    assert f"MLflow: {tools / 'mlflow'} ui --backend-store-uri sqlite:///" in out, "runnable as printed"
    assert f"{tools / 'duckdb'} -readonly " in out
    assert (tools / "mlflow").exists()
    assert (tools / "duckdb").exists()
    assert "version 1 passed the gate and the dev tests" in out
    assert "approved as 'lendguard demo'" in out
    assert "200 of 200 scored" in out
    assert "mon_ops_hourly: 200 requests" in out
    assert "6/7 monitor:" in out, "the monitoring marts and checks ran"
    assert "score_loans rebuilt with version 1: 0 failures" in out
    snapshot = Path(demo_run.env["LENDGUARD_DATA_DIR"]) / "published" / "lendguard.duckdb"
    with duckdb.connect(str(snapshot), read_only=True) as con:
        scored = con.execute("select count(*), list(distinct model_version) from score_loans").fetchone()
    assert scored == (E2E_BOOK, ["1"]), "the demo's loan book is scored by the champion it approved"
    page = Path(demo_run.env["LENDGUARD_DATA_DIR"]) / "dashboard.html"
    assert "data-panel='ops'" in page.read_text(), "the dashboard was written"


def _logged_requests(snapshot: Path) -> tuple[int, int, int]:
    with duckdb.connect(str(snapshot), read_only=True) as con:
        requests, errors = con.execute("select sum(requests), sum(errors) from mon_ops_hourly").fetchone()
        distinct = con.execute("select count(distinct request_id) from int_requests").fetchone()[0]
    return int(requests), int(errors), int(distinct)


def serve_and_replay(env: dict[str, str], log_path: Path) -> None:
    """`lendguard serve` as its own process: 300 replayed applications and one refused body, then a
    graceful stop."""
    port = free_port()
    server = start_server(serve_command(port), port=port, log_path=log_path, env=env)
    url = server.url
    try:
        out = ok(env, "replay", "--url", url, "--scenario", "economic_shock", "--requests", "300", "--onset", "100")
        assert "replayed 300 'economic_shock' applications" in out
        bad = httpx.post(f"{url}/v1/score", json={"annual_income": -1})
        assert bad.status_code in {400, 422}
    finally:
        returncode = server.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells how it ended.
    server_log = log_path.read_text()
    assert returncode in {0, -signal.SIGTERM}, server_log[-2000:]
    assert "scorer closed" in server_log, "the server drained its scorer on the way out"


def test_build_deliver_approve_serve_replay_build_through_the_cli(demo_run: DemoRun, tmp_path: Path) -> None:
    """After the demo, the way an operator goes on: a new candidate through `pipeline run`, approved,
    served by its own process, replayed to and built."""
    assert demo_run.completed.returncode == 0, demo_run.completed.stderr
    env = demo_run.env
    snapshot = Path(env["LENDGUARD_DATA_DIR"]) / "published" / "lendguard.duckdb"
    build = json.loads(ok(env, "build", "--json"))
    assert build["ok"] is True
    assert build["failures"] == [], build["failures"]
    assert build["passed"] > 50, "the models and their tests ran"
    before = _logged_requests(snapshot)

    # One candidate, the one the demo's full search chose on this book (so the gate's verdict is known):
    # the search space was cross-validated by the demo's run; this one is about the CLI.
    chosen = json.loads(ok(env, "status", "--json"))["mlflow"]["aliases"]["champion"]["model"]
    delivered = ok(env, "pipeline", "run", "--candidates", chosen, timeout=600)
    assert "awaits approval" in delivered
    assert f"report: {Path(env['LENDGUARD_DATA_DIR']) / 'reports' / 'model-2.html'}" in delivered  # the approver's
    waiting = json.loads(ok(env, "status", "--json"))
    assert waiting["pipeline"]["status"] == "awaiting_approval"
    assert waiting["mlflow"]["aliases"]["candidate"]["gate"] == "passed"
    assert waiting["mlflow"]["aliases"]["champion"]["version"] == "1", "the champion stays until the approval"
    with duckdb.connect(str(snapshot), read_only=True) as con:  # `pipeline run` published its stages
        stage = con.execute("select status from dlv_pipeline_stages where stage = 'request-approval' "
                            "and model_version = '2'").fetchall()
        gated = con.execute("select gate_passed from dlv_model_versions where model_version = '2'").fetchall()
    assert stage == [("waiting",)]
    assert gated == [(True,)]
    assert "version 2 approved by E2E Tester" in ok(env, "approve", "2", "--by", "E2E Tester", "--note", "looks fair")
    with duckdb.connect(str(snapshot), read_only=True) as con:  # and `approve` the decision, before any build
        approved = con.execute("select decided_by from dlv_approvals where model_version = '2'").fetchall()
    assert approved == [("E2E Tester",)]

    # The demo's drift switched the API to failover; a person clears it before the new champion serves.
    cleared = ok(env, "failover", "clear", "--by", "E2E Tester", "--note", "demo drift")
    assert "failover cleared by E2E Tester" in cleared
    serve_and_replay(env, tmp_path / "server.log")

    ok(env, "build")
    requests, errors, distinct = _logged_requests(snapshot)
    assert requests == before[0] + 301, "every request, the refused one included, reached the hourly table"
    assert errors == before[1] + 1
    assert distinct == before[2] + 301
    with duckdb.connect(str(snapshot), read_only=True) as con:
        served_by = con.execute("select count(*) from int_requests where model_version = '2'").fetchone()[0]
    assert served_by >= 300, "the served process picked up the approved version"

    state = json.loads(ok(env, "status", "--json"))
    assert state["mlflow"]["aliases"]["champion"]["version"] == "2"
    assert state["mlflow"]["aliases"]["champion"]["approval"] == "approved"
    assert state["pipeline"]["status"] == "deployed"
    assert state["landing"]["datasets"]["prediction_log"]["rows"] == before[2] + 301
    assert state["snapshot"]["exists"] is True
    assert state["loan_book"]["name"] == "simulated_loans"


def test_cli_failures_are_one_line_and_non_zero(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "book.csv"
    bad.write_text("loan_id,application_date\nx,2024-01-01\n")
    schema = Path(__file__).parents[2] / "warehouse" / "schemas" / "simulated_loans.yml"
    refused = lendguard(env, "import", str(bad), "--schema", str(schema))
    assert refused.returncode == 1
    assert "column 'ethnicity' is missing" in refused.stderr
    assert "Traceback" not in refused.stderr
    no_book = lendguard(env, "build")
    assert no_book.returncode == 1
    assert "no loan book" in no_book.stderr
    unknown = lendguard(env, "replay", "--scenario", "meteor", "--url", "http://127.0.0.1:9")
    assert unknown.returncode == 2, "a usage error"
    assert "'meteor' is not one of 'stable', 'economic_shock'" in unknown.stderr
    no_version = lendguard(env, "approve", "7", "--by", "someone", "--note", "why not")
    assert no_version.returncode == 1
    assert "version 7 does not exist" in no_version.stderr
    no_reason = lendguard(env, "approve", "7", "--by", "someone")
    assert no_reason.returncode == 2, "click refuses a decision without --note"

