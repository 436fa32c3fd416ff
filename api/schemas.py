"""Request and response bodies.

The request body is not written by hand: it is built from the loaded model's loan-book contract,
so a lender's own book (other columns, other bounds) is served without touching this code, and
the API validates exactly what the model was trained on. Field names are the loan-book names,
which are also the prediction log's column names.

Validation follows the contract: bounded numbers, integers where declared, allowed values as an
enumeration, nullable inputs optional. Categorical values outside the declared categories are
*accepted* (the model one-hot encodes them to all zeros) and left for monitoring to flag; the
group column, which picks a threshold, must be one of its declared values.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

import msgspec

from warehouse.errors import LendguardError
from warehouse.loan_book import PROXY_ROLES, CategoricalFeature, LoanBookSchema, NumericFeature
from warehouse.prediction_log import META_FIELDS, SURNAME_EVIDENCE_COLUMNS, SURNAME_MATCH_COLUMN

REQUEST_STRUCT_NAME = "ScoreRequest"
REQUEST_ID_HEADER = "X-Request-ID"
"""Error answers of the scoring routes carry their prediction-log ``request_id`` here too."""
ENVELOPE_FIELDS = ("application_id", "occurred_at")
"""Optional fields every request may carry besides the application's inputs."""
OCCURRED_AT_DESCRIPTION = (
    "When the application happened (ISO 8601; UTC without an offset); default: when the request is received. "
    "Refused (400) if later than receipt plus LENDGUARD_OCCURRED_AT_MAX_SKEW_SECONDS or earlier than the horizon: "
    "LENDGUARD_OCCURRED_AT_HORIZON, else the serving version's registration less LENDGUARD_OCCURRED_AT_ALLOWANCE_DAYS.")
"""The envelope's timestamp, as the OpenAPI document states it (``api.body_checks.OccurredAtBounds`` checks it)."""
TEXT_MAX_LENGTH = 200
"""Longest accepted string (identifiers, categories): keeps oversized values out of the log."""
TEXT_PATTERN = "^[^\\u0000]*$"
"""No NUL in a string (readers of the log choke on it); stated in the schema so clients and fuzzers know."""
NOT_BLANK_TEXT_PATTERN = "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085\\ufeff][^\\u0000]*$"
"""No NUL and not blank: a character that is white space neither to Python (``str.strip``) nor to
JavaScript (JSON Schema's regular expressions)."""

Decision = Literal["auto_approve", "manual_review"]
Mode = Literal["normal", "failover"]
"""Spelled as ``warehouse.prediction_log.DECISIONS`` and ``MODES`` (a unit test holds them equal)."""


class ContractNotServableError(LendguardError):
    """The loan-book contract cannot be turned into a request body (a name clash)."""


class ReasonCode(msgspec.Struct, kw_only=True):
    """An input that raised the probability: ``impact`` is how much lower it is with the input withheld."""

    feature: str
    impact: float


class ScoreResponse(msgspec.Struct, kw_only=True):
    """The decision for one application (field names match the prediction log's columns)."""

    request_id: str
    application_id: str | None
    model_name: str
    model_version: str
    probability: float
    threshold: float
    decision: Decision
    mode: Mode
    reason_codes: tuple[ReasonCode, ...] = ()
    """The inputs that pushed the probability up most, largest first (at most three; see
    ``ml.scoring``): the principal reasons a lender gives for a manual review."""
    unknown_categories: tuple[str, ...] = ()
    """Categorical inputs whose value the model does not know: scored with that feature's one-hot
    columns all zero (as if it were none of the known values) and flagged in the log for monitoring."""


class ReadyResponse(msgspec.Struct, kw_only=True):
    """What /readyz reports: which model version answers, or why none does."""

    status: Literal["ready", "not_ready"]
    model_name: str | None = None
    model_version: str | None = None
    """The version answering requests now (it changes when the alias moves; see ``api.reload``)."""
    alias: str | None = None
    alias_version: str | None = None
    """The version the alias pointed at when the registry last answered; differs from
    ``model_version`` while a version cannot be served (another contract: restart needed)."""
    registry_checked_at: datetime | None = None
    """When the registry last answered (UTC); old while the registry is unreachable."""
    reason: str | None = None


@cache
def build_request_struct(loan_book: LoanBookSchema) -> type[msgspec.Struct]:
    """A ``ScoreRequest`` Struct type with one field per loan-book input, plus group and envelope.

    Cached: one type per contract, so the single and the batch route share it (one OpenAPI schema)."""
    _check_names(loan_book)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    allowed_floats: dict[str, tuple[float, ...]] = {}
    for numeric in loan_book.numeric_features:
        annotation = _numeric_type(numeric)
        if numeric.allowed is not None and not numeric.integer:
            allowed_floats[numeric.name] = tuple(float(v) for v in numeric.allowed)
        fields.append(_field(numeric.name, annotation, numeric.nullable))
    fields.extend(_field(c.name, _categorical_type(c), c.nullable) for c in loan_book.categorical_features)
    fields.extend((name, _group_type(loan_book) | None, None) for name in loan_book.group_columns)
    fields.extend((loan_book.proxies[role], PROXY_TYPES[role] | None, None)
                  for role in PROXY_ROLES if role in loan_book.proxies)
    fields.append(("application_id", Annotated[str, _text_meta()] | None, None))
    fields.append(("occurred_at", Annotated[datetime, msgspec.Meta(description=OCCURRED_AT_DESCRIPTION)] | None, None))

    namespace: dict[str, Any] = {}
    if allowed_floats:
        namespace["__post_init__"] = _allowed_check(allowed_floats)
    return msgspec.defstruct(
        REQUEST_STRUCT_NAME,
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        namespace=namespace,
        module=__name__,
    )


# ----- field types --------------------------------------------------------------------------------
def _field(name: str, annotation: Any, nullable: bool) -> tuple[str, Any] | tuple[str, Any, Any]:
    return (name, annotation | None, None) if nullable else (name, annotation)


def _numeric_type(feature: NumericFeature) -> Any:
    if feature.allowed is not None and feature.integer:
        values = tuple(int(v) for v in feature.allowed)
        return Annotated[Literal[values], msgspec.Meta(description=feature.description)]
    if feature.integer:
        low = -sys.maxsize if feature.min is None else math.ceil(feature.min)
        high = sys.maxsize if feature.max is None else math.floor(feature.max)
        return Annotated[int, msgspec.Meta(ge=low, le=high, description=feature.description)]
    # Without a declared bound, the largest finite float still keeps inf out.
    low_f = -sys.float_info.max if feature.min is None else float(feature.min)
    high_f = sys.float_info.max if feature.max is None else float(feature.max)
    return Annotated[float, msgspec.Meta(ge=low_f, le=high_f, description=feature.description)]


def _text_meta(description: str | None = None) -> msgspec.Meta:
    return msgspec.Meta(max_length=TEXT_MAX_LENGTH, pattern=TEXT_PATTERN, description=description)


def _categorical_type(feature: CategoricalFeature) -> Any:
    known = ""
    if feature.values:
        known = f" Known values: {', '.join(feature.values)} (others accepted, flagged by monitoring)."
    return Annotated[str, _text_meta(f"{feature.description}{known}".strip())]


def _group_type(loan_book: LoanBookSchema) -> Any:
    description = "Group used for the decision threshold and monitoring, never a model input."
    if loan_book.group_not_provided is not None:
        description += f" Missing means {loan_book.group_not_provided!r}."
    if loan_book.group_values is None:
        return Annotated[str, _text_meta(description)]
    values = tuple(dict.fromkeys([*loan_book.group_values, *filter(None, [loan_book.group_not_provided])]))
    return Annotated[Literal[values], msgspec.Meta(description=description)]


def _proxy_type(pattern: str, description: str, max_length: int = TEXT_MAX_LENGTH) -> Any:
    return Annotated[str, msgspec.Meta(pattern=pattern, max_length=max_length, description=description)]


ZIP_PATTERN = "^[0-9]{5}(-[0-9]{4})?$"
_NOT_FOR_DECIDING = " Used only to estimate group membership for fairness testing (BISG), never to decide."
PROXY_TYPES: dict[str, Any] = {
    "surname": _proxy_type(NOT_BLANK_TEXT_PATTERN, "The applicant's surname. Missing: the Census 'ALL OTHER NAMES' "
                           "row. Not kept in the log unless LENDGUARD_LOG_PROXY_NAMES is true." + _NOT_FOR_DECIDING),
    "first_name": _proxy_type(NOT_BLANK_TEXT_PATTERN, "The applicant's first name. Not kept in the log unless "
                              "LENDGUARD_LOG_PROXY_NAMES is true." + _NOT_FOR_DECIDING),
    "zcta": _proxy_type(ZIP_PATTERN, "The applicant's ZIP code tabulation area (5 digits; a ZIP+4 as 12345-6789 "
                        "counts by its first five). Missing or not a Census ZCTA: the surname alone."
                        + _NOT_FOR_DECIDING, 10),
    "zip": _proxy_type(ZIP_PATTERN, "The applicant's ZIP code (5 digits, or ZIP+4 as 12345-6789), taken as its ZCTA. "
                       "Missing or not a Census ZCTA: the surname alone." + _NOT_FOR_DECIDING, 10),
    "census_tract": _proxy_type("^[0-9]{11}$", "The applicant's Census tract (11-digit FIPS code)." + _NOT_FOR_DECIDING,
                                11),
}
"""The request field of each proxy role: optional, validated, documented in the OpenAPI document."""


def _allowed_check(allowed: dict[str, tuple[float, ...]]) -> Any:
    """``__post_init__`` for float inputs restricted to a set (Literal cannot hold floats)."""

    def __post_init__(self: msgspec.Struct) -> None:  # noqa: N807 - msgspec looks up this name
        for name, values in allowed.items():
            value = getattr(self, name)
            if value is not None and float(value) not in values:
                raise ValueError(f"Invalid value for field `{name}`: expected one of {list(values)}, got {value!r}")

    return __post_init__


def _check_names(loan_book: LoanBookSchema) -> None:
    taken = set(ENVELOPE_FIELDS) | {f.name for f in META_FIELDS} | {*SURNAME_EVIDENCE_COLUMNS, SURNAME_MATCH_COLUMN}
    own = [*loan_book.input_names, *loan_book.group_columns, *loan_book.proxies.values()]
    clash = sorted(taken.intersection(own))
    if clash:
        raise ContractNotServableError(
            f"loan-book column(s) {clash} clash with the API's envelope or prediction-log columns; rename them"
        )
