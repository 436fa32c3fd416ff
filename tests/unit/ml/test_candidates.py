"""The search space: declared in dbt_project.yml vars, chosen by name, every family registrable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner

from lendguard.cli import cli
from ml.candidates import FAMILIES, CandidateError, choose, parse_names, search_space
from ml.registry import SKOPS_TRUSTED_TYPES
from ml.train import build_pipeline
from warehouse.loan_book import simulated_schema
from warehouse.project import project_vars

DECLARED = [
    {"name": "small", "family": "logistic_regression", "params": {"C": 0.1}},
    {"name": "trees", "family": "hist_gradient_boosting", "params": {"max_iter": 5}},
]


def test_the_search_space_is_the_dbt_project_var() -> None:
    declared = project_vars()["model_candidates"]
    assert [(c.name, c.family, c.params) for c in search_space()] == [
        (entry["name"], entry["family"], entry["params"]) for entry in declared
    ]


def test_candidates_are_chosen_by_name_in_declared_order() -> None:
    space = search_space(DECLARED)
    assert choose(None, space) == space
    assert [c.name for c in choose(["trees", "small"], space)] == ["small", "trees"]
    assert parse_names(" small ,trees") == ["small", "trees"]


@pytest.mark.parametrize(("names", "message"), [
    (["small", "forest"], r"unknown candidate\(s\) 'forest'; valid names: small, trees"),
    ([], r"no candidate named: give at least one of small, trees"),
])
def test_an_unknown_name_is_refused_listing_the_valid_ones(names: list[str], message: str) -> None:
    with pytest.raises(CandidateError, match=message):
        choose(names, search_space(DECLARED))


@pytest.mark.parametrize(("declared", "message"), [
    ([], "expected a non-empty list"),
    ([{"name": "x", "family": "random_forest"}], "unknown family 'random_forest'; known: logistic_regression"),
    ([{"name": "a,b", "family": "logistic_regression"}], "must be a non-empty text without commas"),
    ([{"name": "x", "family": "logistic_regression", "parms": {}}], "with name, family and params only"),
    ([DECLARED[0], DECLARED[0]], "declared twice: small"),
])
def test_a_malformed_search_space_is_refused_by_name(declared: object, message: str) -> None:
    with pytest.raises(CandidateError, match=message):
        search_space(declared)


def test_empty_names_are_refused() -> None:
    with pytest.raises(CandidateError, match="empty candidate name"):
        parse_names("small,,trees")


def test_the_cli_refuses_an_unknown_candidate_before_anything_runs() -> None:
    result = CliRunner().invoke(cli, ["train", "--candidates", "logreg_c1,forest"])
    assert result.exit_code == 2
    valid = ", ".join(c.name for c in search_space())
    assert f"unknown candidate(s) 'forest'; valid names: {valid}" in result.output


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_round_trips_through_skops_with_the_trusted_types(family: str) -> None:
    """MLflow saves the sklearn flavor with skops and loads it back with SKOPS_TRUSTED_TYPES: a type
    a family holds that is not listed makes the version unregistrable (issue #15, finding 2)."""
    schema = simulated_schema()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=200) for name in schema.model_numeric})
    for feature in schema.categorical_features:
        frame[feature.name] = rng.choice(list(feature.values or ("a", "b")), 200)
    labels = rng.random(200) < 0.3
    candidate = next(c for c in search_space() if c.family == family)
    fitted = build_pipeline(schema, candidate).fit(frame[list(schema.feature_names)], labels)
    loaded = skops.io.loads(skops.io.dumps(fitted), trusted=SKOPS_TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.predict_proba(frame), fitted.predict_proba(frame))


def test_every_feature_kind_may_be_absent() -> None:
    """A book with only numeric or only categorical features gets no transformer for the other kind
    (an unfitted one made the PMML export fail, issue #15, finding 1)."""
    schema = simulated_schema()
    for kept in ({"numeric_features": [], "derived_features": []}, {"categorical_features": []}):
        book = type(schema).from_dict({**schema.to_dict(), **kept})
        transformers = build_pipeline(book, search_space()[0]).named_steps["features"].transformers
        assert [names for _, _, names in transformers] == [
            names for names in (list(book.model_numeric), list(book.model_categorical)) if names
        ]
