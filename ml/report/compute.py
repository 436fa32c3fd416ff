"""What the report computes itself, on the test rows (pure functions).

The evaluation tables hold one number per policy and group; the curves an approver looks at (ROC,
calibration), the TPR's interval and the feature importances are not stored anywhere, so they are
computed here from the test rows and the registered model. Each is checked against scikit-learn
or SciPy in the unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import roc_curve
from threadpoolctl import threadpool_limits

from ml.metrics import BISG, equal_frequency_bins, fpr_interval, weighted_fpr_interval

CALIBRATION_BINS = 10
"""The bins of the gated calibration error (ml.metrics.calibration_error's default)."""
IMPORTANCE_REPEATS = 5
IMPORTANCE_SEED = 0


def roc_points(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """The ROC curve's corners (FPR, TPR), from (0, 0) to (1, 1); collinear points dropped."""
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds})


def area_under(points: pd.DataFrame) -> float:
    """Trapezoid area under the ROC points: the AUC the curve shows (equals the Mann-Whitney AUC)."""
    return float(np.trapezoid(points["tpr"].to_numpy(), points["fpr"].to_numpy()))


def calibration_points(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Per equal-frequency bin (the gate's bins): rows, mean predicted probability, observed default
    rate; ``sum(n/N * |observed - predicted|)`` is the gated calibration error."""
    bin_of = equal_frequency_bins(np.asarray(p, dtype=float), bins)
    frame = pd.DataFrame({"bin": bin_of, "p": p, "y": y}).groupby("bin", sort=True)
    table = pd.DataFrame({"n": frame.size(), "predicted": frame["p"].mean(), "observed": frame["y"].mean()})
    return table.reset_index()


def weighted_gap(calibration: pd.DataFrame) -> float:
    """The expected calibration error the points show."""
    n = calibration["n"].to_numpy()
    return float((n * (calibration["observed"] - calibration["predicted"]).abs()).sum() / n.sum())


def rate_interval(k: int, n: int, alpha: float) -> tuple[float | None, float | None]:
    """Exact (Clopper-Pearson) interval of k / n; (None, None) when there is nothing to measure."""
    return (None, None) if n < 1 else fpr_interval(k, n, alpha)


def with_tpr_intervals(metrics: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``eval_metrics`` rows with the TPR's exact interval added (the table stores the FPR's only);
    true positives are recovered from ``tpr * defaults`` (a ratio of whole numbers). BISG rows'
    counts are sums of probabilities: their interval is the weighted one, at n = Σw (what
    ``ml.metrics.effective_sample_size`` is for probabilities)."""
    frame = metrics.copy()
    methods = frame["method"] if "method" in frame else pd.Series([None] * len(frame), index=frame.index)
    bounds = [
        (None, None) if pd.isna(tpr) or not defaults > 0
        else weighted_fpr_interval(tpr * defaults, defaults, defaults, alpha) if method == BISG
        else rate_interval(round(tpr * defaults), int(defaults), alpha)
        for tpr, defaults, method in zip(frame["tpr"], frame["defaults"], methods, strict=True)
    ]
    frame["tpr_ci_low"] = [low for low, _ in bounds]
    frame["tpr_ci_high"] = [high for _, high in bounds]
    return frame


@dataclass(frozen=True)
class Importance:
    """One input's importance: its name, the value and its spread (None where there is none)."""

    feature: str
    value: float
    spread: float | None = None


def coefficients(pipeline: Any) -> list[Importance] | None:
    """A linear model's coefficients per model input (standardised numeric inputs: per standard
    deviation; categories: against the others), largest in size first; None for other families."""
    model = pipeline[-1]
    if not hasattr(model, "coef_"):
        return None
    names = pipeline[:-1].get_feature_names_out()
    values = np.ravel(model.coef_)
    rows = [Importance(_short(str(name)), float(value)) for name, value in zip(names, values, strict=True)]
    return sorted(rows, key=lambda row: -abs(row.value))


def _short(name: str) -> str:
    """``numeric__credit_score`` → ``credit_score`` (the ColumnTransformer's prefix adds nothing)."""
    return name.split("__", 1)[-1]


def permutation_importance(pipeline: Any, features: pd.DataFrame, y: np.ndarray) -> list[Importance]:
    """Drop in test AUC when one input's values are shuffled (mean and standard deviation over
    repeats), for any model family; one thread, so the result does not depend on the machine."""
    with threadpool_limits(limits=1):
        result = sklearn_permutation_importance(
            pipeline, features, y, scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=IMPORTANCE_SEED,
        )
    rows = [Importance(str(name), float(mean), float(std))
            for name, mean, std in zip(features.columns, result.importances_mean, result.importances_std, strict=True)]
    return sorted(rows, key=lambda row: -row.value)


@dataclass(frozen=True)
class Agreement:
    """How the candidate's decisions differ from the champion's on the same test rows."""

    rows: int
    both_review: int
    both_approve: int
    candidate_only_review: int
    champion_only_review: int

    @property
    def changed_share(self) -> float:
        return (self.candidate_only_review + self.champion_only_review) / self.rows if self.rows else 0.0


def agreement(candidate_flags: np.ndarray, champion_flags: np.ndarray) -> Agreement:
    """Cross-count of the two models' decisions (flagged = sent to manual review)."""
    return Agreement(
        rows=len(candidate_flags),
        both_review=int((candidate_flags & champion_flags).sum()),
        both_approve=int((~candidate_flags & ~champion_flags).sum()),
        candidate_only_review=int((candidate_flags & ~champion_flags).sum()),
        champion_only_review=int((~candidate_flags & champion_flags).sum()),
    )
