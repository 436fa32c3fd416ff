from __future__ import annotations

import pytest
import yaml

from warehouse.loan_book import LoanBookSchema, LoanBookSchemaError, simulated_schema
from warehouse.paths import PROJECT_DIR


def test_simulated_contract_round_trips() -> None:
    schema = simulated_schema()
    assert LoanBookSchema.from_dict(schema.to_dict()) == schema
    assert schema.group_column == "ethnicity"
    assert "ethnicity" not in schema.feature_names, "the group column must never be a model input"


def test_dbt_default_var_is_the_simulator_contract() -> None:
    """dbt_project.yml's default loan_book var must say what the simulator's YAML says."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["loan_book"] == simulated_schema().dbt_var()


def test_fingerprint_changes_with_the_contract() -> None:
    raw = simulated_schema().to_dict()
    before = LoanBookSchema.from_dict(raw).fingerprint()
    raw["numeric_features"] = raw["numeric_features"][:-1]
    assert LoanBookSchema.from_dict(raw).fingerprint() != before


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["columns"].update(id="Loan ID"), "snake_case"),
        (lambda r: r["numeric_features"].append({"name": "annual_income"}), "declared twice"),
        (lambda r: r["numeric_features"].append({"name": "defaulted"}), "reserved"),
        (lambda r: r["outcome"].update(negative=["defaulted"]), "both positive and negative"),
        (lambda r: r.pop("outcome"), "missing or malformed"),
    ],
)
def test_malformed_contracts_are_refused(mutate, message: str) -> None:
    raw = simulated_schema().to_dict()
    mutate(raw)
    with pytest.raises(LoanBookSchemaError, match=message):
        LoanBookSchema.from_dict(raw)


def test_reserved_names_cover_the_prediction_log_columns() -> None:
    from warehouse.loan_book import RESERVED_NAMES
    from warehouse.prediction_log import META_FIELDS

    assert {f.name for f in META_FIELDS} <= RESERVED_NAMES


def test_monotone_directions_are_declared_per_feature_and_checked() -> None:
    raw = simulated_schema().to_dict()
    schema = LoanBookSchema.from_dict(raw)
    assert schema.monotone_directions["credit_score"] == -1, "a better score never raises the risk"
    assert schema.monotone_directions["debt_to_income"] == 1
    assert schema.monotone_directions["loan_to_income"] == 1, "derived features may declare one too"
    assert "credit_history_years" not in schema.monotone_directions, "no direction by construction"
    raw["numeric_features"][0]["monotone"] = "up"
    with pytest.raises(LoanBookSchemaError, match=r"annual_income.*monotone must be one of"):
        LoanBookSchema.from_dict(raw)
