"""Hostile bodies against the strict decode: each refused with every field's error, none parsed deeply."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from litestar.exceptions import ValidationException

from api.batch import build_batch_struct
from api.body_checks import (
    MAX_DEPTH,
    OCCURRED_AT_REFUSED,
    OccurredAtBounds,
    OccurredAtRefusedError,
    check_occurred_at,
    content_type_problem,
    decode_body,
    json_depth,
)
from api.schemas import build_request_struct
from ml.registry import ModelBundle
from warehouse.loan_book import simulated_schema
from warehouse.settings import PROJECT_DIR, ApiSettings

BOOK = simulated_schema()
SCORE = build_request_struct(BOOK)
BATCH = build_batch_struct(SCORE, 10)
VALID: dict[str, Any] = {
    "annual_income": 52000.0, "employment_length_years": 3.0, "debt_to_income": 20.0, "credit_score": 690,
    "credit_history_years": 8.0, "open_credit_lines": 4, "revolving_utilisation": 30.0, "delinquencies_2y": 0,
    "inquiries_6m": 1, "loan_amount": 12000.0, "term_months": 36, "interest_rate": 11.5,
    "home_ownership": "rent", "purpose": "car", "ethnicity": "White", "application_id": "a-1",
}


def errors_of(raw: bytes, body_type: type[msgspec.Struct] = SCORE) -> dict[str, str]:
    with pytest.raises(ValidationException) as caught:
        decode_body(raw, body_type)
    assert caught.value.status_code == 400
    return {e["key"]: e["message"] for e in caught.value.extra}  # type: ignore[union-attr]


def body(**changes: Any) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def test_a_valid_body_decodes_to_the_struct() -> None:
    decoded = decode_body(body(), SCORE)
    assert isinstance(decoded, SCORE)
    assert decoded.credit_score == 690  # type: ignore[attr-defined]


def test_numbers_as_strings_are_refused_each_with_its_field() -> None:
    errors = errors_of(body(annual_income="52000", credit_score="690.0", term_months="36"))
    assert errors == {
        "annual_income": "Expected `float`, got `str`",
        "credit_score": "Expected `int`, got `str`",
        "term_months": "Expected `int`, got `str`",
    }


def test_six_bad_fields_get_six_errors() -> None:
    raw = body(annual_income=-1, credit_score=1000, term_months=48, purpose=7, surprise=1, ethnicity="Martian")
    raw = raw.replace(b'"loan_amount": 12000.0, ', b"")
    errors = errors_of(raw)
    assert set(errors) == {"annual_income", "credit_score", "term_months", "purpose", "surprise", "ethnicity",
                           "loan_amount"}
    assert errors["loan_amount"] == "Object missing required field `loan_amount`"
    assert errors["surprise"] == "Object contains unknown field `surprise`"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309"])
def test_non_finite_numbers_name_their_field(literal: str) -> None:
    raw = body(annual_income=0.5).replace(b'"annual_income": 0.5', f'"annual_income": {literal}'.encode())
    errors = errors_of(raw)
    assert list(errors) == ["annual_income"]
    assert literal in errors["annual_income"]


def test_nul_and_lone_surrogates_are_refused_in_values_and_keys() -> None:
    assert list(errors_of(body(application_id="a\u0000b"))) == ["application_id"]
    assert "lone surrogate" in errors_of(body().replace(b'"a-1"', b'"\\ud800"'))["application_id"]
    assert "field name" in errors_of(body().replace(b'"purpose"', b'"pur\\u0000pose"'))["pur\\x00pose"]
    errors = errors_of(b'{"\\ud800": 1}')
    assert "field name" in errors["\\ud800"]
    assert "".join(f"{key}{message}" for key, message in errors.items()).encode("utf-8"), "encodable in the answer"
    assert decode_body(body(application_id="\U0001f600"), SCORE)  # a surrogate pair is one valid character


def test_invalid_utf8_is_refused_with_its_byte() -> None:
    message = errors_of(body().replace(b"a-1", b"a\xff1"))["body"]
    assert "not valid UTF-8" in message
    assert "\\xff" in message
    assert "not valid UTF-8" in errors_of(body().replace(b'"purpose"', b'"p\xe9"'))["body"]


def test_depth_is_counted_from_bytes_and_refused_before_parsing() -> None:
    assert json_depth(b'{"a": [[1], {"b": "[[[[["}]}') == 3
    assert json_depth(b"[" * 100_000) == 100_000  # no recursion
    assert f"at most {MAX_DEPTH}" in errors_of(b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}")["body"]
    assert "at most" in errors_of(b"[" * 200_000)["body"]


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "not valid JSON"), (b'{"annual_income": 5', "not valid JSON"), (b"[1, 2]", "Expected a JSON object"),
    (b"null", "Expected a JSON object"), (b"\x00\x01\x02", "not valid JSON"),
])
def test_bodies_that_are_not_an_object_are_refused_as_such(raw: bytes, expected: str) -> None:
    assert expected in errors_of(raw)["body"]


def test_a_huge_key_is_cut_in_its_error() -> None:
    errors = errors_of(b'{"' + b"k" * 10_000 + b'": 1}', BATCH)
    assert max(len(f"{key}{message}") for key, message in errors.items()) < 500


def test_batch_errors_are_keyed_by_application_and_field() -> None:
    good, bad = dict(VALID), {**VALID, "annual_income": "1", "purpose": None, "application_id": ["x", 1]}
    errors = errors_of(json.dumps({"applications": [good, bad, good]}).encode(), BATCH)
    assert errors == {"applications[1].annual_income": "Expected `float`, got `str`",
                      "applications[1].purpose": "Expected `str`, got `null`",
                      "applications[1].application_id": "Expected `str | null`, got `array`"}
    too_many = json.dumps({"applications": [good] * 11}).encode()
    assert "length <= 10" in errors_of(too_many, BATCH)["applications"]


@pytest.mark.parametrize("first", [b"600", b'"x"'])
def test_of_duplicate_keys_the_last_wins(first: bytes) -> None:
    raw = body().replace(b'"credit_score": 690', b'"credit_score": ' + first + b', "credit_score": 700')
    assert decode_body(raw, SCORE).credit_score == 700  # type: ignore[attr-defined]


def test_an_integral_number_with_a_fraction_is_an_integer_as_in_json_schema() -> None:
    decoded = decode_body(body().replace(b'"credit_score": 690', b'"credit_score": 690.0')
                          .replace(b'"term_months": 36', b'"term_months": 60.0'), SCORE)
    assert (decoded.credit_score, decoded.term_months) == (690, 60)  # type: ignore[attr-defined]
    assert type(decoded.credit_score) is int  # type: ignore[attr-defined]
    assert errors_of(body(credit_score=690.5)) == {"credit_score": "Expected `int`, got `float`"}


@pytest.mark.parametrize(("media_type", "params", "refused"), [
    ("application/json", {}, False), ("application/json", {"charset": "UTF-8"}, False),
    ("application/json", {"charset": "utf8"}, False), ("application/json", {"charset": "latin-1"}, True),
    ("text/plain", {}, True), ("application/x-www-form-urlencoded", {}, True), ("multipart/form-data", {}, True),
    ("", {}, True), ("application/json-patch+json", {}, True),
])
def test_only_utf8_json_is_accepted(media_type: str, params: dict[str, str], refused: bool) -> None:
    assert (content_type_problem(media_type, params) is not None) is refused


# ----- occurred_at bounds -------------------------------------------------------------------------
RECEIVED = datetime(2026, 12, 4, 12, 0)
REGISTERED = datetime(2026, 11, 1, 9, 0)


def bounds(registered_at: datetime | None = REGISTERED, **settings: Any) -> OccurredAtBounds:
    bundle = ModelBundle(name="lendguard", version="3", run_id="r", alias="champion", pipeline=None, feature_sql="",
                         loan_book=BOOK, policy={}, registered_at=registered_at)
    return OccurredAtBounds.at_receipt(RECEIVED, bundle, ApiSettings(**settings))


def test_occurred_at_is_bounded_by_receipt_plus_skew_and_registration_less_the_allowance() -> None:
    default = bounds()
    assert default.latest == RECEIVED + timedelta(seconds=300)
    assert default.earliest == REGISTERED - timedelta(days=90)
    assert default.problem(None) is None
    assert default.problem(default.latest) is None
    assert default.problem(default.earliest) is None
    late = default.problem(default.latest + timedelta(microseconds=1))
    assert late is not None
    assert late.startswith(OCCURRED_AT_REFUSED)
    assert "LENDGUARD_OCCURRED_AT_MAX_SKEW_SECONDS" in late
    early = default.problem(datetime(1, 1, 1, tzinfo=UTC))
    assert early is not None
    assert early.startswith(f"{OCCURRED_AT_REFUSED} 0001-01-01T00:00:00 UTC, before 2026-08-03T09:00:00 UTC, ")
    assert "model version 3's registration less 90 days" in early
    assert default.problem(datetime(2026, 12, 4, 17, 4, tzinfo=timezone(timedelta(hours=5)))) is None  # 12:04 UTC
    assert default.problem(datetime(2026, 12, 4, 17, 6, tzinfo=timezone(timedelta(hours=5)))) is not None


def test_the_horizon_setting_and_a_bundle_without_registration() -> None:
    assert bounds(occurred_at_horizon=datetime(2020, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))).earliest == (
        datetime(2020, 1, 1))
    unregistered = bounds(None, occurred_at_allowance_days=2)
    assert unregistered.earliest == RECEIVED - timedelta(days=2)
    assert "receipt less 2 days" in (unregistered.problem(datetime(2000, 1, 1)) or "")


def test_check_occurred_at_names_every_out_of_bounds_application_of_a_batch() -> None:
    far = datetime(9999, 1, 1)
    single = SCORE(**{**VALID, "occurred_at": far})
    with pytest.raises(OccurredAtRefusedError) as caught:
        check_occurred_at(single, bounds())
    assert [e["key"] for e in caught.value.extra] == ["occurred_at"]  # type: ignore[union-attr]
    batch = BATCH(applications=[SCORE(**VALID), SCORE(**{**VALID, "occurred_at": far}),
                                SCORE(**{**VALID, "occurred_at": datetime(1, 1, 1)})])
    with pytest.raises(OccurredAtRefusedError) as caught:
        check_occurred_at(batch, bounds())
    assert [e["key"] for e in caught.value.extra] == [  # type: ignore[union-attr]
        "applications[1].occurred_at", "applications[2].occurred_at"]
    check_occurred_at(BATCH(applications=[SCORE(**VALID)]), bounds())  # nothing to refuse


def test_the_ops_marts_count_refusals_by_the_same_words() -> None:
    macro = (PROJECT_DIR / "macros" / "monitoring_ops.sql").read_text()
    assert f"contains({{{{ error }}}}, '{OCCURRED_AT_REFUSED}')" in macro
