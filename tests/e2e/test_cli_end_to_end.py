"""The real CLI and the real server process, end to end, in a deployment of their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest

from lendguard.processes import serve_command, start_server
from tests.support.deployment import deployment_env
from tests.support.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def lendguard(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lendguard.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def ok(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    completed = lendguard(env, *args, timeout=timeout)
    assert completed.returncode == 0, f"lendguard {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


E2E_BOOK = 20_000
"""Loans in an end-to-end deployment: enough for the gate to vouch for every large group."""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A deployment of the test's own. The pipeline's dev-test latency limit is out of the way:
    other tests share the cores, and the limit's enforcement has a test of its own
    (tests/integration/test_delivery.py); the speed goal lives in bench/api_load.py."""
    return {**os.environ, **deployment_env(tmp_path / "data"), "COLUMNS": "200",
            "LENDGUARD_DEV_API_PORT": str(free_port()), "LENDGUARD_DEV_MAX_P99_MS": "60000"}


def test_simulate_build_deliver_approve_serve_replay_build(env: dict[str, str], tmp_path: Path) -> None:
    assert "landed 20,000 simulated loans" in ok(env, "simulate", "--loans", str(E2E_BOOK), "--seed", "5")
    build = json.loads(ok(env, "build", "--json"))
    assert build["ok"] is True
    assert build["failures"] == [], build["failures"]
    assert build["passed"] > 50, "the models and their tests ran"
    delivered = ok(env, "pipeline", "run", timeout=600)  # every stage, the model report included, on a shared machine
    assert "awaits approval" in delivered
    assert f"report: {tmp_path / 'data' / 'reports' / 'model-1.html'}" in delivered  # the approver's model report
    waiting = json.loads(ok(env, "status", "--json"))
    assert waiting["pipeline"]["status"] == "awaiting_approval"
    assert waiting["mlflow"]["aliases"]["candidate"]["gate"] == "passed"
    assert waiting["mlflow"]["aliases"]["champion"] is None, "nothing is in production before the approval"
    snapshot = Path(env["LENDGUARD_DATA_DIR"]) / "published" / "lendguard.duckdb"
    with duckdb.connect(str(snapshot), read_only=True) as con:  # `pipeline run` published its stages
        waiting = con.execute("select status from dlv_pipeline_stages where stage = 'request-approval'").fetchall()
        gated = con.execute("select gate_passed from dlv_model_versions where model_version = '1'").fetchall()
    assert waiting == [("waiting",)]
    assert gated == [(True,)]
    assert "version 1 approved by E2E Tester" in ok(env, "approve", "1", "--by", "E2E Tester", "--note", "looks fair")
    with duckdb.connect(str(snapshot), read_only=True) as con:  # and `approve` the decision, before any build
        approved = con.execute("select decision, decided_by from dlv_approvals").fetchall()
    assert approved == [("approved", "E2E Tester")]

    port = free_port()
    server = start_server(serve_command(port), port=port, log_path=tmp_path / "server.log", env=env)
    url = server.url
    try:
        out = ok(env, "replay", "--url", url, "--scenario", "economic_shock", "--requests", "300", "--onset", "100")
        assert "replayed 300 'economic_shock' applications" in out
        bad = httpx.post(f"{url}/v1/score", json={"annual_income": -1})
        assert bad.status_code in {400, 422}
    finally:
        returncode = server.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells how it ended.
    server_log = (tmp_path / "server.log").read_text()
    assert returncode in {0, -signal.SIGTERM}, server_log[-2000:]
    assert "scorer closed" in server_log, "the server drained its scorer on the way out"

    ok(env, "build")
    with duckdb.connect(str(snapshot), read_only=True) as con:
        requests, errors, hours = con.execute(
            "select sum(requests), sum(errors), count(*) from mon_ops_hourly"
        ).fetchone()
        distinct = con.execute("select count(distinct request_id) from mon_requests").fetchone()[0]
    assert requests == 301, "every request, the refused one included, reached the hourly table"
    assert errors == 1
    assert distinct == 301
    assert hours > 1, "the replay's own timestamps spread over hours"

    state = json.loads(ok(env, "status", "--json"))
    assert state["mlflow"]["aliases"]["champion"]["version"] == "1"
    assert state["mlflow"]["aliases"]["champion"]["approval"] == "approved"
    assert state["pipeline"]["status"] == "deployed"
    assert state["landing"]["datasets"]["prediction_log"]["rows"] == 301
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


def test_demo_runs_the_whole_path_and_ends_by_itself(env: dict[str, str]) -> None:
    # A guard against a hang, not a speed goal: the whole path took 6.5 min with both cores saturated.
    demo = lendguard(env, "demo", "--loans", str(E2E_BOOK), "--requests", "200", "--port", str(free_port()),
                     timeout=1200)
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
    page = Path(env["LENDGUARD_DATA_DIR"]) / "dashboard.html"
    assert "data-panel='ops'" in page.read_text(), "the dashboard was written"
