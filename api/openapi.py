"""OpenAPI document details Litestar leaves out.

Request bodies are msgspec Structs with ``forbid_unknown_fields=True``: an unknown field is a 400.
Litestar documents them as open objects, so a client generator (or a fuzzer reading the document)
would believe extra fields are allowed. :class:`ClosedStructSchemaPlugin` says
``additionalProperties: false`` for them.

Litestar also documents only 200 and 400 per route and no security requirement. The app answers
more, by design: 401/403 from the key guard (``api.auth``), 413 over the body limit, 415 for a body
that is not UTF-8 JSON (``api.body_checks``), 422 for an Idempotency-Key reused with another body,
503 while no model is loaded or a decision's log row is not durable. :class:`ErrorResponsesPlugin`
adds each to every operation that can answer it, with the error body's schema, and the security
requirement (bearer or X-API-Key) to every route under ``/v1/``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import InitPluginProtocol

from api.auth import KEYS_STATE_KEY, required_scope
from api.schemas import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.config.app import AppConfig
    from litestar.openapi.spec import OpenAPI, Operation
    from litestar.typing import FieldDefinition

ERROR_SCHEMA = "ErrorResponse"
FIELD_ERROR_SCHEMA = "FieldError"
SECURITY_SCHEMES = ("bearer", "apiKey")
"""Defined in the document's components by ``api.plugin.LendguardPlugin``."""
SAME_BODY_AS_200 = {
    "/readyz": {503: "Not ready: `reason` says why."},
    "/v1/admin/reload": {409: "The alias points where this process will not go (restart needed, or alias unset).",
                         503: "The registry could not be asked, or the version could not be loaded."},
}
"""Statuses a route answers with its usual body."""
"""Routes whose every request is in the prediction log: their errors carry its ``request_id``."""

STATUS_TEXT = {
    400: "Invalid request: not JSON, too deep, or a field's value is wrong; `extra` lists every field's error.",
    401: "No API key, or an unknown one (when keys are configured).",
    403: "The API key lacks this route's scope (admin routes: no keys configured).",
    413: "The body exceeds this route's size limit.",
    415: "The body is not declared as `application/json` (charset UTF-8, if stated).",
    422: "The Idempotency-Key was used before with another body.",
    503: "Not ready (no model loaded, shutting down) or the decision could not be logged durably; retry.",
}


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Structs that forbid unknown fields are documented as closed objects."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        config = getattr(field_definition.type_, "__struct_config__", None)
        return bool(config is not None and config.forbid_unknown_fields)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


class ErrorResponsesPlugin(InitPluginProtocol):
    """Completes the document when the app starts: every status each route can answer, and security.

    Routes whose handler ``opt`` has ``logged_opt`` set log every request: their errors carry its
    ``request_id``, as body field and header."""

    def __init__(self, logged_opt: str | None = None) -> None:
        self.logged_opt = logged_opt

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        anonymous = app_config.state.get(KEYS_STATE_KEY) is None  # open mode: /v1/score needs no key
        app_config.on_startup.append(
            lambda app: document_errors(app, anonymous_scoring=anonymous, logged_opt=self.logged_opt))
        return app_config


def document_errors(app: Litestar, *, anonymous_scoring: bool, logged_opt: str | None = None) -> OpenAPI:
    """Add the error statuses, their body schema and the security requirement to ``app``'s document."""
    logged = {route.path for route in app.routes for handler in getattr(route, "route_handlers", [])
              if logged_opt is not None and handler.opt.get(logged_opt)}
    document = app.openapi_schema
    components = document.components
    schemas = components.schemas if components.schemas is not None else {}
    schemas.update(_error_schemas())
    components.schemas = schemas
    for path, item in (document.paths or {}).items():
        scope = required_scope(path)
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method)
            if operation is None:
                continue
            if operation.responses is not None and "200" in operation.responses:
                for status, text in SAME_BODY_AS_200.get(path, {}).items():
                    operation.responses.setdefault(str(status), replace(operation.responses["200"], description=text))
            if scope is None:
                continue
            operation.security = [{name: []} for name in SECURITY_SCHEMES]
            if scope == "score" and anonymous_scoring:
                operation.security.append({})  # no key needed while the API runs without keys
            responses = operation.responses if operation.responses is not None else {}
            for status in _statuses(operation, logged=path in logged):
                if status == 400 or str(status) not in responses:  # Litestar's 400 lacks request_id and the header
                    responses[str(status)] = _error_response(status, logged=path in logged)
            operation.responses = responses
    return document


def _statuses(operation: Operation, *, logged: bool) -> list[int]:
    statuses = [400, 401, 403, 503]
    if operation.request_body is not None:
        statuses += [413, 415]
    if logged:  # the scoring routes: an Idempotency-Key reused with another body
        statuses.append(422)
    return statuses


def _error_response(status: int, *, logged: bool) -> OpenAPIResponse:
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if logged:
        headers = {REQUEST_ID_HEADER: OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), description="The request's row in the prediction log.")}
    return OpenAPIResponse(
        description=STATUS_TEXT[status],
        content={"application/json": OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}"))},
        headers=headers,
    )


def _error_schemas() -> dict[str, Any]:
    text = Schema(type=OpenAPIType.STRING)
    field_error = Schema(
        type=OpenAPIType.OBJECT, required=["message"],
        properties={
            "key": Schema(type=OpenAPIType.STRING,
                          description="The field (`applications[2].credit_score`), or `body` for the whole body."),
            "message": text,
            "source": text,
        },
        description="One field's error.",
    )
    error = Schema(
        type=OpenAPIType.OBJECT, required=["status_code", "detail"],
        properties={
            "status_code": Schema(type=OpenAPIType.INTEGER),
            "detail": text,
            "request_id": Schema(type=OpenAPIType.STRING, description=(
                "Scoring routes: the request's row in the prediction log (also the X-Request-ID header).")),
            "extra": Schema(type=OpenAPIType.ARRAY, items=Reference(ref=f"#/components/schemas/{FIELD_ERROR_SCHEMA}"),
                            description="Every field's error (400)."),
        },
        description="An error answer.",
    )
    return {ERROR_SCHEMA: error, FIELD_ERROR_SCHEMA: field_error}
