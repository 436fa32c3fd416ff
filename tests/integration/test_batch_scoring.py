"""In-warehouse batch scoring runs the champion's compiled SQL and agrees with the model and the API."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.routes.score import SCORE_PATH
from ml import registry
from ml.train import load_split
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot
from warehouse.settings import ApiSettings

pytestmark = pytest.mark.slow


def test_the_warehouse_rescores_the_loan_book_with_the_champion(trained_deployment: Paths) -> None:
    """``score_loan_decisions`` as the fixture's build after the approval made it."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    with connect_snapshot(trained_deployment) as con:
        scored = con.execute("select * from score_loan_decisions order by loan_id").df()
    book = pd.concat([load_split(trained_deployment, bundle.loan_book, s) for s in ("train", "validation", "test")])
    book = book.sort_values("loan_id").reset_index(drop=True)
    assert scored["loan_id"].tolist() == book["loan_id"].tolist(), "every loan, once"
    assert set(scored["model_version"]) == {bundle.version}, "every row names the version that scored it"
    expected = bundle.pipeline.predict_proba(book[list(bundle.loan_book.feature_names)])[:, 1]
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected, rtol=0, atol=1e-9)
    thresholds = np.array([bundle.threshold_for(g) for g in scored["fairness_group"]])
    np.testing.assert_array_equal(scored["threshold"].to_numpy(), thresholds)
    flagged = scored["probability"].to_numpy() >= thresholds
    assert (scored["decision"] == np.where(flagged, "manual_review", "auto_approve")).all()


def test_online_and_batch_scoring_agree_on_the_same_applications(
    trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The API (feature macro + model SQL, per request) and ``score_loans`` (the same, over
    feat_loans) give the same probability and decision for the same loans."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    book = bundle.loan_book
    with connect_snapshot(trained_deployment) as con:
        scored = con.execute("select * from score_loan_decisions order by loan_id limit 150").df()
        loans = con.execute(
            "select * from stg_landing__loans where loan_id in (select loan_id from scored)"
        ).df().set_index("loan_id")
    api_paths = dataclasses.replace(trained_deployment, landing=tmp_path_factory.mktemp("agree") / "landing")
    with TestClient(create_app(ApiSettings(writer_id="agree"), api_paths)) as client:
        for row in scored.itertuples():
            loan = loans.loc[row.loan_id]
            body = {name: _json_value(loan[name]) for name in book.input_names}
            whole = [f.name for f in book.numeric_features if f.integer and body[f.name] is not None]
            body.update({name: int(body[name]) for name in whole})
            body[book.group_column] = row.fairness_group
            answer = client.post(SCORE_PATH, json=body)
            assert answer.status_code == 200, answer.text
            online = answer.json()
            assert online["probability"] == pytest.approx(row.probability, rel=0, abs=1e-12), row.loan_id
            assert (online["threshold"], online["decision"]) == (row.threshold, row.decision), row.loan_id


def _json_value(value: object) -> object:
    """A loan-book cell as a client would send it (missing numbers left out as null)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
