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


def _proxies_only(**proxies: object) -> dict:
    """The simulated contract with its group column replaced by BISG proxies."""
    raw = simulated_schema().to_dict()
    raw["columns"].pop("group")
    raw["proxies"] = proxies or {"surname": "last_name", "zcta": "zcta5"}
    return raw


def test_a_contract_may_declare_proxies_instead_of_a_group_column() -> None:
    schema = LoanBookSchema.from_dict(_proxies_only(surname="last_name", zip={"name": "zip_code", "source": "ZIP"}))
    assert schema.group_column is None
    assert not schema.has_group
    assert schema.proxies == {"surname": "last_name", "zip": "zip_code"}
    assert schema.staged_proxies == {"proxy_surname": "last_name", "proxy_zcta": "zip_code"}, "a ZIP is the ZCTA"
    assert {"last_name", "zip_code"}.isdisjoint(schema.feature_names), "proxies are never model inputs"
    assert schema.declared_columns[-2:] == ("last_name", "zip_code"), "the importer reads and lands them"
    assert schema.file_format.header("zip_code") == "ZIP"
    assert LoanBookSchema.from_dict(schema.to_dict()) == schema
    assert schema.deployed_policy("group_thresholds") == "single_threshold"
    assert schema.dbt_var()["group_column"] is None


def test_a_contract_may_declare_both_a_group_and_proxies() -> None:
    raw = simulated_schema().to_dict()
    raw["proxies"] = {"surname": "last_name", "zcta": "zcta5", "first_name": "first_name"}
    schema = LoanBookSchema.from_dict(raw)
    assert schema.group_column == "ethnicity"
    assert schema.proxies["first_name"] == "first_name"
    assert schema.deployed_policy("group_thresholds") == "group_thresholds"
    assert simulated_schema().proxies == {}
    assert "proxies" not in simulated_schema().to_dict(), "a book without proxies keeps its fingerprint"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_proxies_only(zcta="zcta5"), "needs a `surname`"),
        (_proxies_only(surname="last_name"), "exactly one of `zcta` or `zip`"),
        (_proxies_only(surname="last_name", zcta="a", zip="b"), "exactly one of `zcta` or `zip`"),
        (_proxies_only(surname="last_name", zcta="zcta5", postcode="p"), "unknown role"),
        (_proxies_only(surname="annual_income", zcta="zcta5"), "declared twice"),
        ({**_proxies_only(), "proxies": None}, "declare the group column"),
    ],
)
def test_malformed_proxies_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(LoanBookSchemaError, match=message):
        LoanBookSchema.from_dict(raw)


def test_group_thresholds_without_a_group_column_are_refused() -> None:
    from warehouse.loan_book import GroupThresholdsWithoutGroupError

    with pytest.raises(GroupThresholdsWithoutGroupError, match=r"declares no group column.*never for deciding"):
        LoanBookSchema.from_dict({**_proxies_only(), "deployed_policy": "group_thresholds"})
    single = LoanBookSchema.from_dict({**_proxies_only(), "deployed_policy": "single_threshold"})
    assert single.deployed_policy("group_thresholds") == "single_threshold"
    grouped = LoanBookSchema.from_dict({**simulated_schema().to_dict(), "deployed_policy": "single_threshold"})
    assert grouped.deployed_policy("group_thresholds") == "single_threshold", "a book's own choice wins"
