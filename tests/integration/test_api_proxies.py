"""BISG proxies at the API (issue #18, item 5): the request takes them, validated; the log keeps the
area and the surname's Census evidence, never the name unless LENDGUARD_LOG_PROXY_NAMES says so."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest
from litestar.testing import TestClient

from api.app import create_app, load_serving
from api.idempotency import fingerprint
from api.routes.score import BATCH_PATH, SCORE_PATH
from api.schemas import build_request_struct
from ml.registry import ModelBundle, load_bundle
from tests.support.applications import application
from tests.support.prediction_log import landed_rows
from warehouse.paths import Paths
from warehouse.prediction_log import SURNAME_EVIDENCE_COLUMNS
from warehouse.settings import ApiSettings

pytestmark = pytest.mark.slow

PROXIES = {"surname": "last_name", "first_name": "first_name", "zcta": "zip_code"}
SURNAMES = {  # a hand-made Census surname table: white, black, api, native, multiple, hispanic
    "GARCIA": (0.05, 0.005, 0.014, 0.005, 0.003, 0.923),
    "NGUYEN": (0.012, 0.001, 0.97, None, 0.012, 0.005),
    "ALL OTHER NAMES": (0.67, 0.08, 0.07, 0.01, 0.02, 0.15),
}
NAMES = ("Garcia-Zzyzx", "Quxbridgeworth", "Alexandrina")
"""Names that must never be in the log unless it keeps names."""


@pytest.fixture(scope="module")
def census_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("census") / "published.duckdb"
    groups = ("white", "black", "api", "native", "multiple", "hispanic")
    rows = [(name, group, "x", value) for name, values in SURNAMES.items()
            for group, value in zip(groups, values, strict=True) if value is not None]
    with duckdb.connect(str(path)) as con:
        con.execute("create table ref_census_surnames (surname varchar, census_group varchar, group_name varchar, "
                    "probability double)")
        con.executemany("insert into ref_census_surnames values (?, ?, ?, ?)", rows)
    return path


_TRAINED: list[Paths] = []


def load_bundle_with_proxies() -> ModelBundle:
    """The trained champion, its contract declaring :data:`PROXIES`."""
    bundle = load_bundle(_TRAINED[0])
    return dataclasses.replace(bundle, loan_book=dataclasses.replace(bundle.loan_book,
                                                                     proxy_columns=tuple(PROXIES.items())))


def _client(trained_deployment: Paths, snapshot: Path, landing: Path, *, keep_names: bool) -> TestClient:
    paths = dataclasses.replace(trained_deployment, landing=landing, snapshot=snapshot)
    _TRAINED[:] = [trained_deployment]
    bundle = load_bundle_with_proxies()
    settings = ApiSettings(writer_id="test-proxies", log_proxy_names=keep_names)
    serving = load_serving(paths, "champion", keep_proxy_names=keep_names, bundle=bundle)
    assert serving.bundle is not None, serving.reason
    return TestClient(create_app(settings, paths, serving))


@pytest.fixture(scope="module")
def private(trained_deployment: Paths, census_snapshot: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    landing = tmp_path_factory.mktemp("private") / "landing"
    with _client(trained_deployment, census_snapshot, landing, keep_names=False) as client:
        yield client, landing


def _row(landing: Path, request_id: str) -> dict[str, Any]:
    return next(row for row in landed_rows(landing) if row["request_id"] == request_id)


def test_the_log_keeps_the_area_and_the_surnames_evidence_not_the_name(private: tuple[TestClient, Path]) -> None:
    client, landing = private
    body = {**application(1), "last_name": "Garcia-Zzyzx", "first_name": "Alexandrina", "zip_code": "00601-1234"}
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 200, response.text
    assert "Garcia" not in response.text, "the answer does not echo the name"
    row = _row(landing, response.json()["request_id"])
    assert row["zip_code"] == "00601-1234"
    assert (row["last_name"], row["first_name"]) == (None, None)
    assert tuple(row[c] for c in SURNAME_EVIDENCE_COLUMNS) == SURNAMES["GARCIA"], "its first part's row"
    assert row["surname_match"] == "compound_first_part"


def test_missing_proxies_fall_back_to_all_other_names(private: tuple[TestClient, Path]) -> None:
    client, landing = private
    answered = client.post(SCORE_PATH, json=application(2))
    unknown = client.post(SCORE_PATH, json={**application(3), "last_name": "Quxbridgeworth"})
    assert (answered.status_code, unknown.status_code) == (200, 200), (answered.text, unknown.text)
    missing, not_listed = _row(landing, answered.json()["request_id"]), _row(landing, unknown.json()["request_id"])
    assert tuple(missing[c] for c in SURNAME_EVIDENCE_COLUMNS) == SURNAMES["ALL OTHER NAMES"]
    assert (missing["surname_match"], missing["zip_code"]) == ("missing", None)
    assert tuple(not_listed[c] for c in SURNAME_EVIDENCE_COLUMNS) == SURNAMES["ALL OTHER NAMES"]
    assert not_listed["surname_match"] == "all_other_names"


def test_bad_proxies_are_refused_naming_each_field_and_the_refusal_withholds_the_names(
    private: tuple[TestClient, Path],
) -> None:
    client, landing = private
    body = {**application(4), "last_name": "Quxbridgeworth", "first_name": " ", "zip_code": "6O1"}
    response = client.post(SCORE_PATH, json=body)
    assert response.status_code == 400, response.text
    assert {error["key"] for error in response.json()["extra"]} >= {"first_name", "zip_code"}
    batch = client.post(BATCH_PATH, json={"applications": [{**application(5), "last_name": "Garcia-Zzyzx",
                                                            "zip_code": 601}]})
    assert batch.status_code == 400, batch.text
    refused = _row(landing, response.json()["request_id"])
    assert json.loads(refused["raw_body"])["last_name"] == "[withheld]"
    assert json.loads(refused["raw_body"])["zip_code"] == "6O1", "what is not a name is kept for diagnosis"
    assert refused["log_note"] == "raw_body: names withheld (LENDGUARD_LOG_PROXY_NAMES)"
    batch_row = _row(landing, batch.json()["request_id"])
    assert json.loads(batch_row["raw_body"])["applications"][0]["last_name"] == "[withheld]"
    texts = [str(value) for row in landed_rows(landing) for value in row.values() if isinstance(value, str)]
    assert not [text for text in texts if any(name in text for name in NAMES)], "no name anywhere in the log"


def test_a_body_that_is_not_json_is_not_kept_when_it_may_hold_names(private: tuple[TestClient, Path]) -> None:
    client, landing = private
    response = client.post(SCORE_PATH, content=b'{"last_name": "Quxbridgeworth", ',
                           headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    row = _row(landing, response.json()["request_id"])
    assert row["raw_body"] is None
    assert row["log_note"].startswith("raw_body: not kept (not JSON")


def test_with_the_setting_the_raw_log_keeps_the_names(trained_deployment: Paths, census_snapshot: Path,
                                                       tmp_path: Path) -> None:
    with _client(trained_deployment, census_snapshot, tmp_path / "landing", keep_names=True) as client:
        answered = client.post(SCORE_PATH, json={**application(6), "last_name": "Nguyen", "first_name": "Alexandrina"})
        refused = client.post(SCORE_PATH, json={**application(7), "last_name": "Nguyen", "zip_code": "x"})
    assert (answered.status_code, refused.status_code) == (200, 400)
    row = _row(tmp_path / "landing", answered.json()["request_id"])
    assert (row["last_name"], row["first_name"]) == ("Nguyen", "Alexandrina")
    assert row["surname_p_native"] is None, "the Census table has no value for that group"
    assert row["surname_p_api"] == SURNAMES["NGUYEN"][2]
    assert '"Nguyen"' in _row(tmp_path / "landing", refused.json()["request_id"])["raw_body"]


def test_without_the_census_table_the_app_is_not_ready_and_says_why(trained_deployment: Paths, tmp_path: Path) -> None:
    paths = dataclasses.replace(trained_deployment, snapshot=tmp_path / "none.duckdb")
    bundle = load_bundle(trained_deployment)
    book = dataclasses.replace(bundle.loan_book, proxy_columns=tuple(PROXIES.items()))
    bundle = dataclasses.replace(bundle, loan_book=book)
    serving = load_serving(paths, "champion", bundle=bundle)
    assert serving.bundle is None
    assert serving.reason is not None
    assert "ReferenceTablesMissingError" in serving.reason


def test_the_idempotency_fingerprint_leaves_the_names_out(private: tuple[TestClient, Path]) -> None:
    """The log keeps each keyed request's body fingerprint beside its inputs; with the names in it,
    hashing the logged inputs with each surname of the Census list would find the applicant's."""
    client, landing = private
    body = {**application(8), "last_name": "Garcia-Zzyzx", "zip_code": "00601"}
    first = client.post(SCORE_PATH, json=body, headers={"Idempotency-Key": "k-names"})
    retry = client.post(SCORE_PATH, json={**body, "last_name": "Quxbridgeworth"},
                        headers={"Idempotency-Key": "k-names"})
    assert (first.status_code, retry.status_code) == (200, 200), retry.text
    assert retry.json()["request_id"] == first.json()["request_id"], "the names do not change the decision"
    row = _row(landing, first.json()["request_id"])
    struct = build_request_struct(load_bundle_with_proxies().loan_book)
    unnamed = msgspec.convert({**body, "last_name": None}, struct)
    named = msgspec.convert(body, struct)
    assert row["idempotency_fingerprint"] == fingerprint(SCORE_PATH, unnamed)
    assert row["idempotency_fingerprint"] != fingerprint(SCORE_PATH, named)
