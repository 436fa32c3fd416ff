"""Training registers a real bundle in MLflow; the API's feature SQL equals the warehouse's."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import jpmml_mlflow.pmml
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from ml import registry
from ml.candidates import search_space
from ml.scoring import FeatureScorer
from ml.train import LABEL, load_split
from warehouse.build import current_loan_book
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

pytestmark = pytest.mark.slow


def test_champion_bundle_is_registered_with_its_paper_trail(trained_deployment: Paths) -> None:
    bundle = registry.load_bundle(trained_deployment, "champion")
    assert bundle.loan_book == current_loan_book(trained_deployment)
    assert "from application_rows" in bundle.feature_sql
    policies = bundle.policies
    assert policies.deployed == "group_thresholds"
    assert set(policies.policies) == {"group_thresholds", "single_threshold"}
    assert {"White", "Hispanic", "Black"} <= set(policies.active.thresholds), "large groups get their own"
    assert bundle.threshold_for("White") != bundle.threshold_for("Black")

    registry.connect(trained_deployment)
    client = MlflowClient()
    run = client.get_run(bundle.run_id)
    assert run.data.params["cv_folds"] == "3"
    assert run.data.params["model"] in {candidate.name for candidate in search_space()}
    assert run.data.metrics["test_group_thresholds_auc"] > 0.7
    assert 0 < run.data.metrics["cv_log_loss"] < 0.5
    tags = run.data.tags
    assert tags["loan_book_contract"] == bundle.loan_book.fingerprint()
    assert len(tags["git_commit"]) in {40, len("unknown")}
    assert len(tags["dbt_manifest_sha256"]) == 64
    assert len(tags["training_data_sha256"]) == 64
    assert int(tags["training_data_rows"]) > 0
    artifacts = {a.path for folder in ("training", "thresholds", "evaluation", "bundle")
                 for a in client.list_artifacts(bundle.run_id, folder)}
    assert {"training/cv_results.csv", "training/oof_predictions.parquet",
            "thresholds/cost_curve_group_thresholds.csv", "thresholds/cost_curve_single_threshold.csv",
            "evaluation/test_metrics_group_thresholds.csv", "bundle/policy.json", "bundle/feature.sql",
            "bundle/loan_book.yml", "bundle/model.pmml", "bundle/model.duckdb.sql", "bundle/model.spark.sql",
            "bundle/model.postgres.sql"} <= artifacts
    assert run.data.metrics["sql_parity_max_abs_diff"] <= 1e-9, "the compiled SQL reproduces the model"
    model_uri = f"models:/{registry.MODEL_NAME}/{bundle.version}"
    flavors = mlflow.models.get_model_info(model_uri).flavors
    assert {"sklearn", "python_function", "pmml"} <= set(flavors), "jpmml-mlflow's pmml flavor beside sklearn"
    bundle_pmml = Path(mlflow.artifacts.download_artifacts(run_id=bundle.run_id, artifact_path="bundle/model.pmml"))
    assert jpmml_mlflow.pmml.load_model(model_uri) == bundle_pmml.read_bytes(), "the PMML the SQL came from"
    version_tags = client.get_model_version(registry.MODEL_NAME, bundle.version).tags
    assert version_tags["gate_result"] == "passed"
    assert version_tags["approval"] == "approved"


def test_the_model_declares_its_own_requirements_not_the_environment(trained_deployment: Paths) -> None:
    """The logged model's requirements are its packages, pinned: what its classes and its loader
    need, not whatever a probe process imported (MLflow's inference listed pytest under pytest)."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    registry.connect(trained_deployment)
    model = Path(mlflow.artifacts.download_artifacts(f"models:/{registry.MODEL_NAME}/{bundle.version}"))
    listed = (model / "requirements.txt").read_text().split()
    assert listed == registry.model_requirements(bundle.pipeline)
    assert {line.split("==")[0] for line in listed} == {"scikit-learn", *registry.MODEL_RUNTIME_PACKAGES}
    assert f"scikit-learn=={version('scikit-learn')}" in listed


def test_online_features_equal_the_warehouse_features(trained_deployment: Paths) -> None:
    """The compiled feature SQL over raw inputs gives exactly the columns dbt built for training."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    loan_book = bundle.loan_book
    with connect_snapshot(trained_deployment) as con:
        raw = con.execute(f"select loan_id, {', '.join(loan_book.input_names)} from stg_landing__loans "
                          "order by loan_id limit 500").fetch_arrow_table()
    scorer = FeatureScorer(bundle)
    online = scorer.features(raw.drop_columns(["loan_id"]))
    training = pd.concat([load_split(trained_deployment, loan_book, split)
                          for split in ("train", "validation", "test")])
    training = training.set_index("loan_id")
    warehouse = training.loc[raw.column("loan_id").to_pylist(), list(loan_book.feature_names)]
    for column in loan_book.model_numeric:
        np.testing.assert_array_equal(online[column].to_numpy(), warehouse[column].to_numpy(), err_msg=column)
    for column in loan_book.model_categorical:
        assert online[column].tolist() == warehouse[column].tolist()
    expected = bundle.pipeline.predict_proba(warehouse)[:, 1]
    applications = raw.drop_columns(["loan_id"])
    np.testing.assert_array_equal(FeatureScorer(bundle, engine="sklearn").probabilities(applications), expected)
    np.testing.assert_allclose(scorer.probabilities(applications), expected, rtol=0, atol=1e-9)  # compiled SQL


def test_missing_category_is_scored_not_refused(trained_deployment: Paths) -> None:
    bundle = registry.load_bundle(trained_deployment, "champion")
    row = {name: 1.0 for name in bundle.loan_book.model_numeric if name in bundle.loan_book.input_names}
    row.update(dict.fromkeys(bundle.loan_book.model_categorical))
    table = pa.Table.from_pylist([row], schema=pa.schema(
        [pa.field(n, pa.float64()) for n in row if n not in bundle.loan_book.model_categorical]
        + [pa.field(n, pa.string()) for n in bundle.loan_book.model_categorical]
    ))
    features = FeatureScorer(bundle).features(table)
    assert set(features[list(bundle.loan_book.model_categorical)].iloc[0]) == {"(missing)"}
    assert 0 < FeatureScorer(bundle).probabilities(table)[0] < 1


def test_training_never_sees_the_group(trained_deployment: Paths) -> None:
    bundle = registry.load_bundle(trained_deployment, "champion")
    inputs = set(bundle.pipeline.feature_names_in_)
    assert "fairness_group" not in inputs
    assert bundle.loan_book.group_column not in inputs
    assert LABEL not in inputs
