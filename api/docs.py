"""The API docs page, rendered on the server from the OpenAPI document: works offline.

Litestar's UI plugins (Scalar, Swagger UI, ReDoc, ...) load their JavaScript from a CDN, so on a
machine without internet access ``/schema`` is a blank page. This plugin renders the same
OpenAPI document as plain HTML instead (every route, who may call it, its body fields with types,
bounds and allowed values, its answers): no script, no stylesheet, no font, nothing from another
host. The machine-readable document stays at ``/schema/openapi.json`` (and ``.yaml``).
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

from api.auth import required_scope

DOCS_PATHS = ("/", "/docs")
"""Under the OpenAPI path: ``/schema`` and ``/schema/docs``."""
_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
code, .path { font-family: ui-monospace, monospace; }
.route { border: 1px solid #ddd; border-radius: 6px; margin: 1rem 0; padding: .5rem 1rem; }
.method { font-weight: bold; text-transform: uppercase; margin-right: .5rem; }
.scope { font-size: .85rem; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .5rem; text-align: left; vertical-align: top; }
"""


class OfflineDocsPlugin(OpenAPIRenderPlugin):
    """Serves the HTML page at ``/schema`` and ``/schema/docs``."""

    def __init__(self) -> None:
        super().__init__(path=list(DOCS_PATHS), favicon="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return render_docs(openapi_schema, self.get_openapi_json_route(request)).encode("utf-8")


def render_docs(document: dict[str, Any], json_url: str) -> str:
    info = document.get("info", {})
    title = escape(str(info.get("title", "API")))
    parts = [
        "<!DOCTYPE html>",
        f"<html lang='en'><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title} <small>{escape(str(info.get('version', '')))}</small></h1>",
        f"<p>{escape(str(info.get('description', '')))}</p>",
        f"<p>OpenAPI document: <a href='{escape(json_url)}'>{escape(json_url)}</a></p>",
        "<h2>Authentication</h2>",
        "<p>Routes under <code>/v1/</code> need an API key when the server has keys configured: send "
        "<code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key: &lt;key&gt;</code>. "
        "<code>/v1/admin/</code> routes need the <code>admin</code> scope, the others <code>score</code>. "
        "A missing or unknown key gets 401, a key without the scope 403. "
        "Health, readiness, metrics and these docs are open.</p>",
        "<h2>Routes</h2>",
    ]
    for path, item in sorted(document.get("paths", {}).items()):
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                parts.append(_route(document, path, method, operation))
    parts.append("</body></html>")
    return "\n".join(parts)


def _route(document: dict[str, Any], path: str, method: str, operation: dict[str, Any]) -> str:
    scope = required_scope(path)
    access = "open" if scope is None else f"API key with scope <code>{scope}</code>"
    parts = [
        "<section class='route'>",
        f"<h3><span class='method'>{escape(method)}</span><span class='path'>{escape(path)}</span></h3>",
        f"<p>{escape(str(operation.get('summary', '')))}</p>",
        f"<p class='scope'>Access: {access}</p>",
    ]
    if operation.get("description"):
        parts.append(f"<p>{escape(str(operation['description']))}</p>")
    parameters = [p for p in operation.get("parameters", []) if isinstance(p, dict)]
    if parameters:
        parts.append("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>type</th></tr>")
        parts.extend(
            f"<tr><td><code>{escape(str(p.get('name')))}</code></td><td>{escape(str(p.get('in')))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{escape(_type(document, p.get('schema', {})))}</td></tr>"
            for p in parameters
        )
        parts.append("</table>")
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body:
        parts.append(_fields(document, body, "Body"))
    responses = operation.get("responses", {})
    if responses:
        parts.append("<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
        for status, response in sorted(responses.items()):
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            parts.append(
                f"<tr><td>{escape(str(status))}</td><td>{escape(str(response.get('description', '')))}</td>"
                f"<td>{escape(_type(document, schema)) if schema else ''}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</section>")
    return "\n".join(parts)


def _fields(document: dict[str, Any], schema: dict[str, Any], heading: str) -> str:
    resolved = _resolve(document, schema)
    properties = resolved.get("properties")
    if not properties:
        return f"<h4>{heading}</h4><p><code>{escape(_type(document, schema))}</code></p>"
    required = set(resolved.get("required", []))
    rows = [f"<h4>{heading}: <code>{escape(_type(document, schema))}</code></h4>",
            "<table><tr><th>field</th><th>required</th><th>type</th><th>allowed</th><th>description</th></tr>"]
    for name, field in properties.items():
        target = _resolve(document, _non_null(field))
        rows.append(
            f"<tr><td><code>{escape(name)}</code></td><td>{'yes' if name in required else 'no'}</td>"
            f"<td>{escape(_type(document, field))}</td><td>{escape(_bounds(target))}</td>"
            f"<td>{escape(str(field.get('description') or target.get('description') or ''))}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found = document.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
        return found if isinstance(found, dict) else {}
    return schema if isinstance(schema, dict) else {}


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(kept) == 1:
            return kept[0]
    return schema


def _type(document: dict[str, Any], schema: dict[str, Any] | None) -> str:
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    options = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(options, list):
        return " | ".join(_type(document, o) for o in options if isinstance(o, dict))
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(document, schema.get('items', {}))}"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    text = str(kind or "object")
    return f"{text} ({schema['format']})" if schema.get("format") else text


def _bounds(schema: dict[str, Any]) -> str:
    found = []
    if "enum" in schema:
        found.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            found.append(f"{sign} {schema[key]}")
    for key, label in (("minLength", "min length"), ("maxLength", "max length"), ("minItems", "min items"),
                       ("maxItems", "max items")):
        if key in schema:
            found.append(f"{label} {schema[key]}")
    return "; ".join(found)
