"""The scoring API on the real champion: decisions agree with the registered model, and every
request, answered or rejected, is in the landing zone before its response leaves."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.http import app_state
from api.routes.score import SCORE_PATH
from ml.registry import load_bundle
from ml.scoring import FeatureScorer
from tests.support.applications import application, inputs
from tests.support.deployment import paths_for
from tests.support.prediction_log import log_rows
from warehouse.landing import PREDICTION_LOG
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.settings import ApiSettings

pytestmark = pytest.mark.slow

BOOK = simulated_schema()


@pytest.fixture(scope="module")
def api_paths(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The trained deployment's registry, with a landing zone of this module's own."""
    return dataclasses.replace(trained_deployment, landing=tmp_path_factory.mktemp("api") / "landing")


@pytest.fixture(scope="module")
def client(api_paths: Paths) -> Iterator[TestClient]:
    app = create_app(ApiSettings(writer_id="test-api"), api_paths)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def reference(trained_deployment: Paths) -> Iterator[FeatureScorer]:
    """The registered champion's scikit-learn pipeline, scored without the API (which runs its SQL)."""
    scorer = FeatureScorer(load_bundle(trained_deployment), engine="sklearn")
    yield scorer
    scorer.close()


def test_an_application_is_scored_decided_and_logged_before_the_answer(
    client: TestClient, api_paths: Paths, reference: FeatureScorer
) -> None:
    occurred = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(hours=1)  # within the API's bounds
    body = application(0, occurred_at=(occurred + timedelta(hours=1)).isoformat() + "+01:00")
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    expected = float(reference.probabilities(inputs([body]))[0])
    assert 0 < answer["probability"] < 1
    assert answer["probability"] == pytest.approx(expected, abs=1e-9)
    assert answer["threshold"] == pytest.approx(reference.bundle.threshold_for(body[BOOK.group_column]))
    assert answer["decision"] == ("manual_review" if expected >= answer["threshold"] else "auto_approve")
    assert (answer["model_name"], answer["model_version"], answer["mode"]) == ("lendguard", "1", "normal")
    assert answer["application_id"] == "app-0"

    row = log_rows(api_paths)[answer["request_id"]]  # read right after the answer: already durable
    assert row["status_code"] == 200
    assert row["probability"] == answer["probability"]
    assert (row["decision"], row["model_version"], row["threshold"]) == (
        answer["decision"], "1", answer["threshold"])
    assert row["application_id"] == "app-0"
    assert row["occurred_at"] == occurred, "naive UTC"
    assert row["received_at"] > row["occurred_at"]
    assert row["latency_ms"] > 0
    assert row[BOOK.group_column] == body[BOOK.group_column]
    assert {name: row[name] for name in BOOK.input_names} == {
        name: float(body[name]) if isinstance(body[name], int) else body[name] for name in BOOK.input_names}
    assert row["error"] is None
    assert row["raw_body"] is None


def test_concurrent_applications_all_agree_with_the_registered_model(
    client: TestClient, api_paths: Paths, reference: FeatureScorer
) -> None:
    bodies = [application(i) for i in range(1, 33)]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda b: client.post(SCORE_PATH, json=b), bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies)
    expected = reference.probabilities(inputs(bodies))
    got = [r.json()["probability"] for r in responses]
    assert got == pytest.approx(list(expected), abs=1e-9)
    assert len({r.json()["request_id"] for r in responses}) == len(bodies)
    logged = log_rows(api_paths)
    assert all(r.json()["request_id"] in logged for r in responses)


def test_a_missing_group_is_logged_as_not_provided(client: TestClient, api_paths: Paths) -> None:
    body = application(34)
    del body[BOOK.group_column]
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 200
    assert log_rows(api_paths)[response.json()["request_id"]][BOOK.group_column] == BOOK.group_not_provided


def test_an_unknown_category_is_scored(client: TestClient) -> None:
    response = client.post(SCORE_PATH, json=application(35, purpose="crypto"))
    assert response.status_code == 200
    assert 0 < response.json()["probability"] < 1


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"annual_income": -5.0}, "annual_income", "Expected `float` >= 0.0"),
        ({"term_months": 48}, "term_months", "expected one of [36, 60]"),
        ({"credit_score": "good"}, "credit_score", "Expected `int`, got `str`"),
        ({"surprise": 1}, "surprise", "unknown field"),
    ],
)
def test_a_bad_application_gets_field_errors_and_is_logged(
    client: TestClient, api_paths: Paths, changes: dict[str, Any], field: str, problem: str
) -> None:
    body = application(36, **changes)
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["detail"] == f"Validation failed for POST {SCORE_PATH}"
    assert answer["extra"][0]["key"] == field
    assert problem in answer["extra"][0]["message"]
    assert "Traceback" not in response.text

    rejected = [r for r in log_rows(api_paths).values() if r["status_code"] == 400 and field in (r["error"] or "")]
    assert rejected, "the rejected request is in the log"
    row = rejected[-1]
    assert problem in row["error"]
    assert row["application_id"] == "app-36"
    assert row["raw_body"] is not None
    assert field in row["raw_body"]
    assert row["probability"] is None
    assert row["decision"] is None
    assert all(row[name] is None for name in BOOK.input_names)


def test_a_missing_field_is_named(client: TestClient) -> None:
    body = application(37)
    del body["interest_rate"]
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "interest_rate"


def test_malformed_json_is_a_client_error_and_logged(client: TestClient, api_paths: Paths) -> None:
    response = client.post(SCORE_PATH, content=b'{"annual_income": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert any(r["raw_body"] == '{"annual_income": ' for r in log_rows(api_paths).values())


def test_a_decision_that_cannot_be_logged_is_not_given(
    client: TestClient, api_paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(app_state(client.app).log_writer.landing, "write", disk_full)
    before = len(log_rows(api_paths))
    response = client.post(SCORE_PATH, json=application(38))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "probability" not in response.text
    assert "No space" not in response.text, "no internals in the answer"
    monkeypatch.undo()
    assert len(log_rows(api_paths)) == before
    assert client.post(SCORE_PATH, json=application(39)).status_code == 200, "recovers when the disk does"


def test_health_readiness_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "1"
    assert ready.json()["status"] == "ready"
    assert ready.json()["alias_version"] == "1"
    assert datetime.fromisoformat(ready.json()["registry_checked_at"]) <= datetime.now(UTC)
    spec = client.get("/schema/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    assert SCORE_PATH in document["paths"]
    body = document["components"]["schemas"]["ScoreRequest"]
    assert set(body["properties"]) == {*BOOK.input_names, BOOK.group_column, "application_id", "occurred_at"}
    assert set(body["required"]) == set(BOOK.input_names)
    assert body["properties"]["term_months"]["enum"] == [36, 60]


def test_the_log_rows_have_exactly_the_warehouse_columns(client: TestClient, api_paths: Paths) -> None:
    assert client.post(SCORE_PATH, json=application(2)).status_code == 200
    schema = prediction_log_schema(BOOK)
    for path in (api_paths.landing / PREDICTION_LOG).glob("*.parquet"):
        assert pq.read_schema(path).equals(schema), path.name
        assert path.name.startswith("test-api-"), "files carry this replica's writer id"


def test_without_a_champion_the_api_starts_but_is_not_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = paths_for(tmp_path / "data")
    with caplog.at_level(logging.ERROR, logger="api.app"):
        app = create_app(ApiSettings(model_alias="champion"), empty)
    lines = [r.getMessage() for r in caplog.records if r.name == "api.app"]
    assert len(lines) == 1
    assert "'champion'" in lines[0]
    assert empty.tracking_uri in lines[0]
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        response = client.post(SCORE_PATH, json=application(0))
        assert response.status_code == 503
        assert "Traceback" not in response.text
    rows = list(log_rows(empty).values())
    assert [(r["status_code"], r["model_version"]) for r in rows] == [(503, None)], "logged even without a model"
