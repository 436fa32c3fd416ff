"""The model report's own computations against scikit-learn and SciPy (ml.report.compute)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.metrics import auc, calibration_error
from ml.report import compute


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.01, 0.6, 2_000)  # distinct predictions; 2,000 rows split evenly into 10 bins
    y = (rng.uniform(size=p.size) < p).astype(int)
    return y, p


def test_roc_points_enclose_sklearns_auc(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    points = compute.roc_points(y, p)
    assert points.iloc[0][["fpr", "tpr"]].tolist() == [0.0, 0.0]
    assert points.iloc[-1][["fpr", "tpr"]].tolist() == [1.0, 1.0]
    assert compute.area_under(points) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert compute.area_under(points) == pytest.approx(auc(y, p), abs=1e-12)  # the gated (Mann-Whitney) AUC


def test_roc_with_ties_still_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    p = rng.integers(0, 20, 1_000) / 20  # heavy ties: a tied pair counts half in both
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert compute.area_under(compute.roc_points(y, p)) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_calibration_points_are_sklearns_quantile_bins(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    points = compute.calibration_points(y, p)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    assert points["n"].tolist() == [200] * 10
    np.testing.assert_allclose(points["observed"], observed, atol=1e-12)
    np.testing.assert_allclose(points["predicted"], predicted, atol=1e-12)


def test_calibration_points_show_the_gated_calibration_error(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    rounded = np.round(p, 2)  # ties: uneven bins, still the gate's
    for scores in (p, rounded):
        assert compute.weighted_gap(compute.calibration_points(y, scores)) == pytest.approx(
            calibration_error(y, scores), abs=1e-12)


@pytest.mark.parametrize(("k", "n"), [(0, 40), (3, 40), (17, 120), (40, 40), (250, 1_000)])
def test_tpr_interval_is_clopper_pearson(k: int, n: int) -> None:
    frame = pd.DataFrame({"tpr": [k / n], "defaults": [n]})
    row = compute.with_tpr_intervals(frame, alpha=0.05).iloc[0]
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert row["tpr_ci_low"] == pytest.approx(low, abs=1e-12)
    assert row["tpr_ci_high"] == pytest.approx(high, abs=1e-12)


def test_a_bisg_rows_tpr_interval_is_at_its_weighted_size() -> None:
    """Defaults weighted 10.4 with TPR 0.5: Clopper–Pearson at n = 10.4, k = 5.2 (not whole numbers)."""
    frame = pd.DataFrame({"tpr": [0.5], "defaults": [10.4], "method": ["bisg"]})
    row = compute.with_tpr_intervals(frame, alpha=0.05).iloc[0]
    assert row["tpr_ci_low"] == pytest.approx(beta.ppf(0.025, 5.2, 10.4 - 5.2 + 1), abs=1e-12)
    assert row["tpr_ci_high"] == pytest.approx(beta.ppf(0.975, 5.2 + 1, 10.4 - 5.2), abs=1e-12)


def test_tpr_interval_is_missing_without_defaults() -> None:
    frame = pd.DataFrame({"tpr": [float("nan")], "defaults": [0]})
    row = compute.with_tpr_intervals(frame, alpha=0.05).iloc[0]
    assert row["tpr_ci_low"] is None
    assert row["tpr_ci_high"] is None


def _fitted() -> tuple[Pipeline, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    features = pd.DataFrame({"signal": rng.normal(size=3_000), "noise": rng.normal(size=3_000)})
    y = (rng.uniform(size=3_000) < 1 / (1 + np.exp(-2 * features["signal"]))).astype(int).to_numpy()
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(features, y)
    return model, features, y


def test_permutation_importance_is_the_auc_drop_when_a_column_is_shuffled() -> None:
    model, features, y = _fitted()
    importance = {i.feature: i for i in compute.permutation_importance(model, features, y)}
    assert list(importance) == ["signal", "noise"]  # largest first
    assert importance["signal"].value > 0.2
    assert abs(importance["noise"].value) < 0.01
    # By hand: the mean drop in AUC over other shuffles of the column agrees within sampling noise
    baseline = roc_auc_score(y, model.predict_proba(features)[:, 1])
    rng = np.random.default_rng(5)
    drops = []
    for _ in range(20):
        shuffled = features.assign(signal=rng.permutation(features["signal"].to_numpy()))
        drops.append(baseline - roc_auc_score(y, model.predict_proba(shuffled)[:, 1]))
    assert importance["signal"].value == pytest.approx(np.mean(drops), abs=0.01)
    assert importance["signal"].spread is not None
    assert importance["signal"].spread < 0.02


def test_coefficients_only_for_linear_models() -> None:
    model, _, _ = _fitted()
    rows = compute.coefficients(model)
    assert rows is not None
    assert [r.feature for r in rows] == ["signal", "noise"]
    assert rows[0].value == pytest.approx(float(model[-1].coef_[0][0]))

    class Trees:  # a fitted estimator without coefficients, as gradient boosting is
        pass

    assert compute.coefficients(Pipeline([("scale", StandardScaler()), ("model", Trees())])) is None  # type: ignore[list-item]


def test_agreement_counts_every_row_once() -> None:
    candidate = np.array([True, True, False, False, True])
    champion = np.array([True, False, True, False, False])
    counted = compute.agreement(candidate, champion)
    assert (counted.both_review, counted.both_approve, counted.candidate_only_review,
            counted.champion_only_review) == (1, 1, 2, 1)
    assert counted.changed_share == pytest.approx(3 / 5)
