"""Training registers a real bundle in MLflow; the API's feature SQL equals the warehouse's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from ml import registry
from ml.scoring import FeatureScorer
from ml.train import LABEL, load_training_set
from warehouse.build import current_loan_book
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

pytestmark = pytest.mark.slow


def test_champion_bundle_is_registered_with_its_paper_trail(trained_deployment: Paths) -> None:
    bundle = registry.load_bundle(trained_deployment, "champion")
    assert bundle.version == "1"
    assert bundle.loan_book == current_loan_book(trained_deployment)
    assert bundle.threshold == pytest.approx(1 / 6), "5:1 costs: flag when p > 1/(1+5)"
    assert "from application_rows" in bundle.feature_sql
    registry.configure(trained_deployment)
    run = MlflowClient().get_run(bundle.run_id)
    assert run.data.metrics["test_auc"] > 0.7
    assert run.data.tags["loan_book_contract"] == bundle.loan_book.fingerprint()
    assert len(run.data.tags["git_commit"]) in {40, len("unknown")}


def test_online_features_equal_the_warehouse_features(trained_deployment: Paths) -> None:
    """The compiled feature SQL over raw inputs gives exactly the columns dbt built for training."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    loan_book = bundle.loan_book
    with connect_snapshot(trained_deployment) as con:
        raw = con.execute(f"select loan_id, {', '.join(loan_book.input_names)} from stg_landing__loans "
                          "order by loan_id limit 500").fetch_arrow_table()
    scorer = FeatureScorer(bundle)
    online = scorer.features(raw.drop_columns(["loan_id"]))
    training = load_training_set(trained_deployment, loan_book).set_index("loan_id")
    warehouse = training.loc[raw.column("loan_id").to_pylist(), list(loan_book.feature_names)]
    for column in loan_book.model_numeric:
        np.testing.assert_array_equal(online[column].to_numpy(), warehouse[column].to_numpy(), err_msg=column)
    for column in loan_book.model_categorical:
        assert online[column].tolist() == warehouse[column].tolist()
    expected = bundle.pipeline.predict_proba(warehouse)[:, 1]
    np.testing.assert_array_equal(scorer.probabilities(raw.drop_columns(["loan_id"])), expected)


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
