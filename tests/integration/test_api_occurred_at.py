"""A client's ``occurred_at`` is bounded (issue 14, item 4): later than receipt plus a small clock skew,
or earlier than the horizon (the serving version's registration less an allowance, or a set horizon),
is refused with a 400 naming the field, single and batch alike, and logged without the refused time."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.body_checks import OCCURRED_AT_REFUSED
from api.http import app_state
from api.routes.score import BATCH_PATH, SCORE_PATH
from tests.support.applications import application
from tests.support.prediction_log import log_rows
from warehouse.paths import Paths
from warehouse.settings import ApiSettings

pytestmark = pytest.mark.slow

SKEW_SECONDS = 60.0
ALLOWANCE_DAYS = 7.0


@pytest.fixture(scope="module")
def api_paths(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return dataclasses.replace(trained_deployment, landing=tmp_path_factory.mktemp("api-occurred") / "landing")


@pytest.fixture(scope="module")
def client(api_paths: Paths) -> Iterator[TestClient]:
    settings = ApiSettings(writer_id="test-occurred", model_poll_seconds=0,
                           occurred_at_max_skew_seconds=SKEW_SECONDS, occurred_at_allowance_days=ALLOWANCE_DAYS)
    with TestClient(create_app(settings, api_paths)) as test_client:
        yield test_client


def registered_at(client: TestClient) -> datetime:
    bundle = app_state(client.app).models.bundle
    assert bundle is not None
    assert bundle.registered_at is not None
    return bundle.registered_at


def iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat()


@pytest.mark.parametrize(("occurred_at", "words"), [
    ("9999-12-31T23:59:59Z", "after"),
    ("0001-01-01T00:00:00Z", "before"),
])
def test_a_far_future_or_far_past_occurred_at_is_refused_naming_the_field(
    client: TestClient, api_paths: Paths, occurred_at: str, words: str,
) -> None:
    response = client.post(SCORE_PATH, json=application(0, occurred_at=occurred_at))
    assert response.status_code == 400, response.text
    answer = response.json()
    assert [e["key"] for e in answer["extra"]] == ["occurred_at"]
    message = answer["extra"][0]["message"]
    assert message.startswith(f"{OCCURRED_AT_REFUSED} {occurred_at[:19]} UTC, {words} ")
    variable = "MAX_SKEW_SECONDS" if words == "after" else "ALLOWANCE_DAYS"
    assert f"LENDGUARD_OCCURRED_AT_{variable}" in message

    row = log_rows(api_paths)[answer["request_id"]]
    assert row["status_code"] == 400
    assert "occurred_at: " + OCCURRED_AT_REFUSED in row["error"]
    assert row["occurred_at"] is None, "the refused time must not place the row in a window"
    assert occurred_at in row["raw_body"]


def test_the_bounds_are_receipt_plus_skew_and_registration_less_the_allowance(client: TestClient) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    horizon = registered_at(client) - timedelta(days=ALLOWANCE_DAYS)
    inside = [now, now + timedelta(seconds=SKEW_SECONDS / 2), horizon + timedelta(minutes=1)]
    outside = [now + timedelta(seconds=SKEW_SECONDS * 3), horizon - timedelta(minutes=1)]
    for moment in inside:
        response = client.post(SCORE_PATH, json=application(1, occurred_at=iso(moment)))
        assert response.status_code == 200, (moment, response.text)
    for moment in outside:
        response = client.post(SCORE_PATH, json=application(1, occurred_at=iso(moment)))
        assert response.status_code == 400, (moment, response.text)
    offset = (now + timedelta(hours=5, seconds=SKEW_SECONDS / 2)).isoformat() + "+05:00"  # the same instant
    assert client.post(SCORE_PATH, json=application(1, occurred_at=offset)).status_code == 200


def test_a_batch_is_refused_naming_every_out_of_bounds_application(client: TestClient, api_paths: Paths) -> None:
    before = len(log_rows(api_paths))
    bodies = [application(2), application(3, occurred_at="9999-01-01T00:00:00"),
              application(4, occurred_at=iso(datetime.now(UTC).replace(tzinfo=None))),
              application(5, occurred_at="1900-01-01T00:00:00+00:00")]
    response = client.post(BATCH_PATH, json={"applications": bodies})
    assert response.status_code == 400, response.text
    errors = {e["key"]: e["message"] for e in response.json()["extra"]}
    assert set(errors) == {"applications[1].occurred_at", "applications[3].occurred_at"}
    assert all(m.startswith(OCCURRED_AT_REFUSED) for m in errors.values())
    assert len(log_rows(api_paths)) == before + 1, "nothing scored: one refusal row"


def test_a_set_horizon_replaces_the_registration_default(api_paths: Paths) -> None:
    horizon = datetime(2020, 1, 1, tzinfo=UTC)
    settings = ApiSettings(writer_id="test-horizon", model_poll_seconds=0, occurred_at_horizon=horizon)
    with TestClient(create_app(settings, api_paths)) as client:
        allowed = client.post(SCORE_PATH, json=application(6, occurred_at="2020-01-01T00:00:00Z"))
        refused = client.post(SCORE_PATH, json=application(6, occurred_at="2019-12-31T23:59:59Z"))
    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 400
    assert "LENDGUARD_OCCURRED_AT_HORIZON" in refused.json()["extra"][0]["message"]
