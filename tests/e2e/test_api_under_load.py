"""The real server process under concurrent load: killed with SIGKILL, every request that got a 200
is in the prediction log exactly once; and ``lendguard build`` (with a log compaction) running while
it serves causes no error on either side."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from lendguard.processes import ServerProcess, serve_command, start_server
from tests.support.deployment import deployment_env
from tests.support.load import ClientLoad
from tests.support.prediction_log import landed_request_ids
from tests.support.servers import free_port
from warehouse.build import build, build_lock, compact_prediction_log
from warehouse.landing import PREDICTION_LOG, TMP_SUFFIX
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.simulator import simulate_traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOK = simulated_schema()
TRAFFIC = simulate_traffic("stable", 200, seed=17).select([*BOOK.input_names, BOOK.group_column]).to_pylist()
WORKERS = 12


def serve(paths: Paths, landing: Path, writer_id: str, log_path: Path) -> ServerProcess:
    """``lendguard serve`` as its own process (own session, so a kill reaches only it)."""
    port = free_port()
    env = {**deployment_env(paths.data_dir), "LENDGUARD_LANDING": str(landing),
           "LENDGUARD_WRITER_ID": writer_id, "LENDGUARD_MODEL_POLL_SECONDS": "0"}
    return start_server(serve_command(port), port=port, log_path=log_path, env=env, new_session=True)


@dataclass
class Load(ClientLoad):
    """Clients sending applications until stopped; what each request got."""

    sent: int = 0

    def client(self, number: int) -> None:
        with httpx.Client(timeout=30) as client:
            index = number
            while not self.stop.is_set():
                body = {**TRAFFIC[index % len(TRAFFIC)], "application_id": f"load-{number}-{index}"}
                index += WORKERS
                with self.lock:
                    self.sent += 1
                try:
                    response = client.post(f"{self.url}/v1/score", json=body)
                except httpx.HTTPError as exc:
                    self.record_error(exc)
                else:
                    ok = response.status_code == 200
                    self.record(str(response.status_code), response.json()["request_id"] if ok else None)


@pytest.fixture
def load_paths(trained_deployment: Paths, tmp_path: Path) -> Paths:
    """The trained deployment's registry with a landing zone, state and warehouse of this test's own."""
    landing = tmp_path / "landing"
    shutil.copytree(trained_deployment.landing, landing, ignore=shutil.ignore_patterns(PREDICTION_LOG))
    shutil.copytree(trained_deployment.state_dir, tmp_path / "state", ignore=shutil.ignore_patterns("*.lock"))
    return dataclasses.replace(
        trained_deployment, landing=landing, state_dir=tmp_path / "state",
        warehouse=tmp_path / "lendguard.duckdb", snapshot=tmp_path / "published" / "lendguard.duckdb",
    )


def test_after_kill_9_under_load_every_answer_is_logged_exactly_once(load_paths: Paths, tmp_path: Path) -> None:
    landing = load_paths.landing
    server = serve(load_paths, landing, "kill-test", tmp_path / "server.log")
    load = Load(server.url).start(WORKERS)
    try:
        load.wait_for(600)  # well into the load, with group commits in flight
        sent_before_kill = load.sent
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
    finally:
        load.finish()
        if server.process.poll() is None:
            server.process.kill()
    answered = list(load.ok_ids)
    logged = landed_request_ids(landing)
    leftovers = [p.name for p in (landing / PREDICTION_LOG).iterdir() if p.name.endswith(TMP_SUFFIX)]
    print(f"kill -9: {sent_before_kill} requests sent before the kill, {len(answered)} answered 200, "  # noqa: T201
          f"{sum(logged.values())} log rows, {len(leftovers)} temporary files left; "
          f"outcomes including retries against the dead server: {dict(load.statuses)}")
    assert len(set(answered)) == len(answered)
    assert not [rid for rid in answered if logged[rid] != 1], "every 200 is in the log exactly once"
    assert max(logged.values()) == 1, "no row is in the log twice"

    # The same replica restarted (same writer id) keeps what its killed run landed, and serves on.
    restarted = serve(load_paths, landing, "kill-test", tmp_path / "server.log")
    more = Load(restarted.url).start(4)
    try:
        more.wait_for(100)
    finally:
        more.finish()
        restarted.process.terminate()
        restarted.process.wait(timeout=60)
    logged = landed_request_ids(landing)
    assert all(logged[rid] == 1 for rid in [*answered, *more.ok_ids])
    assert max(logged.values()) == 1
    assert more.statuses["200"] == more.sent, "after the restart every request is answered"


def test_build_and_compaction_while_the_api_is_under_load(load_paths: Paths, tmp_path: Path) -> None:
    landing = load_paths.landing
    server = serve(load_paths, landing, "build-test", tmp_path / "server.log")
    load = Load(server.url).start(6)
    try:
        load.wait_for(200)
        with build_lock(load_paths):  # what `lendguard build` does first, with every closed file
            compacted = compact_prediction_log(load_paths, min_age_seconds=0)
        result = build(load_paths)
        during_build = len(load.ok_ids)
        load.wait_for(during_build + 100)
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        load.finish()
        server.process.terminate()
        server.process.wait(timeout=60)
    print(f"build under load: {load.sent} requests, outcomes {dict(load.statuses)}, "  # noqa: T201
          f"compaction merged {compacted.source_files} files, dbt {len(result.run.results)} nodes")
    assert result.ok, result.run.output[-3000:]
    assert compacted.source_files > 1, "the compaction had files of the running API to merge"
    assert load.statuses["200"] == load.sent, f"every request answered 200: {load.statuses} {load.errors}"
    # The snapshot is what its build saw (the log is no view over the files any more): build once more
    # now that the load has stopped, and every logged row must be in it once.
    assert build(load_paths).ok
    with duckdb.connect(str(load_paths.snapshot), read_only=True) as con:
        staged = con.execute("select count(*), count(distinct request_id) from int_requests").fetchone()
    logged = landed_request_ids(landing)
    assert staged is not None
    assert staged[0] == staged[1] == sum(logged.values()) == len(logged), "the snapshot holds every row once"
    assert set(load.ok_ids) <= set(logged)
    frozen = re.search(r"^lendguard_gc_frozen_objects (\S+)$", metrics, re.MULTILINE)
    assert frozen, "/metrics reports the frozen heap"
    assert float(frozen.group(1)) > 100_000, "the served process froze its start-up heap (api.server)"
