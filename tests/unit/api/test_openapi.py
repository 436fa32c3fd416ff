"""The document states what the app answers: every error status with its body, and the security
requirement of every /v1/ route; and bodies go through the strict decode on a real Litestar app."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, get, post
from litestar.datastructures import State
from litestar.testing import TestClient

from api.auth import KEYS_STATE_KEY
from api.body_checks import StrictJSONRequest
from api.openapi import ClosedStructSchemaPlugin, ErrorResponsesPlugin


class Thing(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    size: int
    weight: float


@post("/v1/thing", sync_to_thread=False, request_max_body_size=1024, opt={"logged": True})
def make_thing(data: Thing) -> dict[str, Any]:
    return {"size": data.size, "weight": data.weight}


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def app(*, keys: object = None) -> Litestar:
    return Litestar([make_thing, healthz], plugins=[ClosedStructSchemaPlugin(), ErrorResponsesPlugin("logged")],
                    request_class=StrictJSONRequest, state=State({KEYS_STATE_KEY: keys}))


def document(litestar: Litestar) -> dict[str, Any]:
    with TestClient(litestar) as client:
        return client.get("/schema/openapi.json").json()  # type: ignore[no-any-return]


def test_every_status_a_v1_route_answers_is_documented_with_the_error_body() -> None:
    doc = document(app())
    operation = doc["paths"]["/v1/thing"]["post"]
    assert set(operation["responses"]) >= {"201", "400", "401", "403", "413", "415", "422", "503"}
    assert "X-Request-ID" in operation["responses"]["400"]["headers"], "a logged route's errors name their row"
    error = operation["responses"]["415"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    assert set(doc["components"]["schemas"]["ErrorResponse"]["properties"]) == {
        "status_code", "detail", "request_id", "extra"}
    assert doc["paths"]["/healthz"]["get"]["responses"].keys() == {"200"}, "outside /v1/: no key, no guard"


def test_security_is_stated_and_optional_only_while_the_api_has_no_keys() -> None:
    assert document(app())["paths"]["/v1/thing"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}, {}]
    with_keys = document(app(keys=object()))
    assert with_keys["paths"]["/v1/thing"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "security" not in with_keys["paths"]["/healthz"]["get"]


def test_a_struct_body_is_decoded_strictly_and_only_from_utf8_json() -> None:
    with TestClient(app()) as client:
        assert client.post("/v1/thing", json={"size": 3, "weight": 1}).json() == {"size": 3, "weight": 1.0}
        plain = client.post("/v1/thing", content=b'{"size": 3, "weight": 1}', headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        assert "application/json" in plain.json()["detail"]
        strings = client.post("/v1/thing", json={"size": "3", "weight": "1"})
        assert strings.status_code == 400
        assert [e["key"] for e in strings.json()["extra"]] == ["size", "weight"]
        too_big = client.post("/v1/thing", json={"size": 3, "weight": 1, "pad": "x" * 2_000})
        assert too_big.status_code == 413
        assert "limit" in too_big.json()["detail"]
