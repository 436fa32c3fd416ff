"""The monotone-risk sweep's grid, and the constraints training puts on each model family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.candidates import named
from ml.monotone import EXTENSION, sweep_grid
from ml.train import MonotoneError, build_pipeline, fit_pipeline, fit_winner, monotone_violations
from warehouse.loan_book import LoanBookSchema, NumericFeature

LOGISTIC = named("logreg_c1")
TREES = named("hgb_depth3")


def test_grid_covers_the_training_range_and_beyond_within_the_contract() -> None:
    observed = np.array([6_000.0, 40_000.0, 62_000.0, 250_000.0])
    grid = sweep_grid(NumericFeature("income", min=0, max=10_000_000), observed)
    assert grid[0] == 0, "half the range below 6,000 is below the contract's minimum: the grid stops at it"
    assert grid[-1] == pytest.approx(250_000 + EXTENSION * 244_000)
    assert ((grid > 0) & (grid < 1)).any(), "near-zero values are swept, not only zero"
    assert {6_000.0, 250_000.0} <= set(grid), "the training range's ends are in the grid"
    assert (np.diff(grid) > 0).all()


def test_grid_of_integer_and_enumerated_inputs() -> None:
    scores = sweep_grid(NumericFeature("score", min=300, max=850, integer=True), np.array([500.0, 700.0]))
    assert scores[0] == 400
    assert scores[-1] == 800
    assert (scores == np.round(scores)).all()
    assert sweep_grid(NumericFeature("term", allowed=(60, 36)), np.array([36.0])).tolist() == [36.0, 60.0]
    unbounded = sweep_grid(NumericFeature("x"), np.array([1.0, 3.0]))
    assert unbounded[0] == 0
    assert unbounded[-1] == 4


def _book(direction: str) -> LoanBookSchema:
    return LoanBookSchema.from_dict({
        "columns": {"id": "id", "date": "day", "group": {"name": "group"}},
        "outcome": {"column": "status", "positive": ["bad"], "negative": ["good"]},
        "numeric_features": [{"name": "score", "monotone": direction}, {"name": "noise"}],
        "categorical_features": [{"name": "channel"}],
    })


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Risk falls with the score, with a bump the unconstrained trees would learn."""
    rng = np.random.default_rng(4)
    score = rng.uniform(0, 100, 3_000)
    logit = -0.05 * (score - 50) + 1.5 * np.exp(-((score - 70) ** 2) / 20)
    return pd.DataFrame({"score": score, "noise": rng.normal(size=len(score)),
                         "channel": rng.choice(["a", "b"], len(score)),
                         "defaulted": (rng.random(len(score)) < 1 / (1 + np.exp(-logit))).astype(int)})


def test_boosted_trees_get_the_declared_direction(frame: pd.DataFrame) -> None:
    book = _book("decreasing")
    features = frame[list(book.feature_names)]
    model = fit_pipeline(build_pipeline(book, TREES), book, features, frame["defaulted"])
    assert model.named_steps["model"].monotonic_cst == [-1, 0, 0, 0], "score, noise, channel=a, channel=b"
    grid = pd.DataFrame({"score": np.linspace(-20, 120, 500), "noise": 0.0, "channel": "a"})
    assert (np.diff(model.predict_proba(grid)[:, 1]) <= 0).all()
    unconstrained = build_pipeline(book, TREES).fit(features, frame["defaulted"])
    assert (np.diff(unconstrained.predict_proba(grid)[:, 1]) > 0).any(), "the bump is real: the test can fail"


def test_a_logistic_coefficient_against_the_declared_direction_is_passed_over(frame: pd.DataFrame) -> None:
    wrong = _book("increasing")  # the data say decreasing
    features = frame[list(wrong.feature_names)]
    logistic = fit_pipeline(build_pipeline(wrong, LOGISTIC), wrong, features, frame["defaulted"])
    assert list(monotone_violations(logistic, wrong)) == ["score"]
    assert monotone_violations(logistic, _book("decreasing")) == {}
    cv = pd.DataFrame({"candidate": [LOGISTIC.name, TREES.name], "monotone_violating_folds": [6, 0]})
    chosen, model = fit_winner(frame, wrong, (LOGISTIC, TREES), cv)
    assert chosen == TREES, "the best by log loss broke the direction; the constrained trees win"
    assert model.named_steps["model"].monotonic_cst[0] == 1
    assert fit_winner(frame, _book("decreasing"), (LOGISTIC, TREES), cv)[0] == LOGISTIC, (
        "a fold's wrong sign is reported; the refit decides")
    with pytest.raises(MonotoneError, match=r"logreg_c1.*score coefficient"):
        fit_winner(frame, wrong, (LOGISTIC,), cv.iloc[:1])


def test_an_input_that_feeds_a_derived_feature_is_left_to_the_sweep(frame: pd.DataFrame) -> None:
    """A declared input with a derived feature computed from it: its own coefficient is not its direction
    (the derived one moves with it), so the sign check leaves it to the gate's sweep."""
    wrong = _book("increasing")  # risk falls with the score in the data: the coefficient is negative
    assert monotone_violations(fit_pipeline(build_pipeline(wrong, LOGISTIC), wrong, frame, frame["defaulted"]),
                               wrong), "alone, the wrong sign is reported"
    raw = wrong.to_dict()
    raw["derived_features"] = [{"name": "score_squared", "sql": "score * score"}]
    feeding = LoanBookSchema.from_dict(raw)
    data = frame.assign(score_squared=frame["score"] ** 2)
    fitted = fit_pipeline(build_pipeline(feeding, LOGISTIC), feeding, data, data["defaulted"])
    assert monotone_violations(fitted, feeding) == {}
