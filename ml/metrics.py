"""Evaluation metrics of a threshold policy, overall and per group (pure functions).

The gate judges a candidate on these numbers (fairness gap, discrimination, cost, group sizes,
calibration), so each is defined here once, with the exact statistics the policy asks for.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta, rankdata

from ml.fairness import ThresholdPolicy, check_inputs, normalise_groups

OVERALL = "__overall__"

POLICY_METRIC_COLUMNS = (
    "group", "n", "defaults", "repaid", "auc", "fpr", "fpr_ci_low", "fpr_ci_high", "tpr",
    "positive_rate", "cost", "cost_per_applicant", "calibration_error", "threshold",
)


def fpr_interval(fp: int, negatives: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper–Pearson) two-sided 1 − alpha interval for FP / negatives.

    Computed from beta quantiles, ``scipy.stats.beta.ppf(alpha/2, k, n-k+1)`` and
    ``beta.ppf(1-alpha/2, k+1, n-k)``: the same interval as
    ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``, which finds it by root
    search, but closed-form and so more accurate. The bound is 0 when k = 0 and 1 when k = n
    (where the beta quantile is undefined). Exact rather than Wald because small groups and FPRs
    near 0 are where the gate needs an honest interval.
    """
    k, n = int(fp), int(negatives)
    if k != fp or n != negatives:
        raise ValueError(f"fp and negatives must be whole numbers, got {fp}, {negatives}")
    if n < 1:
        raise ValueError(f"negatives must be at least 1, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"fp must be between 0 and negatives ({n}), got {k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def calibration_error(y: Any, p: Any, bins: int = 10) -> float:
    """Expected calibration error, Σ_b (n_b/N)·|mean(y_b) − mean(p_b)|, over equal-frequency bins.

    Binning: a row goes to bin floor(bins · r / N), where r is the number of predictions strictly
    below its own. With distinct predictions every bin holds N/bins rows (±1); tied predictions
    always share a bin (so bins can be uneven, or empty and skipped), which keeps the result
    independent of row order. Equal-frequency rather than equal-width because predicted default
    probabilities crowd near zero, leaving equal-width upper bins nearly empty.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    scores, labels = check_inputs(p, y, require_both_classes=False)
    n = len(scores)
    bin_of = equal_frequency_bins(scores, bins)
    counts = np.bincount(bin_of, minlength=bins)
    sum_y = np.bincount(bin_of, weights=labels, minlength=bins)
    sum_p = np.bincount(bin_of, weights=scores, minlength=bins)
    used = counts > 0
    return float(np.abs(sum_y[used] - sum_p[used]).sum() / n)  # (n_b/N)·|mean_y − mean_p| = |Σy − Σp|/N


def equal_frequency_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """Each score's bin under :func:`calibration_error`'s rule (shared with the model report's
    calibration plot, so the plot shows the very bins the gate measured)."""
    below = np.searchsorted(np.sort(scores), scores, side="left")
    bin_of: np.ndarray = (below * bins) // len(scores)
    return bin_of


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties count half); NaN with only one class."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(p)  # average ranks: a tied pair counts 1/2
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _row(
    group: str, y: np.ndarray, p: np.ndarray, flagged: np.ndarray, threshold: float, *,
    cost_fn: float, cost_fp: float, alpha: float, bins: int,
) -> dict[str, Any]:
    n = len(y)
    defaults = int(y.sum())
    repaid = n - defaults
    fp = int((flagged & (y == 0)).sum())
    tp = int((flagged & (y == 1)).sum())
    fn = defaults - tp
    low, high = fpr_interval(fp, repaid, alpha) if repaid else (math.nan, math.nan)
    cost = cost_fn * fn + cost_fp * fp
    return {
        "group": group,
        "n": n,
        "defaults": defaults,
        "repaid": repaid,
        "auc": auc(y, p),
        "fpr": fp / repaid if repaid else math.nan,
        "fpr_ci_low": low,
        "fpr_ci_high": high,
        "tpr": tp / defaults if defaults else math.nan,
        "positive_rate": float(flagged.mean()),
        "cost": float(cost),
        "cost_per_applicant": cost / n,
        "calibration_error": calibration_error(y, p, bins=min(bins, n)),
        "threshold": threshold,
    }


def policy_metrics(
    y: Any,
    p: Any,
    groups: Any,
    policy: ThresholdPolicy,
    *,
    cost_fn: float,
    cost_fp: float,
    alpha: float = 0.05,
    calibration_bins: int = 10,
) -> pd.DataFrame:
    """The policy's decisions scored per group and overall (held-out data, for the gate).

    One row per group (sorted; missing groups count as ``policy.not_provided``) and a last row
    ``"__overall__"``; columns :data:`POLICY_METRIC_COLUMNS`. ``auc``, ``fpr`` (with its exact
    interval) and ``tpr`` are NaN where the group lacks the class they condition on;
    ``threshold`` is the one the policy applies to the group (NaN for the overall row). Every
    group is scored with the policy's own decisions, so fallback and unseen groups are judged
    by the default threshold they actually get.
    """
    scores, labels = check_inputs(p, y, groups, require_both_classes=False)
    names = normalise_groups(groups, policy.not_provided)
    if OVERALL in set(names):
        raise ValueError(f"{OVERALL!r} is reserved for the overall row and cannot be a group")
    flagged = policy.flag(scores, names)
    row = partial(_row, cost_fn=cost_fn, cost_fp=cost_fp, alpha=alpha, bins=calibration_bins)
    rows = []
    for group in sorted(set(names)):
        mask = names == group
        threshold = float(policy.threshold_for([group])[0])
        rows.append(row(group, labels[mask], scores[mask], flagged[mask], threshold))
    rows.append(row(OVERALL, labels, scores, flagged, math.nan))
    return pd.DataFrame(rows, columns=list(POLICY_METRIC_COLUMNS))


def fpr_gap(frame: pd.DataFrame, min_group_size: int = 0) -> float:
    """Max − min FPR across groups: the number the fairness policy limits.

    Excludes the ``"__overall__"`` row, groups without an FPR (no repaid loans) and groups with
    fewer than ``min_group_size`` repaid loans (the same size rule as the equal-FPR policy's
    fallback: their FPR is too noisy to hold against the model). NaN if no group is left.
    """
    groups = frame[(frame["group"] != OVERALL) & (frame["repaid"] >= min_group_size) & frame["fpr"].notna()]
    if groups.empty:
        return math.nan
    return float(groups["fpr"].max() - groups["fpr"].min())
