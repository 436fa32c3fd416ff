"""Hostile bodies against every POST route of a real app: a 4xx naming the problem, never a 5xx; every
refused scoring request logged exactly once under the request_id its answer carries; and a
`lendguard monitor` run over that traffic raises no critical alert (issue 13: ~100 invalid-UTF-8
bodies an hour used to trip the critical server_error_rate check and switch production to failover).

The corpus is tests/data/hostile_bodies.jsonl, one case per line: ``name``, ``status`` (the answer
expected from /v1/score), ``content_type`` (absent: application/json; null: no header) and ``body``.
A body is a string whose characters are its bytes (latin-1: "\\u00ff" is the byte 0xff), or a list
of pieces: such strings, ``[string, count]`` repeats, and ``{"application": {...}}``, a valid
application with those changes as JSON (optionally ``"drop": [fields]`` and ``"replace": [old, new]``
applied to its text).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.auth import create_key
from api.batch import APPLICATION_MAX_BYTES
from api.routes.admin import ADMIN_MAX_BODY_BYTES
from api.routes.score import BATCH_PATH, SCORE_MAX_BODY_BYTES, SCORE_PATH
from lendguard import cli
from tests.support.deployment import copy_deployment
from tests.support.monitoring import Receiver, query, use
from warehouse.failover import read_failover
from warehouse.landing import PREDICTION_LOG
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.settings import ApiSettings
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).parents[1] / "data" / "hostile_bodies.jsonl"
BATCH_MAX_ITEMS = 10
BODY_LIMITS = {
    SCORE_PATH: SCORE_MAX_BODY_BYTES,
    BATCH_PATH: APPLICATION_MAX_BYTES * BATCH_MAX_ITEMS + 1024,
    "/v1/admin/failover": ADMIN_MAX_BODY_BYTES,
}
"""The routes whose body is checked, and their size limits."""
LOGGED = (SCORE_PATH, BATCH_PATH)
BOOK = simulated_schema()


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    content_type: str | None
    body: bytes

    def expected(self, path: str) -> int:
        """What ``path`` answers: the corpus states /v1/score's; the other routes refuse every body."""
        if self.status == 415:
            return 415
        if len(self.body) > BODY_LIMITS[path]:
            return 413
        return self.status if path == SCORE_PATH else 400


def application() -> dict[str, Any]:
    row = simulate_traffic("stable", 1, seed=3).select([*BOOK.input_names, BOOK.group_column]).to_pylist()[0]
    return {**row, "application_id": "hostile-control"}


def piece_bytes(piece: Any) -> bytes:
    if isinstance(piece, str):
        return piece.encode("latin-1")
    if isinstance(piece, list):
        text, count = piece
        return piece_bytes(text) * count
    body = {k: v for k, v in {**application(), **piece["application"]}.items() if k not in piece.get("drop", [])}
    text = json.dumps(body)
    if "replace" in piece:
        old, new = piece["replace"]
        assert old in text, f"{old!r} not in {text!r}"
        text = text.replace(old, new)
    return text.encode("utf-8")


def load_corpus() -> list[Case]:
    cases = []
    for line in CORPUS.read_text(encoding="ascii").splitlines():
        if not line.strip():
            continue
        spec = json.loads(line)
        pieces = spec["body"] if isinstance(spec["body"], list) else [spec["body"]]
        cases.append(Case(spec["name"], spec["status"], spec.get("content_type", "application/json"),
                          b"".join(piece_bytes(p) for p in pieces)))
    return cases


CASES = load_corpus()


def test_the_corpus_holds_every_case_the_issue_names() -> None:
    names = " ".join(c.name for c in CASES).lower()
    for topic in ("invalid utf-8 in a value", "invalid utf-8 in a key", "latin-1", "deep arrays", "deep objects",
                  "lone high surrogate", "nul", "oversized", "nan", "infinity", "1e309", "truncated", "empty",
                  "binary", "huge key", "duplicate keys", "10,000-element array", "number as string", "text/plain",
                  "form-encoded", "multipart", "no content-type"):
        assert topic in names, topic


def test_no_hostile_body_gets_a_server_error_and_every_refusal_is_logged_once(
    trained_deployment: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = copy_deployment(trained_deployment, tmp_path)
    keys = tmp_path / "keys.json"
    key = create_key(keys, "hostile-client", ["score", "admin"])
    settings = ApiSettings(writer_id="hostile", model_poll_seconds=0, batch_max_items=BATCH_MAX_ITEMS,
                           api_keys_file=keys, require_auth=True)
    answers: dict[str, tuple[str, int]] = {}  # request_id -> (case, status) of logged routes
    wrong: list[str] = []
    with TestClient(create_app(settings, paths), raise_server_exceptions=False) as client:  # a 500 is an answer here
        for case in CASES:
            headers = {"Authorization": f"Bearer {key}"}
            if case.content_type is not None:
                headers["Content-Type"] = case.content_type
            for path in BODY_LIMITS:
                for method in ("POST", "DELETE") if path.startswith("/v1/admin/") else ("POST",):
                    response = client.request(method, path, content=case.body, headers=headers)
                    if response.status_code != case.expected(path):
                        wrong.append(f"{case.name}: {method} {path} {response.status_code} {response.text[:300]}")
                        continue
                    if path in LOGGED:
                        answer = response.json()
                        assert answer["request_id"] == response.headers.get("x-request-id", answer["request_id"])
                        if response.status_code >= 400:
                            assert response.headers["x-request-id"] == answer["request_id"]
                            assert answer["detail"], case.name
                        answers[answer["request_id"]] = (case.name, response.status_code)
            reload = client.post("/v1/admin/reload", content=case.body, headers=headers)  # takes no body
            if reload.status_code >= 500:
                wrong.append(f"{case.name}: POST /v1/admin/reload {reload.status_code} {reload.text[:300]}")
    assert not wrong, "\n".join(wrong)

    files = sorted((paths.landing / PREDICTION_LOG).glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f, columns=["request_id", "status_code"]).to_pylist()]
    logged = Counter(r["request_id"] for r in rows)
    status = {r["request_id"]: r["status_code"] for r in rows}
    assert {rid for rid in answers if logged[rid] != 1} == set(), "every answered request is logged exactly once"
    assert {rid: s for rid, (_, s) in answers.items() if status[rid] != s} == {}
    assert len(answers) == 2 * len(CASES)

    # What the monitor makes of this hour of traffic: refusals are the client's errors, not the server's.
    receiver = Receiver()
    try:
        use(monkeypatch, paths, receiver)
        assert cli.main(["monitor"]) != cli.EXIT_CRITICAL
    finally:
        receiver.close()
    alerts = query(paths, "select check_name, severity from mon_alerts")
    assert not (alerts.severity == "critical").any(), alerts
    assert not read_failover(paths).active
    errors = query(paths, "select sum(errors_server) as server, sum(requests) as requests,"
                          " sum(occurred_at_refused) as refused_times from mon_ops_hourly")
    assert int(errors.server[0]) == 0
    refused_times = [c for c in CASES if c.name.startswith("occurred_at far")]
    assert int(errors.refused_times[0]) == len(refused_times) == 2, "counted once each, from /v1/score"
    assert int(errors.requests[0]) >= len(answers)
