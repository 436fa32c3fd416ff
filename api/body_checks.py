"""A JSON request body checked as a hostile client could send it, before anything parses it deeply.

The bodies of ``/v1/score``, ``/v1/score/batch`` and the admin routes are msgspec Structs. Litestar
decodes a body whatever its Content-Type, converts it to the Struct leniently (``"52000"`` becomes
a number) and stops at the first error; a body it cannot decode (invalid UTF-8, deep nesting) ends
in a 500 or in a rejection row that cannot be built. :class:`StrictJSONRequest` replaces the
decode step (``Request.json``, which Litestar calls only for a route's ``data``, after its guards),
so every check below runs before the handler and after authentication, in this order:

1. ``Content-Type`` is ``application/json``, its charset (if stated) UTF-8: else **415**.
2. The body is valid UTF-8 (values and keys): else 400 naming the byte.
3. It nests at most :data:`MAX_DEPTH` arrays/objects, counted by a byte scan (brackets outside
   strings), before any parser recurses: else 400.
4. It decodes *strictly* into the route's Struct: numbers only where the schema says number,
   no unknown fields, finite numbers; no NUL and no lone surrogate in any string. When it does
   not, the body is decoded again leniently (Python's parser, NaN/Infinity/1e309 kept as markers)
   and every field is checked on its own, so the 400 lists *every* field's error, keyed by field.
   That second pass also accepts what JSON Schema calls an integer and msgspec does not (``690.0``).

5. (Scoring routes, in the handler, once the serving version is known: :func:`check_occurred_at`.)
   Each application's ``occurred_at`` lies between the horizon and receipt plus a small clock skew
   (:class:`OccurredAtBounds`): else 400 naming every such field. A client cannot date a request
   into the future or into a past the serving version never saw, so it cannot move monitoring's
   time windows; its refusal is logged like any other and counted by the ops marts.

The body size limit stays Litestar's (413, ``request_max_body_size``; the answer names the limit).
A duplicate key is not an error: the last value wins, as in Python's parser (RFC 8259 leaves it to
the parser). Errors keep Litestar's shape: ``ValidationException`` with ``extra=[{key, message,
source}]``, keys and messages printable and cut (a client's key may hold a NUL or 10,000 characters).

A request class rather than an ASGI middleware: Litestar reads the body once and caches it, enforces
the size limit while reading, and runs the guards first, so an anonymous client learns nothing
about a protected route's body rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin, overload

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

if TYPE_CHECKING:
    from ml.registry import ModelBundle
    from warehouse.settings import ApiSettings

MAX_DEPTH = 16
"""Deepest nesting of arrays/objects accepted (a batch body needs 2)."""
ERROR_TEXT_MAX_CHARS = 200
"""An error's key or message is cut here: it may echo a client's huge field name."""
JSON_MEDIA_TYPE = "application/json"
UTF8_NAMES = frozenset({"utf-8", "utf8"})

_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
"""The only ways valid UTF-8 JSON can spell a NUL or a surrogate (a raw NUL is invalid JSON)."""
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_ERROR_PATH = re.compile(r" - at `\$(.*)`$")


class UnsupportedMediaTypeError(ClientException):
    """415: the body is not declared as UTF-8 JSON."""

    status_code = 415


class NonFinite:
    """A number JSON cannot carry (NaN, Infinity, or a literal beyond float range), kept to name its field."""

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __repr__(self) -> str:
        return self.literal


# ----- the checks (pure functions) ---------------------------------------------------------------
def content_type_problem(media_type: str, params: dict[str, str]) -> str | None:
    """Why a body declared as ``media_type; params`` is refused (None: it is UTF-8 JSON)."""
    if not media_type:
        return f"missing Content-Type: send the body as {JSON_MEDIA_TYPE}"
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        return f"unsupported Content-Type {media_type!r}: send the body as {JSON_MEDIA_TYPE}"
    charset = params.get("charset")
    if charset is not None and charset.strip().strip('"').lower() not in UTF8_NAMES:
        return f"unsupported charset {charset!r}: send the body as UTF-8 (or state no charset)"
    return None


def json_depth(raw: bytes) -> int:
    """How deep ``raw``'s arrays/objects nest, from its bytes alone (no parser, no recursion).

    Strings are cut out first so brackets inside them do not count; an unterminated string's
    brackets do count, which can only overstate the depth of a body that is not JSON anyway."""
    brackets = _STRING_LITERAL.sub(b"", raw).translate(None, _NOT_A_BRACKET)
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def decode_body(raw: bytes, body_type: type[msgspec.Struct], *, detail: str = "Validation failed") -> msgspec.Struct:
    """``raw`` as a ``body_type`` instance; raises ``ValidationException`` (``detail``) listing every problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"the body is not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.end]!r})"
        raise _refused(detail, [_body_error(problem)]) from None
    depth = json_depth(raw)
    if depth > MAX_DEPTH:
        problem = f"the body nests {depth} arrays/objects deep; at most {MAX_DEPTH} are accepted"
        raise _refused(detail, [_body_error(problem)])
    try:
        value = msgspec.json.decode(raw, type=body_type, strict=True)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _decode_leniently(text, body_type, exc, detail)
    if _RISKY_ESCAPE.search(text):
        errors = [_error(key, message) for key, message in _character_problems(value, "")]
        if errors:
            raise _refused(detail, errors)
    return value


def _decode_leniently(text: str, body_type: type[msgspec.Struct], exc: Exception, detail: str) -> msgspec.Struct:
    """A body that did not decode strictly (``exc``), decoded by Python's parser and checked field by field.

    So the answer lists *every* field's error (msgspec stops at the first), names the field of a
    NaN/Infinity/1e309 (msgspec names a byte offset), and accepts what JSON Schema calls an integer
    but msgspec does not: an integral number written with a fraction (``52.0``). As in Python's
    parser, the last of duplicate keys wins."""
    try:
        parsed = json.loads(text, parse_constant=NonFinite, parse_float=_finite_or_marker)
    except json.JSONDecodeError as decode_error:
        where = f"line {decode_error.lineno}, column {decode_error.colno}"
        problem = f"the body is not valid JSON: {decode_error.msg} ({where})"
        raise _refused(detail, [_body_error(problem)]) from exc
    errors = dict(_character_problems(parsed, ""))
    normalized = _checked_struct(parsed, body_type, "", errors)
    if not errors:
        try:
            return msgspec.convert(normalized, body_type, strict=True)
        except msgspec.ValidationError as final:  # a rule across fields (``__post_init__``)
            errors.update([_located("", final)])
    raise _refused(detail, [_error(key, message) for key, message in errors.items()]) from exc


# ----- lenient value checks -----------------------------------------------------------------------
def _finite_or_marker(literal: str) -> float | NonFinite:
    number = float(literal)
    return number if number - number == 0 else NonFinite(literal)


def _character_problems(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """NUL and lone surrogates in any string or object key of ``value`` (a Struct or parsed JSON)."""
    if isinstance(value, str):
        if (found := _BAD_CHARACTER.search(value)) is not None:
            what = "a NUL character" if found.group() == "\x00" else f"a lone surrogate ({found.group()!r})"
            yield key or "body", f"the string contains {what}, which no field accepts"
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _character_problems(getattr(value, name), _join(key, name))
    elif isinstance(value, dict):
        for name, item in value.items():
            if _BAD_CHARACTER.search(name):
                yield _join(key, name), "the field name contains a NUL character or a lone surrogate"
            yield from _character_problems(item, _join(key, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _character_problems(item, f"{key}[{index}]")


def _checked_struct(value: Any, struct_type: type[msgspec.Struct], key: str, errors: dict[str, str]) -> Any:
    """``value`` checked against ``struct_type`` field by field, each problem added to ``errors``
    (the first per key stays); returns it with integral floats turned into ints where ints belong."""
    if not isinstance(value, dict):
        errors.setdefault(key or "body", f"Expected a JSON object, got `{_json_type(value)}`")
        return value
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct_type)}
    for name in value:
        if name not in fields:
            errors.setdefault(_join(key, name), f"Object contains unknown field `{name}`")
    for name, field in fields.items():
        if name in value:
            value[name] = _checked_value(value[name], field.type, _join(key, name), errors)
        elif field.required:
            errors.setdefault(_join(key, name), f"Object missing required field `{name}`")
    return value


def _checked_value(value: Any, annotation: Any, key: str, errors: dict[str, str]) -> Any:
    if isinstance(value, NonFinite):
        errors.setdefault(key, f"{value} is not a finite JSON number; expected a number within the field's bounds")
        return value
    items = _list_of_structs(annotation)
    if items is not None and isinstance(value, list):
        list_type, struct_type = items
        try:
            msgspec.convert(value, list_type, strict=True)
        except msgspec.ValidationError as exc:
            errors.setdefault(*_located(key, exc))
            return value
        return [_checked_struct(item, struct_type, f"{key}[{index}]", errors) for index, item in enumerate(value)]
    candidates = [value]
    if isinstance(value, float) and value.is_integer():
        candidates.append(int(value))  # 52.0 where an integer is expected: an integer in JSON Schema
    for candidate in candidates:
        try:
            msgspec.convert(candidate, annotation, strict=True)
        except msgspec.ValidationError as exc:
            problem = _located(key, exc)
        except TypeError:  # a NonFinite marker nested where no number belongs
            problem = key, f"Expected a value of the field's type, got {value!r}"
        else:
            return candidate
    errors.setdefault(*problem)
    return value


def _located(key: str, exc: Exception) -> tuple[str, str]:
    """msgspec's ``message - at `$.path``` as (``key`` + path, message)."""
    message = str(exc)
    match = _ERROR_PATH.search(message)
    path = match.group(1) if match else ""
    located = key + path if path.startswith("[") else _join(key, path.lstrip("."))
    return located or "body", _ERROR_PATH.sub("", message)


def _list_of_structs(annotation: Any) -> tuple[Any, type[msgspec.Struct]] | None:
    """``Annotated[list[SomeStruct], Meta...]`` as (``Annotated[list[Any], Meta...]``, ``SomeStruct``)."""
    metadata: tuple[Any, ...] = ()
    if get_origin(annotation) is Annotated:
        annotation, *rest = get_args(annotation)
        metadata = tuple(rest)
    if get_origin(annotation) is not list:
        return None
    (item,) = get_args(annotation)
    if not (isinstance(item, type) and issubclass(item, msgspec.Struct)):
        return None
    return (Annotated[(list[Any], *metadata)] if metadata else list[Any]), item


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "str", int: "int", float: "float", bool: "bool"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _error(key: str, message: str) -> dict[str, str]:
    """One field's error, printable whatever the client sent: a key may hold a NUL, a lone
    surrogate (neither can be encoded in the answer) or ten thousand characters."""
    return {"key": _printable(key), "message": _printable(message), "source": "body"}


def _printable(text: str) -> str:
    text = _BAD_CHARACTER.sub(lambda found: repr(found.group())[1:-1], text)
    return text if len(text) <= ERROR_TEXT_MAX_CHARS else f"{text[:ERROR_TEXT_MAX_CHARS]}…"


def _body_error(message: str) -> dict[str, str]:
    return _error("body", message)


def _refused(detail: str, errors: list[dict[str, str]]) -> ValidationException:
    return ValidationException(detail=detail, extra=errors)


# ----- occurred_at bounds -------------------------------------------------------------------------
OCCURRED_AT_REFUSED = "refused: occurred_at is"
"""How the message of an out-of-bounds ``occurred_at`` starts: the ops marts count the log's
rejections by it (``macros/monitoring_ops.sql`` spells it too; a unit test holds them equal)."""


@overload
def naive_utc(value: datetime) -> datetime: ...
@overload
def naive_utc(value: None) -> None: ...
def naive_utc(value: datetime | None) -> datetime | None:
    """An aware timestamp converted to UTC; a naive one is taken to be UTC already."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class OccurredAtBounds:
    """The ``occurred_at`` a request received at one moment may state (naive UTC, both ends included)."""

    earliest: datetime
    latest: datetime
    earliest_rule: str
    """Where ``earliest`` comes from, as the refusal says it."""
    latest_rule: str

    @classmethod
    def at_receipt(cls, received_at: datetime, bundle: ModelBundle, settings: ApiSettings) -> OccurredAtBounds:
        """Bounds for a request received at ``received_at`` (naive UTC) and scored by ``bundle``.

        Earliest: ``LENDGUARD_OCCURRED_AT_HORIZON`` if set, else the version's registration (the
        receipt, for a bundle not loaded from the registry) less the allowance: an application may
        have waited that long for its score. Latest: the receipt plus the allowed clock skew."""
        skew = settings.occurred_at_max_skew_seconds
        latest_rule = f"the receipt time plus {skew:g} s of clock skew (LENDGUARD_OCCURRED_AT_MAX_SKEW_SECONDS)"
        if settings.occurred_at_horizon is not None:
            earliest = naive_utc(settings.occurred_at_horizon)
            earliest_rule = "the horizon set by LENDGUARD_OCCURRED_AT_HORIZON"
        else:
            days = settings.occurred_at_allowance_days
            start = bundle.registered_at or received_at
            earliest = start - timedelta(days=days)
            since = "registration" if bundle.registered_at is not None else "receipt"
            earliest_rule = (f"model version {bundle.version}'s {since} less {days:g} days "
                             "(LENDGUARD_OCCURRED_AT_ALLOWANCE_DAYS)")
        return cls(earliest, received_at + timedelta(seconds=skew), earliest_rule, latest_rule)

    def problem(self, occurred_at: datetime | None) -> str | None:
        """Why ``occurred_at`` is refused, or None (also for an absent one: the receipt time is used)."""
        value = naive_utc(occurred_at)
        if value is None:
            return None
        if value > self.latest:
            return f"{OCCURRED_AT_REFUSED} {_iso(value)} UTC, after {_iso(self.latest)} UTC, {self.latest_rule}"
        if value < self.earliest:
            return f"{OCCURRED_AT_REFUSED} {_iso(value)} UTC, before {_iso(self.earliest)} UTC, {self.earliest_rule}"
        return None


def _iso(moment: datetime) -> str:
    """ISO 8601 to the second, four-digit year included (``strftime("%Y")`` writes year 1 as ``1``)."""
    return moment.isoformat(timespec="seconds")


class OccurredAtRefusedError(ValidationException):
    """400: an application's ``occurred_at`` is outside :class:`OccurredAtBounds`."""


def check_occurred_at(body: msgspec.Struct, bounds: OccurredAtBounds, *, detail: str = "Validation failed") -> None:
    """Refuse ``body`` (one application, or a batch's ``applications``) if any ``occurred_at`` is out of
    ``bounds``, naming every such field (``occurred_at`` or ``applications[<index>].occurred_at``)."""
    applications = getattr(body, "applications", None)
    items = ([(f"applications[{index}]", item) for index, item in enumerate(applications)]
             if isinstance(applications, list) else [("", body)])
    errors = [_error(_join(key, "occurred_at"), problem) for key, item in items
              if (problem := bounds.problem(getattr(item, "occurred_at", None))) is not None]
    if errors:
        raise OccurredAtRefusedError(detail=detail, extra=errors)


# ----- the Litestar hook ---------------------------------------------------------------------------
class StrictJSONRequest(Request[Any, Any, Any]):
    """The app's request class: a route whose ``data`` is a msgspec Struct gets it through
    :func:`decode_body` (after the Content-Type check); any other route decodes as Litestar does."""

    async def json(self) -> Any:
        state = ScopeState.from_scope(self.scope)
        body_type = self._struct_body_type()
        if body_type is None or state.json is not Empty:  # not ours, or decoded already
            return await super().json()
        media_type, params = self.content_type
        if (problem := content_type_problem(media_type, params)) is not None:
            raise UnsupportedMediaTypeError(detail=problem)
        value = decode_body(await self.body(), body_type, detail=f"Validation failed for {self.method} {self.url.path}")
        state.json = value
        return value

    async def body(self) -> bytes:
        try:
            return await super().body()
        except RequestEntityTooLarge as exc:  # Litestar's message does not say the limit
            limit = self.route_handler.resolve_request_max_body_size()
            raise RequestEntityTooLarge(detail=f"the body exceeds this route's limit of {limit} bytes") from exc

    def _struct_body_type(self) -> type[msgspec.Struct] | None:
        field = self.route_handler.parsed_data_field
        annotation = None if field is None else field.annotation
        return annotation if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) else None
