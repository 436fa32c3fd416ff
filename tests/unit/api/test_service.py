"""The service's pure parts: the decision rule, the scorer's input, the rows of the log."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from api.body_checks import naive_utc
from api.http import field_errors
from api.schemas import build_request_struct
from api.service import (
    RAW_BODY_MAX_CHARS,
    Receipt,
    decide,
    group_value,
    inputs_table,
    new_request_id,
    rejection_row,
)
from warehouse.loan_book import simulated_schema
from warehouse.prediction_log import prediction_log_schema
from warehouse.settings import redact_uri
from warehouse.simulator import simulate_traffic

BOOK = simulated_schema()
REQUEST = build_request_struct(BOOK)


def test_at_the_threshold_a_person_reviews() -> None:
    assert decide(0.2, 0.2) == "manual_review"
    assert decide(0.1999, 0.2) == "auto_approve"


def test_the_scorer_gets_float_numbers_and_string_categories_in_contract_order() -> None:
    rows = simulate_traffic("stable", 3).select(list(BOOK.input_names)).to_pylist()
    table = inputs_table(BOOK, [REQUEST(**r) for r in rows])
    assert table.column_names == list(BOOK.input_names)
    assert {table.schema.field(f.name).type for f in BOOK.numeric_features} == {pa.float64()}
    assert {table.schema.field(f.name).type for f in BOOK.categorical_features} == {pa.string()}
    assert table.column("credit_score").to_pylist() == [float(r["credit_score"]) for r in rows]


def test_a_missing_group_is_the_contracts_not_provided() -> None:
    row = simulate_traffic("stable", 1).select(list(BOOK.input_names)).to_pylist()[0]
    assert group_value(BOOK, REQUEST(**row)) == BOOK.group_not_provided
    assert group_value(BOOK, REQUEST(**row, ethnicity="Asian")) == "Asian"


def test_timestamps_become_naive_utc() -> None:
    aware = datetime(2026, 1, 5, 9, tzinfo=timezone(timedelta(hours=1)))
    assert naive_utc(aware) == datetime(2026, 1, 5, 8)
    assert naive_utc(datetime(2026, 1, 5, 8)) == datetime(2026, 1, 5, 8)
    assert naive_utc(None) is None
    assert Receipt.now("/v1/score").received_at.tzinfo is None
    assert abs(Receipt.now("/x").received_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


def test_a_rejection_row_keeps_the_body_and_what_can_be_read_from_it() -> None:
    receipt = Receipt.now("/v1/score")
    body = json.dumps({"application_id": "A-9", "occurred_at": "2026-01-05T09:00:00+01:00", "annual_income": -1})
    row = rejection_row(receipt, status_code=400, error="annual_income: too low", raw_body=body.encode(), bundle=None)
    assert row["application_id"] == "A-9"
    assert row["occurred_at"] == datetime(2026, 1, 5, 8)
    assert row["raw_body"] == body
    assert row["status_code"] == 400
    assert set(row) <= set(prediction_log_schema(BOOK).names)
    assert "annual_income" not in row, "a rejected request's inputs stay null"


def test_a_huge_or_broken_body_is_cut_not_fatal() -> None:
    receipt = Receipt.now("/v1/score")
    huge = rejection_row(receipt, status_code=413, error="too big", raw_body=b"x" * 100_000, bundle=None)
    assert len(huge["raw_body"]) < RAW_BODY_MAX_CHARS + 100
    assert huge["log_note"] == "raw_body: truncated (100000 bytes)"
    broken = rejection_row(receipt, status_code=400, error="bad", raw_body=b"\xff{", bundle=None)
    assert broken["raw_body"] == "\\xff{", "escaped, so the bytes received can be read back"
    assert broken["log_note"] == "raw_body: escaped (invalid UTF-8)"
    assert broken["application_id"] is None


def test_a_body_nested_too_deep_for_any_parser_still_makes_a_row() -> None:
    """Issue 13: ~1,000 levels raised RecursionError while the row was built, and the request went unlogged."""
    receipt = Receipt.now("/v1/score")
    deep = b'{"application_id": "A-1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    row = rejection_row(receipt, status_code=400, error="too deep", raw_body=deep, bundle=None)
    assert row["raw_body"].startswith('{"application_id": "A-1"')
    assert row["application_id"] is None, "not parsed at all"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"key": "annual_income", "message": "Expected `float` >= 0.0"},
         {"key": "annual_income", "message": "Expected `float` >= 0.0"}),
        ({"key": "data", "message": "Object missing required field `purpose`"},
         {"key": "purpose", "message": "Object missing required field `purpose`"}),
        ({"key": "data", "message": "Object contains unknown field `foo`"},
         {"key": "foo", "message": "Object contains unknown field `foo`"}),
        ({"key": "data", "message": "'data'"},
         {"key": "body", "message": "Expected a JSON object with the application's fields"}),
        ({"key": "term_months", "message": "Invalid enum value 37"},
         {"key": "term_months", "message": "Invalid enum value 37, expected one of [36, 60]"}),
    ],
)
def test_every_validation_error_is_keyed_by_its_field(entry: dict[str, str], expected: dict[str, str]) -> None:
    assert field_errors([{**entry, "source": "body"}], {"term_months": (36, 60)}) == [{**expected, "source": "body"}]


def test_credentials_never_reach_the_log_line() -> None:
    assert redact_uri("https://user:secret@mlflow.example/api") == "https://***@mlflow.example/api"
    assert redact_uri("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"


def test_request_ids_are_unique_hex_and_a_forked_child_draws_its_own() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its next id and leave without running pytest's teardown
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    childs = os.read(read, 64).decode()
    os.close(read)
    parents = new_request_id()
    assert childs[:16] != parents[:16], "the child drew its own process token"
    assert childs not in ids
