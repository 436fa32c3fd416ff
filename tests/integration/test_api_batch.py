"""Batch scoring, idempotent retries and unknown categories, on the real champion through the test client."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.auth import create_key
from api.http import app_state
from api.idempotency import HEADER, STORE_FILE
from api.routes.score import BATCH_PATH, SCORE_PATH
from ml.registry import load_bundle
from ml.scoring import FeatureScorer
from tests.support.applications import application, inputs
from tests.support.prediction_log import all_log_rows
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.settings import ApiSettings

pytestmark = pytest.mark.slow

BOOK = simulated_schema()
MAX_ITEMS = 5


@pytest.fixture(scope="module")
def api_paths(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return dataclasses.replace(trained_deployment, landing=tmp_path_factory.mktemp("api-batch") / "landing")


@pytest.fixture(scope="module")
def client(api_paths: Paths) -> Iterator[TestClient]:
    app = create_app(ApiSettings(writer_id="test-batch", batch_max_items=MAX_ITEMS, model_poll_seconds=0), api_paths)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def reference(trained_deployment: Paths) -> Iterator[FeatureScorer]:
    scorer = FeatureScorer(load_bundle(trained_deployment))
    yield scorer
    scorer.close()


# ----- batch --------------------------------------------------------------------------------------
def test_a_batch_is_scored_like_single_requests_and_logged_row_by_row(
    client: TestClient, api_paths: Paths, reference: FeatureScorer
) -> None:
    bodies = [application(i) for i in range(MAX_ITEMS)]
    response = client.post(BATCH_PATH, json={"applications": bodies})
    assert response.status_code == 200, response.text
    answer = response.json()
    results = answer["results"]
    assert [r["application_id"] for r in results] == [b["application_id"] for b in bodies], "in order"
    assert [r["probability"] for r in results] == pytest.approx(
        list(reference.probabilities(inputs(bodies))), abs=1e-12)
    single = client.post(SCORE_PATH, json=bodies[2]).json()
    assert (single["probability"], single["decision"]) == (results[2]["probability"], results[2]["decision"])
    assert len({r["request_id"] for r in results}) == MAX_ITEMS

    rows = {r["request_id"]: r for r in all_log_rows(api_paths)}
    for result in results:
        row = rows[result["request_id"]]  # durable before the response
        assert (row["batch_id"], row["endpoint"], row["status_code"]) == (answer["batch_id"], BATCH_PATH, 200)
        assert (row["probability"], row["decision"]) == (result["probability"], result["decision"])


def test_one_bad_application_refuses_the_batch_naming_its_index(client: TestClient, api_paths: Paths) -> None:
    before = len(all_log_rows(api_paths))
    bodies = [application(i) for i in range(3)]
    bodies[1]["annual_income"] = -5
    response = client.post(BATCH_PATH, json={"applications": bodies})
    assert response.status_code == 400
    error = response.json()["extra"][0]
    assert error["key"] == "applications[1].annual_income"
    assert ">= 0" in error["message"]
    rows = all_log_rows(api_paths)[before:]
    assert len(rows) == 1, "nothing scored; the refusal is one row"
    assert (rows[0]["status_code"], rows[0]["endpoint"], rows[0]["decision"]) == (400, BATCH_PATH, None)
    assert "applications[1].annual_income" in rows[0]["error"]
    assert '"applications"' in rows[0]["raw_body"]


@pytest.mark.parametrize("count", [0, MAX_ITEMS + 1])
def test_a_batch_outside_the_limit_is_refused_naming_the_limit(client: TestClient, count: int) -> None:
    response = client.post(BATCH_PATH, json={"applications": [application(i) for i in range(count)]})
    assert response.status_code == 400
    error = response.json()["extra"][0]
    assert error["key"] == "applications"
    assert str(1 if count == 0 else MAX_ITEMS) in error["message"]


# ----- unknown categories -------------------------------------------------------------------------
def test_an_unknown_category_is_scored_as_all_zero_one_hot_and_flagged(
    client: TestClient, api_paths: Paths, reference: FeatureScorer
) -> None:
    body = application(20, purpose="crypto")
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["unknown_categories"] == ["purpose"]
    assert answer["probability"] == pytest.approx(float(reference.probabilities(inputs([body]))[0]), abs=1e-12)
    row = next(r for r in all_log_rows(api_paths) if r["request_id"] == answer["request_id"])
    assert (row["unknown_categories"], row["purpose"]) == ("purpose", "crypto")
    known = client.post(SCORE_PATH, json=application(21)).json()
    assert known["unknown_categories"] == []
    known_row = next(r for r in all_log_rows(api_paths) if r["request_id"] == known["request_id"])
    assert known_row["unknown_categories"] is None


# ----- idempotency --------------------------------------------------------------------------------
def test_a_retry_with_the_same_key_gets_the_same_answer_and_is_logged_once(
    client: TestClient, api_paths: Paths
) -> None:
    body = application(10)
    first = client.post(SCORE_PATH, json=body, headers={HEADER: "retry-1"})
    assert first.status_code == 200
    reordered = dict(reversed(list(body.items())))  # the same body, spelled differently
    again = [client.post(SCORE_PATH, json=reordered, headers={HEADER: "retry-1"}) for _ in range(3)]
    assert all(r.json() == first.json() for r in again), "same request id, same decision"
    rows = [r for r in all_log_rows(api_paths) if r["idempotency_key"] == "retry-1"]
    assert len(rows) == 1
    assert rows[0]["request_id"] == first.json()["request_id"]
    assert client.post(SCORE_PATH, json=body).json()["request_id"] != first.json()["request_id"], "no key: new"


def test_concurrent_duplicates_score_once(client: TestClient, api_paths: Paths) -> None:
    body = application(11)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: client.post(SCORE_PATH, json=body, headers={HEADER: "dup-1"}), range(16)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["request_id"] for r in responses}) == 1
    assert len([r for r in all_log_rows(api_paths) if r["idempotency_key"] == "dup-1"]) == 1


def test_a_key_reused_with_another_body_is_refused(client: TestClient) -> None:
    assert client.post(SCORE_PATH, json=application(12), headers={HEADER: "reuse-1"}).status_code == 200
    response = client.post(SCORE_PATH, json=application(13), headers={HEADER: "reuse-1"})
    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "naïve"])
def test_a_malformed_key_is_a_400_naming_the_header(client: TestClient, key: str) -> None:
    response = client.post(SCORE_PATH, json=application(14), headers={HEADER: key.encode("utf-8")})  # type: ignore[dict-item]
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == HEADER


def test_batch_retries_are_idempotent_too(client: TestClient, api_paths: Paths) -> None:
    body = {"applications": [application(i) for i in range(15, 18)]}
    first = client.post(BATCH_PATH, json=body, headers={HEADER: "batch-1"})
    second = client.post(BATCH_PATH, json=body, headers={HEADER: "batch-1"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len([r for r in all_log_rows(api_paths) if r["idempotency_key"] == "batch-1"]) == 3


def test_keys_survive_a_restart_through_the_log(client: TestClient, api_paths: Paths) -> None:
    """Single and batch answers, rebuilt from the log alone: the shared answers file is lost too."""
    body = application(19)
    batch = {"applications": [application(i) for i in range(26, 29)]}
    first = client.post(SCORE_PATH, json=body, headers={HEADER: "restart-1"}).json()
    first_batch = client.post(BATCH_PATH, json=batch, headers={HEADER: "restart-batch"}).json()
    for path in api_paths.landing.parent.glob(f"{STORE_FILE}*"):
        path.unlink()
    restarted = create_app(ApiSettings(writer_id="test-batch-2", batch_max_items=MAX_ITEMS, model_poll_seconds=0),
                           api_paths)
    with TestClient(restarted) as fresh:
        assert fresh.post(SCORE_PATH, json=body, headers={HEADER: "restart-1"}).json() == first
        assert fresh.post(SCORE_PATH, json=application(18), headers={HEADER: "restart-1"}).status_code == 422
        assert fresh.post(BATCH_PATH, json=batch, headers={HEADER: "restart-batch"}).json() == first_batch
    assert len([r for r in all_log_rows(api_paths) if r["idempotency_key"] == "restart-1"]) == 1
    assert len([r for r in all_log_rows(api_paths) if r["idempotency_key"] == "restart-batch"]) == 3


def test_keys_are_per_caller_and_every_row_names_its_caller(api_paths: Paths, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yml"
    alice, bob = (create_key(keys_file, name, ["score"]) for name in ("alice", "bob"))
    app = create_app(ApiSettings(writer_id="test-callers", model_poll_seconds=0, api_keys_file=keys_file), api_paths)
    with TestClient(app) as callers:
        def post(key: str, body: dict[str, Any]) -> Any:
            return callers.post(SCORE_PATH, json=body, headers={HEADER: "shared-key", "X-API-Key": key})

        from_alice = post(alice, application(30))
        from_bob = post(bob, application(30))
        assert from_alice.status_code == from_bob.status_code == 200
        assert from_alice.json()["request_id"] != from_bob.json()["request_id"], "bob's is his own request"
        assert post(bob, application(30)).json() == from_bob.json(), "and his retry gets his answer"
        assert post(alice, application(31)).status_code == 422, "alice's key still names alice's request"
        assert callers.post(SCORE_PATH, json={"nope": 1}, headers={"X-API-Key": bob}).status_code == 400
    rows = [r for r in all_log_rows(api_paths) if r["request_id"] in {from_alice.json()["request_id"],
                                                                  from_bob.json()["request_id"]}]
    assert sorted((r["caller"], r["idempotency_key"]) for r in rows) == [("alice", "shared-key"), ("bob", "shared-key")]
    refused = [r for r in all_log_rows(api_paths) if r["status_code"] == 400 and r["raw_body"] == '{"nope":1}']
    assert [r["caller"] for r in refused] == ["bob"], "refused requests name their caller too"
    assert {r["caller"] for r in all_log_rows(api_paths) if r["idempotency_key"] == "retry-1"} == {""}, "open mode"


def test_a_batch_whose_rows_cannot_be_made_durable_is_a_503_and_is_retried_whole(
    client: TestClient, api_paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    body = {"applications": [application(i) for i in range(22, 25)]}
    monkeypatch.setattr(app_state(client.app).log_writer.landing, "write", disk_full)
    refused = client.post(BATCH_PATH, json=body, headers={HEADER: "batch-disk"})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "probability" not in refused.text
    monkeypatch.undo()
    retried = client.post(BATCH_PATH, json=body, headers={HEADER: "batch-disk"})
    assert retried.status_code == 200, "a failed attempt is not remembered: the retry scores"
    assert len([r for r in all_log_rows(api_paths) if r["idempotency_key"] == "batch-disk"]) == 3
