"""Auth, admin reload, failover, metrics and the offline docs on the real champion.

A copy of the trained registry (aliases move here without disturbing other modules) with two more
versions of the same fitted model: ``older``, with every threshold halved, is ``previous_champion``;
``retuned`` (thresholds x0.8) is where an admin reload moves ``champion``. Keys come from a real
keys file minted as the CLI does.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.auth import create_key
from api.http import app_state
from api.routes.admin import ADMIN_MAX_BODY_BYTES
from api.routes.score import SCORE_PATH
from api.schemas import REQUEST_ID_HEADER
from ml import registry
from ml.registry import MODEL_NAME, ModelBundle, load_version, set_alias
from ml.scoring import FeatureScorer
from tests.support.applications import inputs
from tests.support.deployment import copy_registry, deployment_env
from tests.support.prediction_log import log_rows
from tests.support.registry import register_variant, scaled_policy
from tests.support.servers import wait_for
from warehouse.failover import flag_path
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.settings import ApiSettings
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

log = logging.getLogger(__name__)

BOOK = simulated_schema()
TRAFFIC = simulate_traffic("stable", 128, seed=5)
ROOT = Path(__file__).resolve().parents[2]
ADMIN_FAILOVER = "/v1/admin/failover"
ADMIN_RELOAD = "/v1/admin/reload"


@dataclass(frozen=True)
class Deployment:
    paths: Paths
    first: str
    older: str
    retuned: str
    keys_file: Path
    score_key: str
    admin_key: str
    both_key: str


@pytest.fixture(scope="module")
def deployment(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    root = tmp_path_factory.mktemp("ops")
    paths = copy_registry(trained_deployment, root)
    first = registry.alias_version(paths, "champion")
    assert first is not None
    champion = load_version(paths, first)
    older = register_variant(paths, first, policy=scaled_policy(champion, 0.5))
    retuned = register_variant(paths, first, policy=scaled_policy(champion, 0.8))
    set_alias(paths, "previous_champion", older)
    keys_file = root / "keys.yml"
    return Deployment(
        paths, first, older, retuned, keys_file,
        score_key=create_key(keys_file, "scorer", ["score"]),
        admin_key=create_key(keys_file, "alice", ["admin"]),
        both_key=create_key(keys_file, "ops-bot", ["score", "admin"]),
    )


def settings_for(deployment: Deployment, writer_id: str) -> ApiSettings:
    # metrics_public: these tests read /metrics as a scraper on a private network would (the read
    # scope it needs otherwise is tested in tests/unit/api/test_auth.py)
    return ApiSettings(writer_id=writer_id, model_poll_seconds=0, api_keys_file=deployment.keys_file,
                       failover_poll_seconds=0.5, metrics_public=True)


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Iterator[TestClient]:
    set_alias(deployment.paths, "champion", deployment.first)
    with TestClient(create_app(settings_for(deployment, "test-ops"), deployment.paths)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def scorers(deployment: Deployment) -> Iterator[dict[str, FeatureScorer]]:
    """Each version's scorer, loaded without the API."""
    loaded = {v: FeatureScorer(load_version(deployment.paths, v)) for v in (deployment.first, deployment.older)}
    yield loaded
    for scorer in loaded.values():
        scorer.close()


def application(index: int, **changes: Any) -> dict[str, Any]:
    """Request ``index`` of the simulated traffic (wrapping around), as a client sends it."""
    row = TRAFFIC.select([*BOOK.input_names, BOOK.group_column]).slice(index % TRAFFIC.num_rows, 1).to_pylist()[0]
    return {**row, "application_id": f"app-{index}", **changes}


def as_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def score(client: TestClient, deployment: Deployment, body: dict[str, Any]) -> Any:
    return client.post(SCORE_PATH, json=body, headers={"Authorization": f"Bearer {deployment.score_key}"})


def metric(client: TestClient, sample: str) -> float:
    """One sample of /metrics, ``name{label="value",...}`` in any label order (0 when the series does not exist yet)."""
    wanted = _series(sample)
    for line in client.get("/metrics").text.splitlines():
        name_labels, _, value = line.rpartition(" ")
        if not line.startswith("#") and name_labels and _series(name_labels) == wanted:
            return float(value)
    return 0.0


def _series(text: str) -> tuple[str, frozenset[tuple[str, str]]]:
    name, _, labels = text.partition("{")
    return name, frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', labels))


@pytest.fixture
def normal_mode(client: TestClient, deployment: Deployment) -> Iterator[None]:
    """Every test starts and ends with failover cleared."""
    yield
    status = client.get(ADMIN_FAILOVER, headers=as_key(deployment.admin_key)).json()
    if status["active"]:
        client.request("DELETE", ADMIN_FAILOVER, json={"note": "test cleanup"}, headers=as_key(deployment.admin_key))


# ----- auth ---------------------------------------------------------------------------------------
def test_requests_without_the_right_key_get_401_or_403_and_are_logged(
    client: TestClient, deployment: Deployment
) -> None:
    body = application(0)
    missing = client.post(SCORE_PATH, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {"status_code": 401, "request_id": missing.headers[REQUEST_ID_HEADER], "detail": (
        "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")}
    unknown = client.post(SCORE_PATH, json=body, headers={"Authorization": "Bearer lg_not-a-key"})
    assert unknown.json() == {"status_code": 401, "detail": "unknown API key",
                              "request_id": unknown.headers[REQUEST_ID_HEADER]}
    wrong = client.post(SCORE_PATH, json=body, headers=as_key(deployment.admin_key))
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "API key 'alice' lacks the 'score' scope this route needs"
    assert client.post(ADMIN_RELOAD, headers=as_key(deployment.score_key)).status_code == 403
    assert client.post(ADMIN_RELOAD).status_code == 401

    assert score(client, deployment, body).status_code == 200
    assert client.post(SCORE_PATH, json=body, headers=as_key(deployment.both_key)).status_code == 200

    rows = list(log_rows(deployment.paths).values())
    refused = sorted((r["status_code"], r["error"]) for r in rows if r["status_code"] in {401, 403})
    assert refused == [
        (401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"),
        (401, "unknown API key"),
        (403, "API key 'alice' lacks the 'score' scope this route needs"),
    ], "refused scoring requests are in the log (admin calls are not scoring requests)"
    assert all(r["probability"] is None and r["raw_body"] is None for r in rows if r["status_code"] in {401, 403})
    logged = {r["request_id"] for r in rows if r["status_code"] in {401, 403}}
    assert {a.json()["request_id"] for a in (missing, unknown, wrong)} <= logged, "a refusal names its log row"


def test_health_metrics_and_docs_stay_open(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/schema", "/schema/docs", "/schema/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_the_root_points_to_the_docs_and_the_health_routes(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200
    routes = index.json()
    assert routes["docs"] == "/schema"
    assert routes["openapi"] == "/schema/openapi.json"
    assert routes["score"] == SCORE_PATH
    for name in ("docs", "openapi", "health", "ready", "metrics"):
        assert client.get(routes[name]).status_code == 200, name


def test_the_docs_page_works_offline(client: TestClient) -> None:
    page = client.get("/schema")
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for text in (SCORE_PATH, "/v1/score/batch", ADMIN_RELOAD, ADMIN_FAILOVER, "/metrics", "term_months",
                 "one of 36, 60", "ScoreRequest"):
        assert text in html, text
    assert "<script" not in html
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?(?:https?:)?//", html), "nothing loaded from another host"
    assert "http://" not in html
    assert "https://" not in html
    document = client.get("/schema/openapi.json").json()
    assert {ADMIN_RELOAD, ADMIN_FAILOVER, "/metrics"} <= set(document["paths"])
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}


def test_an_internal_error_gets_a_generic_500(
    client: TestClient, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals at /srv/lendguard/model.py line 42")

    current = app_state(client.app).models.current
    monkeypatch.setattr(current.scorer, "probabilities", broken)
    response = score(client, deployment, application(5))
    assert response.status_code == 500
    assert response.json() == {"status_code": 500, "detail": "Internal Server Error"}
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    monkeypatch.undo()
    assert score(client, deployment, application(5)).status_code == 200


def test_oversized_admin_bodies_are_refused(client: TestClient, deployment: Deployment) -> None:
    body = {"by": "ops", "reason": "x" * ADMIN_MAX_BODY_BYTES}
    response = client.post(ADMIN_FAILOVER, json=body, headers=as_key(deployment.admin_key))
    assert response.status_code == 413
    assert not client.get(ADMIN_FAILOVER, headers=as_key(deployment.admin_key)).json()["active"]


# ----- failover -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("normal_mode")
def test_manual_review_failover_set_and_cleared_by_an_admin(
    client: TestClient, deployment: Deployment, scorers: dict[str, FeatureScorer]
) -> None:
    bodies = [application(i) for i in range(10, 22)]
    expected = scorers[deployment.first].probabilities(inputs(bodies))
    before = [score(client, deployment, b).json() for b in bodies]
    assert "auto_approve" in {a["decision"] for a in before}, "or failover's manual_review could go unnoticed"
    assert {a["mode"] for a in before} == {"normal"}

    set_ = client.post(ADMIN_FAILOVER, json={"reason": "drift alert", "fallback": "manual_review"},
                       headers=as_key(deployment.admin_key))
    assert set_.status_code == 200, set_.text
    status = set_.json()
    assert (status["active"], status["mode"], status["applied_fallback"], status["set_by"]) == (
        True, "failover", "manual_review", "alice")
    assert metric(client, "lendguard_failover_active") == 1

    during = [score(client, deployment, b) for b in bodies]
    assert all(r.headers["lendguard-mode"] == "failover" for r in during)
    assert all(r.headers["lendguard-fallback"] == "manual_review" for r in during)
    answers = [r.json() for r in during]
    assert {(a["decision"], a["mode"], a["model_version"]) for a in answers} == {
        ("manual_review", "failover", deployment.first)}
    assert [a["probability"] for a in answers] == pytest.approx(list(expected), abs=1e-12), "still scored"
    bad = score(client, deployment, application(22, term_months=48))
    assert bad.status_code == 400
    assert bad.headers["lendguard-mode"] == "failover"

    rows = log_rows(deployment.paths)
    assert {(rows[a["request_id"]]["mode"], rows[a["request_id"]]["decision"]) for a in answers} == {
        ("failover", "manual_review")}
    assert all(rows[a["request_id"]]["probability"] == a["probability"] for a in answers)
    refused = [r for r in rows.values() if r["status_code"] == 400 and r["application_id"] == "app-22"]
    assert [r["mode"] for r in refused] == ["failover"], "rejected requests say so too"

    cleared = client.request("DELETE", ADMIN_FAILOVER, json={"note": "drift explained"},
                             headers=as_key(deployment.admin_key))
    assert cleared.status_code == 200
    assert (cleared.json()["active"], cleared.json()["cleared_by"], cleared.json()["clear_note"]) == (
        False, "alice", "drift explained")
    after = [score(client, deployment, b) for b in bodies]
    assert "lendguard-mode" not in after[0].headers
    assert [a.json()["decision"] for a in after] == [a["decision"] for a in before]
    assert {a.json()["mode"] for a in after} == {"normal"}


@pytest.mark.usefixtures("normal_mode")
def test_a_flag_set_by_another_process_is_followed(client: TestClient, deployment: Deployment) -> None:
    """How fast is a benchmark (``bench/failover_follow.py``); here: it is followed, both ways."""
    env = {**os.environ, **deployment_env(deployment.paths.data_dir), "PYTHONPATH": str(ROOT)}

    def in_another_process(call: str) -> None:
        script = ("from warehouse.failover import set_failover, clear_failover\nfrom warehouse.paths import Paths\n"
                  f"{call}\n")
        subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT, timeout=120)

    def mode() -> str:
        return str(score(client, deployment, application(30)).json()["mode"])

    follower = app_state(client.app).failover
    in_another_process("set_failover(Paths.from_env(), by='monitoring', reason='alert 17', alert_ids=['17'])")
    wait_for(lambda: mode() == "failover", what="the API following the flag")
    status = client.get(ADMIN_FAILOVER, headers=as_key(deployment.admin_key)).json()
    assert (status["set_by"], status["reason"]) == ("monitoring", "alert 17")

    in_another_process("clear_failover(Paths.from_env(), by='bob', note='alert resolved')")
    wait_for(lambda: mode() == "normal", what="the API following the clear")
    assert follower.noticed_at >= flag_path(deployment.paths).stat().st_mtime


@pytest.mark.usefixtures("normal_mode")
def test_previous_champion_failover_scores_with_the_previous_version(
    client: TestClient, deployment: Deployment, scorers: dict[str, FeatureScorer]
) -> None:
    older: ModelBundle = scorers[deployment.older].bundle
    bodies = [application(i) for i in range(40, 56)]
    groups = {b[BOOK.group_column] for b in bodies}
    assert all(older.threshold_for(g) != scorers[deployment.first].bundle.threshold_for(g) for g in groups)

    set_ = client.post(ADMIN_FAILOVER, json={"reason": "champion misbehaves", "fallback": "previous_champion"},
                       headers=as_key(deployment.both_key))
    status = set_.json()
    assert (status["applied_fallback"], status["previous_champion_version"], status["set_by"]) == (
        "previous_champion", deployment.older, "ops-bot")
    responses = [score(client, deployment, b) for b in bodies]
    assert {r.headers["lendguard-fallback"] for r in responses} == {"previous_champion"}
    answers = [r.json() for r in responses]
    expected = scorers[deployment.older].probabilities(inputs(bodies))
    assert [a["probability"] for a in answers] == pytest.approx(list(expected), abs=1e-12)
    rows = log_rows(deployment.paths)
    for body, answer in zip(bodies, answers, strict=True):
        threshold = older.threshold_for(body[BOOK.group_column])
        assert (answer["model_version"], answer["mode"]) == (deployment.older, "failover")
        assert answer["threshold"] == pytest.approx(threshold)
        assert answer["decision"] == ("manual_review" if answer["probability"] >= threshold else "auto_approve")
        row = rows[answer["request_id"]]
        assert (row["model_version"], row["mode"], row["threshold"], row["decision"]) == (
            deployment.older, "failover", answer["threshold"], answer["decision"])
    assert client.get("/readyz").json()["model_version"] == deployment.first, "the champion is still loaded"


@pytest.mark.usefixtures("normal_mode")
def test_without_a_previous_champion_manual_review_applies_and_says_why(
    client: TestClient, deployment: Deployment
) -> None:
    from mlflow import MlflowClient

    registry.connect(deployment.paths)
    MlflowClient().delete_registered_model_alias(MODEL_NAME, "previous_champion")
    try:
        status = client.post(ADMIN_FAILOVER, json={"reason": "x", "fallback": "previous_champion"},
                             headers=as_key(deployment.admin_key)).json()
        assert (status["requested_fallback"], status["applied_fallback"]) == ("previous_champion", "manual_review")
        assert "no version has alias 'previous_champion'" in status["note"]
        answer = score(client, deployment, application(60)).json()
        assert (answer["decision"], answer["mode"], answer["model_version"]) == (
            "manual_review", "failover", deployment.first)
    finally:
        set_alias(deployment.paths, "previous_champion", deployment.older)


# ----- metrics ------------------------------------------------------------------------------------
def test_metrics_move_with_requests(client: TestClient, deployment: Deployment) -> None:
    ok = f'lendguard_http_requests_total{{endpoint="{SCORE_PATH}",method="POST",status="200"}}'
    invalid = f'lendguard_http_requests_total{{endpoint="{SCORE_PATH}",method="POST",status="400"}}'
    validation = 'lendguard_http_errors_total{kind="validation"}'
    unauthorized = 'lendguard_http_errors_total{kind="unauthorized"}'
    latency = f'lendguard_http_request_duration_seconds_count{{endpoint="{SCORE_PATH}"}}'
    names = (ok, invalid, validation, unauthorized, latency)
    before = {name: metric(client, name) for name in names}
    decisions_before = _decisions(client)

    answers = [score(client, deployment, application(i)).json() for i in range(70, 73)]
    score(client, deployment, application(73, term_months=48))
    client.post(SCORE_PATH, json=application(74))

    after = {name: metric(client, name) for name in names}
    assert {n: after[n] - before[n] for n in names} == {
        ok: 3, invalid: 1, validation: 1, unauthorized: 1, latency: 5}
    decisions = _decisions(client)
    positives = sum(a["decision"] == "manual_review" for a in answers)
    assert decisions["all"] - decisions_before["all"] == 3
    assert decisions["positive"] - decisions_before["positive"] == positives
    version = client.get("/readyz").json()["model_version"]
    assert metric(client, f'lendguard_model_info{{name="lendguard",version="{version}",alias="champion"}}') == 1
    assert metric(client, "lendguard_failover_active") == 0
    assert metric(client, "lendguard_prediction_log_pending_rows") == 0


def _decisions(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    total = sum(float(v) for v in re.findall(r'^lendguard_decisions_total\{[^}]*mode="normal"[^}]*\} (\S+)$', text,
                                             flags=re.MULTILINE))
    positive = metric(client, 'lendguard_positive_decisions_total{mode="normal"}')
    return {"all": total, "positive": positive}


# ----- admin reload -------------------------------------------------------------------------------
def test_an_admin_reload_swaps_under_load_without_a_failed_request(deployment: Deployment) -> None:
    paths, old, new = deployment.paths, deployment.first, deployment.retuned
    set_alias(paths, "champion", old)
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def stream(client: TestClient, worker: int) -> None:
        index = worker
        while not stop.is_set():
            response = score(client, deployment, application(index))
            answers.append((response.status_code, response.json().get("model_version")))
            index += 4

    with TestClient(create_app(settings_for(deployment, "test-ops-reload"), paths)) as client:
        unchanged = client.post(ADMIN_RELOAD, headers=as_key(deployment.admin_key))
        assert (unchanged.status_code, unchanged.json()["outcome"]) == (200, "unchanged")
        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(stream, client, w) for w in range(4)]
            try:
                wait_for(lambda: len(answers) >= 8, what="answers before the alias moves")
                set_alias(paths, "champion", new)
                moved = len(answers)
                wait_for(lambda: len(answers) >= moved + 8, what="answers after the alias moved")
                assert {v for _, v in answers[moved:]} == {old}, "no poll: only the admin call swaps"
                assert client.get("/readyz").json()["model_version"] == old
                reload = client.post(ADMIN_RELOAD, headers=as_key(deployment.admin_key))
                wait_for(lambda: any(v == new for _, v in answers[moved:]), what="an answer by the new version")
            finally:
                stop.set()  # the workers end even if a wait failed
            for worker in workers:
                worker.result()
        assert reload.status_code == 200, reload.text
        result = reload.json()
        assert (result["outcome"], result["served_version"], result["alias_version"], result["alias"]) == (
            "swapped", new, new, "champion")
        assert client.get("/readyz").json()["model_version"] == new
        again = client.post(ADMIN_RELOAD, headers=as_key(deployment.admin_key)).json()
        assert again["outcome"] == "unchanged"
    set_alias(paths, "champion", old)

    failed = [a for a in answers if a[0] != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed"
    versions = [v for _, v in answers]
    assert old in versions
    assert new in versions
    log.info("%d requests during the admin reload, none failed", len(answers))

