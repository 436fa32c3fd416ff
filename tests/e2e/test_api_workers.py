"""``lendguard serve --workers 2``: two processes on one port sharing the host's idempotency answers.

Concurrent duplicates spread over both workers are scored once; a worker killed with SIGKILL under
load loses no acknowledged request (the supervisor replaces it); a batch retried after the whole
server was killed and restarted gets its first answer and adds no rows."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.idempotency import HEADER
from tests.support.applications import BOOK
from tests.support.deployment import deployment_env
from tests.support.load import ClientLoad
from tests.support.prediction_log import landed_request_ids, landed_rows
from tests.support.servers import free_port
from warehouse.landing import PREDICTION_LOG
from warehouse.paths import Paths
from warehouse.simulator import simulate_traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TRAFFIC = simulate_traffic("stable", 200, seed=17).select([*BOOK.input_names, BOOK.group_column]).to_pylist()

WRITER = "workers-test"


@dataclass
class Workers:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes (multiprocessing's resource tracker is a child too)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the supervisor stops its workers gracefully (each flushes its log)
            self.process.wait(timeout=90)


def start_workers(paths: Paths, landing: Path, log_path: Path, workers: int = 2) -> Workers:
    port = free_port()
    env = {**os.environ, **deployment_env(paths.data_dir), "LENDGUARD_LANDING": str(landing),
           "LENDGUARD_WRITER_ID": WRITER, "LENDGUARD_MODEL_POLL_SECONDS": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lendguard.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("ab"), start_new_session=True,
    )
    server = Workers(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited: {log_path.read_text()[-2000:]}"
        if len(server.worker_pids()) == workers and _ready_on_every_worker(server.url, workers):
            return server
        time.sleep(0.25)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("the workers did not become ready")


def _ready_on_every_worker(url: str, workers: int) -> bool:
    """Ready answers on as many fresh connections as there are workers (a worker still loading does
    not accept, so this holds once any worker answers; the load below then finds both)."""
    try:
        return all(httpx.get(f"{url}/readyz", timeout=2).status_code == 200 for _ in range(workers))
    except httpx.HTTPError:
        return False


def writers(landing: Path) -> set[str]:
    """The worker prefixes (writer id plus process id) of the landed log files."""
    return {p.name.split("-")[2] for p in (landing / PREDICTION_LOG).glob(f"{WRITER}-*.parquet")}


def application(index: int) -> dict[str, Any]:
    return {**TRAFFIC[index % len(TRAFFIC)], "application_id": f"workers-{index}"}


@pytest.fixture
def landing(trained_deployment: Paths, tmp_path: Path) -> Path:
    """A landing zone of this test's own (the idempotency file sits beside it), without traffic."""
    target = tmp_path / "landing"
    shutil.copytree(trained_deployment.landing, target, ignore=shutil.ignore_patterns(PREDICTION_LOG))
    return target


def test_duplicates_over_two_workers_score_once_and_a_batch_survives_kill_9(
    trained_deployment: Paths, landing: Path, tmp_path: Path,
) -> None:
    server = start_workers(trained_deployment, landing, tmp_path / "server.log")
    try:
        # Without a key, fresh connections land on both workers: each writes its own log files.
        sent = 0
        with httpx.Client(timeout=30) as client:
            while len(writers(landing)) < 2 or sent < 20:
                assert sent < 400, "every request landed on one worker"
                with httpx.Client(timeout=30) as fresh:  # one connection per request: the kernel picks a worker
                    assert fresh.post(f"{server.url}/v1/score", json=application(sent)).status_code == 200
                sent += 1

            # Many concurrent duplicates per key, each on its own connection, so both workers get some.
            def duplicate(index: int) -> httpx.Response:
                key, body = f"dup-{index % 5}", application(1000 + index % 5)
                with httpx.Client(timeout=60) as fresh:
                    return fresh.post(f"{server.url}/v1/score", json=body, headers={HEADER: key})

            with ThreadPoolExecutor(24) as pool:
                answers = list(pool.map(duplicate, range(120)))
            assert collections.Counter(r.status_code for r in answers) == {200: 120}
            by_key: dict[str, set[str]] = collections.defaultdict(set)
            for index, response in enumerate(answers):
                by_key[f"dup-{index % 5}"].add(response.json()["request_id"])
            assert all(len(ids) == 1 for ids in by_key.values()), "one answer per key"

            batch = {"applications": [application(2000 + i) for i in range(4)]}
            first_batch = client.post(f"{server.url}/v1/score/batch", json=batch, headers={HEADER: "batch-kill"})
            assert first_batch.status_code == 200
        os.killpg(server.process.pid, signal.SIGKILL)  # the supervisor and both workers, no shutdown
        server.process.wait(timeout=30)

        rows = landed_rows(landing, ["request_id", "idempotency_key", "decision"])
        keyed = collections.Counter(r["idempotency_key"] for r in rows if r["decision"] is not None)
        assert {key: keyed[key] for key in by_key} == dict.fromkeys(by_key, 1), "each key scored once"
        assert keyed["batch-kill"] == 4

        server = start_workers(trained_deployment, landing, tmp_path / "server.log")
        with httpx.Client(timeout=30) as client:
            retried = client.post(f"{server.url}/v1/score/batch", json=batch, headers={HEADER: "batch-kill"})
        assert retried.status_code == 200
        assert retried.json() == first_batch.json(), "the same batch_id and request ids"
    finally:
        server.stop()
    keyed = collections.Counter(r["idempotency_key"] for r in landed_rows(landing, ["idempotency_key"]))
    assert keyed["batch-kill"] == 4, "the retry added no rows"


class KeyedLoad(ClientLoad):
    """Clients each sending new applications with a fresh Idempotency-Key, retrying a failed one with
    the same key (as a client should), until stopped; the request ids answered 200."""

    def client(self, number: int) -> None:
        """One keep-alive connection (the kernel gave it to one worker); a cut one is replaced."""
        client = httpx.Client(timeout=60)
        index = number
        while not self.stop.is_set():
            body, key = application(index), f"load-{number}-{index}"
            index += 1000
            for _ in range(20):  # a request the kill cut is retried with the same key, on a new connection
                try:
                    response = client.post(f"{self.url}/v1/score", json=body, headers={HEADER: key})
                except httpx.HTTPError as exc:
                    self.record_error(exc)
                    client.close()
                    client = httpx.Client(timeout=60)
                else:
                    ok = response.status_code == 200
                    self.record(str(response.status_code), response.json()["request_id"] if ok else None)
                    if ok:
                        break
                time.sleep(0.05)
        client.close()


def test_kill_9_of_one_worker_under_load_loses_no_acknowledged_request(
    trained_deployment: Paths, landing: Path, tmp_path: Path,
) -> None:
    server = start_workers(trained_deployment, landing, tmp_path / "server.log")
    load = KeyedLoad(server.url).start(12)
    try:
        load.wait_for(300)
        victim = next(pid for pid in server.worker_pids() if str(pid) in writers(landing))  # one serving the load
        os.kill(victim, signal.SIGKILL)
        answered_at_kill = len(load.ok_ids)
        load.wait_for(answered_at_kill + 300)  # the other worker serves on; the supervisor replaces the dead one
    finally:
        load.finish()
        server.stop()
    answered = list(load.ok_ids)
    logged = landed_request_ids(landing)
    print(f"kill -9 of worker {victim}: {len(answered)} answered 200, {sum(logged.values())} log rows; "  # noqa: T201
          f"outcomes {dict(load.statuses)}")
    assert len(set(answered)) == len(answered), "each key answered once (a retry after 200 is never sent)"
    assert not [rid for rid in answered if logged[rid] != 1], "every 200 is in the log exactly once"
    assert max(logged.values()) == 1
