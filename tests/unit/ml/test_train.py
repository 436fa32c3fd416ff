from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.candidates import search_space
from ml.train import build_pipeline, cross_validate, data_fingerprint, outlier_mask
from warehouse.loan_book import simulated_schema
from warehouse.simulator import simulate_loans


def test_pipeline_inputs_are_the_contract_features_only() -> None:
    schema = simulated_schema()
    for candidate in search_space():
        columns = build_pipeline(schema, candidate).named_steps["features"].transformers
        inputs = [column for _, _, names in columns for column in names]
        assert inputs == [*schema.model_numeric, *schema.model_categorical]
        assert schema.group_column not in inputs


def test_outlier_rule_on_a_hand_checked_column() -> None:
    # 1..9 and 1000: quartiles (linear) 3.25 and 7.75, IQR 4.5; at 10 IQRs the fences are
    # 3.25 - 45 = -41.75 and 7.75 + 45 = 52.75, so only 1000 is left out.
    values = pd.DataFrame({"x": [*range(1, 10), 1000.0], "y": [5.0] * 10})
    assert outlier_mask(values, ["x", "y"], 10).tolist() == [False] * 9 + [True]
    assert outlier_mask(values, ["x"], 300).tolist() == [False] * 10  # 1000 < 7.75 + 300 * 4.5


def test_fingerprint_ignores_row_order_and_sees_any_change() -> None:
    frame = pd.DataFrame({"loan_id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "defaulted": [0, 1, 0]})
    shuffled = frame.iloc[[2, 0, 1]]
    assert data_fingerprint(frame) == data_fingerprint(shuffled)
    changed = frame.assign(x=[1.0, 2.0, 3.0000001])
    assert data_fingerprint(changed) != data_fingerprint(frame)


@pytest.fixture(scope="module")
def small_training_frame() -> pd.DataFrame:
    table = pd.concat([t.to_pandas() for t in simulate_loans(4000, seed=5)])
    table["loan_to_income"] = table["loan_amount"] / table["annual_income"]
    table["log_annual_income"] = np.log1p(table["annual_income"])
    table["defaulted"] = (table["loan_status"] == "defaulted").astype(int)
    return table.reset_index(drop=True)


def test_cross_validation_ranks_by_log_loss_and_predicts_every_row_once(small_training_frame) -> None:
    schema = simulated_schema()
    candidates = search_space()[:3]
    results, oof = cross_validate(small_training_frame, schema, candidates, folds=3, repeats=2, seed=1)
    assert list(results["log_loss_mean"]) == sorted(results["log_loss_mean"])
    assert set(results["candidate"]) == {c.name for c in candidates}
    for predictions in oof.values():
        assert not np.isnan(predictions).any(), "the first repeat predicts every row exactly once"
        assert ((predictions > 0) & (predictions < 1)).all()
    assert (results["auc_mean"] > 0.7).all()
