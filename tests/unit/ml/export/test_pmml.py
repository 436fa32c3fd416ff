"""Export to PMML: the whole pipeline, both families, the fitted pipeline untouched, exact thresholds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ml.candidates import named
from ml.export.pmml import export_pmml
from ml.train import build_pipeline
from tests.unit.ml.export.support import MODELS, Exported
from warehouse.loan_book import LoanBookSchema

NS = "{http://www.dmg.org/PMML-4_4}"

pytestmark = pytest.mark.slow  # fits both model families and runs the Java converter


def parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314 - written by the test itself


def estimators(value: object) -> list[BaseEstimator]:
    """Every estimator inside a pipeline (steps, column transformers, their fitted copies)."""
    found: list[BaseEstimator] = []
    if isinstance(value, BaseEstimator):
        found.append(value)
        for attribute in ("steps", "transformers", "transformers_"):
            for entry in getattr(value, attribute, []):
                found += estimators(entry[1])
    return found


def test_the_document_holds_preprocessing_and_model(exported: Exported, schema: LoanBookSchema) -> None:
    root = parse(exported.pmml)
    replaced = {f.get("name") for f in root.iter(f"{NS}MiningField") if f.get("missingValueReplacement")}
    assert replaced <= set(schema.model_numeric)
    assert len(replaced) >= len(schema.model_numeric) - 1  # the imputer (a tree may ignore a feature)
    scalings = [f for f in root.iter(f"{NS}DerivedField") if f.get("name", "").startswith("standardScaler(")]
    assert scalings  # the scaler
    if exported.name == "logistic_regression":
        [model] = root.iter(f"{NS}RegressionModel")
        assert model.get("normalizationMethod") == "logit"
        categories = {(p.get("name"), p.get("value")) for p in root.iter(f"{NS}CategoricalPredictor")}
        assert {name for name, _ in categories} == set(schema.model_categorical)  # the one-hot encoder
    else:
        trees = list(root.iter(f"{NS}TreeModel"))
        params = MODELS[exported.name].params
        assert len(trees) == params.get("max_iter", params.get("n_estimators"))


def test_the_fitted_pipeline_is_left_as_it_was(exported: Exported) -> None:
    """sklearn2pmml's escaping writes attributes into what it converts: it must convert a copy."""
    for estimator in estimators(exported.pipeline):
        assert "_sklearn_tags" not in vars(estimator)
        assert "pmml_base_class_" not in vars(estimator)


def test_tree_thresholds_are_the_fitted_doubles(boosted: Exported, schema: LoanBookSchema) -> None:
    """scikit-learn 1.9 keeps split thresholds as float64; the PMML carries them bit for bit."""
    model = boosted.pipeline.named_steps["model"]
    numeric = list(schema.model_numeric)
    fitted = []
    for iteration in model._predictors:
        nodes = iteration[0].nodes
        assert nodes["num_threshold"].dtype == np.float64
        splits = nodes[(nodes["is_leaf"] == 0) & (nodes["feature_idx"] < len(numeric))]
        fitted.append(
            sorted((f"standardScaler({numeric[n['feature_idx']]})", float(n["num_threshold"])) for n in splits)
        )
    written = [
        sorted(
            (p.get("field"), float(p.get("value")))
            for p in tree.iter(f"{NS}SimplePredicate")
            if p.get("operator") == "lessOrEqual"
        )
        for tree in parse(boosted.pmml).iter(f"{NS}TreeModel")
    ]
    assert written == fitted


def test_refuses_an_unfitted_pipeline(schema: LoanBookSchema, tmp_path: Path) -> None:
    unfitted = build_pipeline(schema, named("logreg_c1"))
    with pytest.raises(NotFittedError):
        export_pmml(unfitted, schema.model_numeric, schema.model_categorical, tmp_path / "m.pmml")


def test_refuses_features_the_pipeline_was_not_fitted_on(
    exported: Exported,
    schema: LoanBookSchema,
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="not on the declared features"):
        export_pmml(exported.pipeline, [*schema.model_numeric, "extra"], schema.model_categorical, tmp_path / "m.pmml")
    with pytest.raises(ValueError, match="distinct"):
        export_pmml(exported.pipeline, schema.model_numeric, schema.model_numeric, tmp_path / "m.pmml")
