"""The docs page is rendered on the server and references no other host (it works offline)."""

from __future__ import annotations

import re

from api.docs import render_docs

DOCUMENT = {
    "info": {"title": "lendguard <API>", "version": "1.0.0", "description": "Scores loans."},
    "paths": {
        "/v1/score": {"post": {
            "summary": "Score one loan application",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}}},
            "responses": {"200": {"description": "Request fulfilled",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/R"}}}}},
        }},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/v1/admin/failover": {"delete": {"summary": "Clear failover", "responses": {}}},
    },
    "components": {"schemas": {"ScoreRequest": {
        "type": "object",
        "required": ["term_months"],
        "properties": {
            "term_months": {"type": "integer", "enum": [36, 60], "description": "Loan term"},
            "annual_income": {"oneOf": [{"type": "number", "minimum": 0.0}, {"type": "null"}]},
            "purpose": {"type": "string", "maxLength": 200, "description": "Known values: car, house"},
        },
    }}},
}


def test_every_route_and_field_is_on_the_page() -> None:
    html = render_docs(DOCUMENT, "/schema/openapi.json")
    for text in ("/v1/score", "/healthz", "/v1/admin/failover", "term_months", "one of 36, 60", "&gt;= 0.0",
                 "max length 200", "Known values: car, house", "ScoreRequest", "/schema/openapi.json"):
        assert text in html, text
    assert "lendguard &lt;API&gt;" in html, "text is escaped"
    assert "API key with scope <code>admin</code>" in html
    assert "API key with scope <code>score</code>" in html


def test_the_page_loads_nothing_from_another_host() -> None:
    html = render_docs(DOCUMENT, "/schema/openapi.json")
    assert "<script" not in html
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?(?:https?:)?//", html), "no external resource"
    assert "http://" not in html
    assert "https://" not in html
