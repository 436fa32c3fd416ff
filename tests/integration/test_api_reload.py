"""The running API follows ``champion`` without a restart and without dropping a request; it keeps
serving through a registry outage and refuses a version whose contract its request body cannot take.

Real components throughout: a copy of the trained deployment's MLflow registry with extra versions
of the same fitted model, the app under Litestar's test client, a steady stream of requests.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.http import app_state
from api.reload import ReloadOutcome, registry_alias_version, reload_model
from api.routes.score import SCORE_PATH
from ml import registry
from ml.registry import load_version, set_alias
from tests.support.deployment import copy_registry
from tests.support.prediction_log import log_rows
from tests.support.registry import register_variant, scaled_policy
from tests.support.servers import free_port, wait_for
from warehouse.loan_book import LoanBookSchema, simulated_schema
from warehouse.paths import Paths
from warehouse.settings import ApiSettings
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

log = logging.getLogger(__name__)

CHAMPION = "champion"
POLL_SECONDS = 0.2
WORKERS = 8
BOOK = simulated_schema()
TRAFFIC = simulate_traffic("stable", 64, seed=21)


@dataclass(frozen=True)
class Versions:
    """The copied registry and the versions registered in it for these tests."""

    paths: Paths
    first: str
    """The trained champion."""
    retuned: str
    """The same fitted model with other thresholds (a new version with the same contract)."""
    recontracted: str
    """The same fitted model under a loan-book contract with one bound changed."""


@dataclass(frozen=True)
class Answer:
    worker: int
    body: dict[str, Any]
    sent: float
    received: float
    status_code: int
    json: dict[str, Any]


def application(index: int) -> dict[str, Any]:
    row = TRAFFIC.select([*BOOK.input_names, BOOK.group_column]).slice(index % TRAFFIC.num_rows, 1).to_pylist()[0]
    return {**row, "application_id": f"reload-{index}"}


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def reload_log() -> Iterator[list[logging.LogRecord]]:
    """What ``api.reload`` logs, caught at that logger, whatever handlers the root logger has."""
    logger, collector = logging.getLogger("api.reload"), _Collector()
    level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.INFO)
    try:
        yield collector.records
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)


def recontracted_book(book: LoanBookSchema) -> LoanBookSchema:
    """The same columns, one bound wider: the request body's validation would differ."""
    first, *rest = book.numeric_features
    return dataclasses.replace(book, numeric_features=(dataclasses.replace(first, max=(first.max or 1) * 2), *rest))


@pytest.fixture(scope="module")
def versions(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Versions:
    """A copy of the trained registry (moving aliases here cannot disturb other modules) plus two versions."""
    paths = copy_registry(trained_deployment, tmp_path_factory.mktemp("reload"))
    first = registry.alias_version(paths, CHAMPION)
    assert first is not None, "the trained deployment has a champion"
    champion = load_version(paths, first)
    retuned = register_variant(paths, first, policy=scaled_policy(champion, 0.8))
    recontracted = register_variant(paths, first, loan_book=recontracted_book(champion.loan_book))
    return Versions(paths, first, retuned, recontracted)


def serve(versions: Versions, alias_at: str, writer_id: str) -> TestClient:
    set_alias(versions.paths, CHAMPION, alias_at)
    settings = ApiSettings(writer_id=writer_id, model_poll_seconds=POLL_SECONDS)
    return TestClient(create_app(settings, versions.paths))


def test_moving_champion_switches_versions_without_dropping_a_request(versions: Versions) -> None:
    paths, old, new = versions.paths, versions.first, versions.retuned
    bundles = {old: load_version(paths, old), new: load_version(paths, new)}
    groups = {application(i)[BOOK.group_column] for i in range(TRAFFIC.num_rows)}
    assert any(bundles[old].threshold_for(g) != bundles[new].threshold_for(g) for g in groups), (
        "the versions must disagree on thresholds, or mixing them could go unnoticed")
    answers: list[Answer] = []
    stop = threading.Event()

    def stream(client: TestClient, worker: int) -> None:
        index = worker
        while not stop.is_set():
            body = application(index)
            sent = time.perf_counter()
            response = client.post(SCORE_PATH, json=body)
            answers.append(Answer(worker, body, sent, time.perf_counter(), response.status_code, response.json()))
            index += WORKERS

    with serve(versions, old, "test-reload") as client, ThreadPoolExecutor(WORKERS) as pool:
        streams = [pool.submit(stream, client, w) for w in range(WORKERS)]
        try:
            wait_for(lambda: len(answers) >= 2 * WORKERS, what="answers by the old version")
            moved_wall, moved = datetime.now(UTC), time.perf_counter()
            set_alias(paths, CHAMPION, new)
            wait_for(lambda: client.get("/readyz").json()["model_version"] == new)
            wait_for(lambda: sum(a.json.get("model_version") == new for a in list(answers)) >= 2 * WORKERS,
                     what="answers by the new version")
        finally:
            stop.set()  # the workers end even if the swap never came
        for worker in streams:
            worker.result()
        ready = client.get("/readyz").json()

    failed = [(a.status_code, a.json) for a in answers if a.status_code != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    by_version = {v: [a for a in answers if a.json["model_version"] == v] for v in (old, new)}
    assert by_version[old], "requests were answered by the old version before the move"
    assert by_version[new], "and by the new one after it"
    assert len(by_version[old]) + len(by_version[new]) == len(answers), "no third version"
    first_new = min(a.received for a in by_version[new])
    assert all(a.json["model_version"] == new for a in answers if a.sent > first_new), "never back to the old one"
    for worker in range(WORKERS):
        sequence = [a.json["model_version"] for a in sorted(answers, key=lambda a: a.sent) if a.worker == worker]
        assert sequence == sorted(sequence, key=lambda v: v == new), f"worker {worker} went back: {sequence}"

    logged = log_rows(paths)
    for answer in answers:
        version, group = answer.json["model_version"], answer.body[BOOK.group_column]
        assert answer.json["threshold"] == pytest.approx(bundles[version].threshold_for(group))
        assert answer.json["decision"] == (
            "manual_review" if answer.json["probability"] >= answer.json["threshold"] else "auto_approve")
        row = logged[answer.json["request_id"]]
        assert (row["model_version"], row["threshold"], row["probability"], row["decision"]) == (
            version, answer.json["threshold"], answer.json["probability"], answer.json["decision"])
    assert ready["model_version"] == ready["alias_version"] == new
    assert datetime.fromisoformat(ready["registry_checked_at"]) > moved_wall
    log.info(
        "%d requests in %.1f s, none failed; first answer by version %s %.2f s after the alias moved",
        len(answers), max(a.received for a in answers) - min(a.sent for a in answers), new, first_new - moved,
    )


def test_an_unreachable_registry_keeps_the_loaded_model_serving(
    versions: Versions, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, old, new = versions.paths, versions.first, versions.retuned
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once instead of backing off for minutes
    down = dataclasses.replace(paths, tracking_uri=f"http://127.0.0.1:{free_port()}")
    assert registry_alias_version(paths, "no-such-alias") is None, "a registry that answers: alias unset"

    with reload_log() as records, serve(versions, old, "test-outage") as client:
        watcher = app_state(client.app).watcher

        def checked_at() -> str:
            return str(client.get("/readyz").json()["registry_checked_at"])

        started = checked_at()
        wait_for(lambda: checked_at() != started)  # the poller is running and the registry answers
        watcher.paths = down
        # Checks run one at a time, so once one has failed, any begun before the outage has finished.
        wait_for(lambda: any("unreachable" in r.getMessage() for r in list(records)), what="a failed check")
        last_good = checked_at()
        set_alias(paths, CHAMPION, new)  # moved during the outage: seen once the registry is back
        for _ in range(3):  # more checks during the outage (besides the poller's): still one warning
            result = client.blocking_portal.call(reload_model, app_state(client.app).watcher)
        assert result.outcome is ReloadOutcome.REGISTRY_UNAVAILABLE
        assert result.served_version == old
        response = client.post(SCORE_PATH, json=application(1))
        assert response.status_code == 200
        assert response.json()["model_version"] == old
        ready = client.get("/readyz").json()
        assert (ready["status"], ready["model_version"], ready["registry_checked_at"]) == ("ready", old, last_good)

        watcher.paths = paths
        wait_for(lambda: client.get("/readyz").json()["model_version"] == new)
        assert client.post(SCORE_PATH, json=application(2)).json()["model_version"] == new

    messages = [r.getMessage() for r in records]
    unreachable = [m for m in messages if "unreachable" in m]
    assert len(unreachable) == 1, f"one warning per outage, not one per poll: {unreachable}"
    assert down.tracking_uri in unreachable[0]
    assert f"still serving version {old}" in unreachable[0]
    assert sum("reachable again" in m for m in messages) == 1
    assert any(f"now serving version {new}" in m for m in messages)


def test_a_version_with_another_contract_is_refused_until_a_restart(versions: Versions) -> None:
    paths, old, other = versions.paths, versions.first, versions.recontracted
    old_print = load_version(paths, old).loan_book.fingerprint()
    other_print = load_version(paths, other).loan_book.fingerprint()
    assert old_print != other_print

    with reload_log() as records, serve(versions, old, "test-contract") as client:
        set_alias(paths, CHAMPION, other)
        result = client.blocking_portal.call(reload_model, app_state(client.app).watcher)
        assert result.outcome is ReloadOutcome.CONTRACT_CHANGED
        assert (result.served_version, result.alias_version) == (old, other)
        checked = client.get("/readyz").json()["registry_checked_at"]
        wait_for(lambda: client.get("/readyz").json()["registry_checked_at"] != checked,
                 what="a later poll")  # it finds the same version: refused again, quietly
        response = client.post(SCORE_PATH, json=application(3))
        assert response.status_code == 200
        assert response.json()["model_version"] == old
        ready = client.get("/readyz").json()
        assert (ready["model_version"], ready["alias_version"]) == (old, other)

        set_alias(paths, CHAMPION, versions.retuned)  # a servable version is still taken
        assert client.blocking_portal.call(reload_model, app_state(client.app).watcher).outcome is ReloadOutcome.SWAPPED

    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "restart" in errors[0]
    assert all(text in errors[0] for text in (f"version {old}", f"version {other}", old_print, other_print))

    with serve(versions, other, "test-contract-restarted") as client:  # the restart it asked for
        assert client.get("/readyz").json()["model_version"] == other
        assert client.post(SCORE_PATH, json=application(4)).json()["model_version"] == other
