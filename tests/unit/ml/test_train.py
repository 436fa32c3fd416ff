from __future__ import annotations

import numpy as np
import pytest

from ml.train import build_pipeline, evaluate
from warehouse.loan_book import simulated_schema
from warehouse.project import bayes_threshold


def test_metrics_on_a_hand_checked_table() -> None:
    #            repaid (0)          defaulted (1)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.05, 0.7, 0.8, 0.4, 0.9, 0.1])
    m = evaluate(y, p, threshold=0.5)
    assert m["fpr"] == pytest.approx(2 / 6)  # 0.6 and 0.7 among the six repaid
    assert m["tpr"] == pytest.approx(2 / 4)  # 0.8 and 0.9 among the four defaulted
    assert m["positive_rate"] == pytest.approx(4 / 10)
    assert m["default_rate"] == pytest.approx(0.4)
    # AUC: of 24 (defaulted, repaid) pairs the defaulted one scores higher in 17, and one tie
    # (0.1 against 0.1) counts half.
    assert m["auc"] == pytest.approx(17.5 / 24)


def test_bayes_threshold_follows_the_cost_ratio() -> None:
    assert bayes_threshold() == pytest.approx(1 / 6)


def test_pipeline_inputs_are_the_contract_features_only() -> None:
    schema = simulated_schema()
    pipeline = build_pipeline(schema)
    transformers = {name: cols for name, _, cols in pipeline.named_steps["features"].transformers}
    assert transformers["numeric"] + transformers["categorical"] == [
        *schema.model_numeric, *schema.model_categorical
    ]
    assert schema.group_column not in transformers["numeric"] + transformers["categorical"]
