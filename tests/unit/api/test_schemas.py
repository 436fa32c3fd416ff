"""The request body is the loan-book contract: what it declares is enforced, field by field."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any

import msgspec
import pytest

from api.schemas import ContractNotServableError, Decision, Mode, ScoreResponse, build_request_struct
from warehouse.loan_book import CategoricalFeature, LoanBookSchema, NumericFeature, simulated_schema
from warehouse.prediction_log import DECISIONS, META_FIELDS, MODES
from warehouse.simulator import simulate_traffic

BOOK = simulated_schema()
REQUEST = build_request_struct(BOOK)


def application(**changes: Any) -> dict[str, Any]:
    """One simulated application, as a client would send it."""
    row = simulate_traffic("stable", 1).select([*BOOK.input_names, BOOK.group_column]).to_pylist()[0]
    return {**row, **changes}


def decode(body: dict[str, Any], struct: type[msgspec.Struct] = REQUEST) -> Any:
    """As Litestar does: JSON to Python, then a lax ``convert`` into the body type."""
    return msgspec.convert(msgspec.json.decode(msgspec.json.encode(body)), struct, strict=False)


def error_of(body: dict[str, Any], struct: type[msgspec.Struct] = REQUEST) -> str:
    with pytest.raises(msgspec.ValidationError) as caught:
        decode(body, struct)
    return str(caught.value)


def test_a_valid_application_decodes_with_its_contract_types() -> None:
    body = application(application_id="A-1", occurred_at="2026-01-05T09:00:00+01:00")
    request = decode(body)
    assert request.annual_income == body["annual_income"]
    assert isinstance(request.credit_score, int)
    assert request.term_months in {36, 60}
    assert request.application_id == "A-1"
    assert request.occurred_at == datetime.fromisoformat("2026-01-05T09:00:00+01:00")
    assert set(REQUEST.__struct_fields__) == {*BOOK.input_names, BOOK.group_column, "application_id", "occurred_at"}


def test_the_group_and_the_envelope_are_optional() -> None:
    body = application()
    del body[BOOK.group_column]
    request = decode(body)
    assert getattr(request, BOOK.group_column) is None
    assert request.application_id is None
    assert request.occurred_at is None


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"annual_income": -1.0}, "annual_income", "Expected `float` >= 0.0"),
        ({"credit_score": 900}, "credit_score", "Expected `int` <= 850"),
        ({"credit_score": 700.5}, "credit_score", "Expected `int`, got `float`"),
        ({"term_months": 37}, "term_months", "Invalid enum value 37"),
        ({"annual_income": "lots"}, "annual_income", "Expected `float`, got `str`"),
        ({"purpose": 3}, "purpose", "Expected `str`, got `int`"),
        ({"ethnicity": "Martian"}, "ethnicity", "Invalid enum value 'Martian'"),
        ({"application_id": "x" * 201}, "application_id", "Expected `str` of length <= 200"),
    ],
)
def test_a_bad_value_is_rejected_naming_the_field(changes: dict[str, Any], field: str, problem: str) -> None:
    message = error_of(application(**changes))
    assert problem in message
    assert f"at `$.{field}`" in message


def test_a_missing_input_is_rejected_naming_it() -> None:
    body = application()
    del body["purpose"]
    assert error_of(body) == "Object missing required field `purpose`"


def test_an_unknown_field_is_rejected_naming_it() -> None:
    assert error_of(application(credit_scroe=700)) == "Object contains unknown field `credit_scroe`"


def test_an_unknown_category_is_accepted_for_monitoring_to_flag() -> None:
    assert decode(application(purpose="crypto")).purpose == "crypto"


def test_infinity_is_not_a_number_the_api_takes() -> None:
    """JSON cannot spell inf (1e999 fails to decode); the body type refuses it anyway."""
    book = replace(BOOK, numeric_features=(NumericFeature("unbounded"),), categorical_features=())
    struct = build_request_struct(book)
    with pytest.raises(msgspec.ValidationError, match="Expected `float` <="):
        msgspec.convert({"unbounded": math.inf}, struct, strict=False)
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(b'{"unbounded": 1e999}', type=struct)


def test_nullable_inputs_and_float_sets_follow_the_contract() -> None:
    book = replace(
        BOOK,
        numeric_features=(
            NumericFeature("rate", min=0, max=1, nullable=True),
            NumericFeature("grade", allowed=(0.5, 1.5)),
        ),
        categorical_features=(CategoricalFeature("channel", nullable=True),),
        group_values=None,
    )
    struct = build_request_struct(book)
    request = decode({"grade": 1.5}, struct)
    assert (request.rate, request.channel, getattr(request, book.group_column)) == (None, None, None)
    assert decode({"grade": 0.5, book.group_column: "any group"}, struct).grade == 0.5
    message = error_of({"grade": 1.0}, struct)
    assert "field `grade`" in message
    assert "[0.5, 1.5]" in message


def test_a_contract_whose_column_clashes_with_the_log_cannot_be_served() -> None:
    book = replace(BOOK, categorical_features=(CategoricalFeature("decision"),))
    with pytest.raises(ContractNotServableError, match="decision"):
        build_request_struct(book)


def test_the_response_speaks_the_warehouse_vocabulary() -> None:
    assert Decision.__args__ == DECISIONS  # type: ignore[attr-defined]
    assert Mode.__args__ == MODES  # type: ignore[attr-defined]
    fields = set(ScoreResponse.__struct_fields__)
    assert fields == {"request_id", "application_id", "model_name", "model_version", "probability", "threshold",
                      "decision", "mode", "reason_codes", "unknown_categories"}
    assert fields <= {f.name for f in META_FIELDS}, "every answer field is a prediction-log column"


def test_the_request_type_is_independent_of_the_simulator(tmp_path: Any) -> None:
    """A lender's own book with other columns gets its own body type."""
    raw = BOOK.to_dict()
    raw["numeric_features"] = [{"name": "salary", "min": 0}]
    raw["categorical_features"] = [{"name": "region", "values": ["north", "south"]}]
    raw["derived_features"] = []
    struct = build_request_struct(LoanBookSchema.from_dict(raw))
    assert set(struct.__struct_fields__) == {"salary", "region", BOOK.group_column, "application_id", "occurred_at"}
    assert decode({"salary": 10, "region": "east"}, struct).salary == 10.0
