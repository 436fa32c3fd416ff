"""In-warehouse batch scoring runs the champion's compiled SQL and agrees with the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import registry
from ml.train import load_split
from warehouse.build import build
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

pytestmark = pytest.mark.slow


def test_the_warehouse_rescores_the_loan_book_with_the_champion(trained_deployment: Paths) -> None:
    assert build(trained_deployment).ok
    bundle = registry.load_bundle(trained_deployment, "champion")
    with connect_snapshot(trained_deployment) as con:
        scored = con.execute("select * from score_loan_decisions order by loan_id").df()
    book = pd.concat([load_split(trained_deployment, bundle.loan_book, s) for s in ("train", "test")])
    book = book.sort_values("loan_id").reset_index(drop=True)
    assert scored["loan_id"].tolist() == book["loan_id"].tolist(), "every loan, once"
    assert set(scored["model_version"]) == {bundle.version}, "every row names the version that scored it"
    expected = bundle.pipeline.predict_proba(book[list(bundle.loan_book.feature_names)])[:, 1]
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected, rtol=0, atol=1e-9)
    thresholds = np.array([bundle.threshold_for(g) for g in scored["fairness_group"]])
    np.testing.assert_array_equal(scored["threshold"].to_numpy(), thresholds)
    flagged = scored["probability"].to_numpy() >= thresholds
    assert (scored["decision"] == np.where(flagged, "manual_review", "auto_approve")).all()
