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

# How a row's group membership is known: the applicant's own report (weights 0/1) or BISG's
# probabilities (weights in [0, 1] summing to one per applicant).
SELF_REPORTED = "self_reported"
BISG = "bisg"

POLICY_METRIC_COLUMNS = (
    "method", "group", "n", "defaults", "repaid", "repaid_effective", "auc", "fpr", "fpr_ci_low", "fpr_ci_high",
    "tpr", "positive_rate", "cost", "cost_per_applicant", "calibration_error", "threshold",
)


def _beta_interval(k: float, n: float, alpha: float) -> tuple[float, float]:
    """Clopper–Pearson bounds from beta quantiles, for real k and n (0 <= k <= n, n > 0)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    low = 0.0 if k <= 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k >= n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


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
    return _beta_interval(k, n, alpha)


def effective_sample_size(weights: Any) -> float:
    """How many applicants probability weights are worth: min(Kish's (Σw)² / Σw², Σw).

    Kish's effective sample size is what the weighted mean's sampling variance corresponds to
    (Var ≈ r(1 − r)/n_eff), treating the weights as known. With membership probabilities (0 ≤ w ≤ 1)
    Σw² ≤ Σw, so it is never below Σw, the group's expected size, and exceeds it as soon as a weight
    is fractional (five rows weighted 0.3 are "worth" 5 rows but hold 1.5 members): the group's own
    rate cannot be known better than from its members, so the size is capped at Σw, which for BISG
    probabilities it always is. Kish's size binds only for weights above 1. Both are the row count
    when every weight is 1 (rows weighted 0 are not there). In SQL: least(sum(w)^2 / sum(w^2), sum(w)).
    """
    w = np.asarray(weights, dtype=float)
    squares = float((w * w).sum())
    total = float(w.sum())
    return min(total**2 / squares, total) if squares > 0 else 0.0


def weighted_fpr_interval(fp_weight: float, negatives_weight: float, n_effective: float,
                          alpha: float = 0.05) -> tuple[float, float]:
    """Interval of a probability-weighted FPR, Σw·FP / Σw·[repaid]: the Clopper–Pearson interval
    of :func:`fpr_interval` at the effective sample size of the repaid rows' weights
    (:func:`effective_sample_size`: Kish's (Σw)²/Σw², at most Σw), with k_eff = FPR·n_eff
    "false positives".

    Why: with weights the FPR is a ratio estimator whose variance is about FPR(1−FPR)/n_eff
    (Kish's design effect for unequal weights), so the binomial interval at n_eff has the right
    width; it keeps the exact interval's behaviour near 0 and 1 that the gate relies on. With 0/1
    weights n_eff is the number of repaid rows and k_eff the false positives, so the interval is
    :func:`fpr_interval`'s exactly. It treats the weights as known: BISG's own error (its bias
    where a group's names or areas are not distinctive) is not in it.
    """
    if not negatives_weight > 0 or not n_effective > 0:
        raise ValueError(f"the repaid weight and n_effective must be positive, got {negatives_weight}, {n_effective}")
    if not 0 <= fp_weight <= negatives_weight * (1 + 1e-12):
        raise ValueError(f"fp_weight must be between 0 and the repaid weight ({negatives_weight}), got {fp_weight}")
    k = fp_weight * (n_effective / negatives_weight)
    return _beta_interval(k, n_effective, alpha)


def calibration_error(y: Any, p: Any, bins: int = 10, weights: Any = None) -> float:
    """Expected calibration error, Σ_b (W_b/W)·|mean_w(y_b) − mean_w(p_b)|, over equal-frequency bins.

    Binning: a row goes to bin floor(bins · r / W), where r is the weight of the rows whose
    prediction is strictly below its own and W the total weight (every weight 1 unless
    ``weights`` are given: then r / W is the weighted rank). With distinct predictions and unit
    weights every bin holds N/bins rows (±1); tied predictions always share a bin (so bins can be
    uneven, or empty and skipped), which keeps the result independent of row order. Rows of weight
    0 take no part, so 0/1 weights give the unweighted number of the rows weighted 1.
    Equal-frequency rather than equal-width because predicted default probabilities crowd near
    zero, leaving equal-width upper bins nearly empty.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    scores, labels = check_inputs(p, y, require_both_classes=False)
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=float)
    total = float(w.sum())
    bin_of = equal_frequency_bins(scores, bins, w)
    sum_y = np.bincount(bin_of, weights=w * labels, minlength=bins)
    sum_p = np.bincount(bin_of, weights=w * scores, minlength=bins)
    return float(np.abs(sum_y - sum_p).sum() / total)  # (W_b/W)·|mean_y − mean_p| = |Σwy − Σwp|/W


def equal_frequency_bins(scores: np.ndarray, bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Each score's bin under :func:`calibration_error`'s rule (shared with the model report's
    calibration plot, so the plot shows the very bins the gate measured)."""
    if weights is None:
        below = np.searchsorted(np.sort(scores), scores, side="left")
        bin_of: np.ndarray = (below * bins) // len(scores)
        return bin_of
    order = np.argsort(scores, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weights[order])])
    below_weight = cumulative[np.searchsorted(scores[order], scores, side="left")]
    weighted: np.ndarray = np.minimum(np.floor(below_weight * bins / cumulative[-1]), bins - 1).astype(np.intp)
    return weighted


def auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve (Mann–Whitney, ties count half); NaN with only one class.

    With ``weights``, each (defaulted i, repaid j) pair counts w_i·w_j: the probability that a
    defaulted applicant of the group scores above a repaid one, each drawn with its weight.
    """
    if weights is not None:
        return _weighted_auc(y, p, weights)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(p)  # average ranks: a tied pair counts 1/2
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    positive_weight, negative_weight = float((w * y).sum()), float((w * (1 - y)).sum())
    if positive_weight <= 0 or negative_weight <= 0:
        return math.nan
    distinct, index = np.unique(p, return_inverse=True)
    negatives_at = np.bincount(index, weights=w * (1 - y), minlength=len(distinct))
    negatives_below = np.cumsum(negatives_at) - negatives_at
    beaten = (negatives_below + 0.5 * negatives_at)[index]  # repaid weight below each score, ties half
    return float((w * y * beaten).sum() / (positive_weight * negative_weight))


def weighted_group_rates(
    method: str, group: str, *, y: np.ndarray, p: np.ndarray, flagged: np.ndarray, w: np.ndarray, threshold: float,
    cost_fn: float, cost_fp: float, alpha: float, bins: int,
) -> dict[str, Any]:
    """One group's metrics with each row weighted by its membership w (0/1 self-reported, or
    BISG's probability): every count is a sum of weights, so FPR = Σw·FP / Σw·[repaid]."""
    repaid_rows = w * (1 - y)
    n, defaults, repaid = float(w.sum()), float((w * y).sum()), float(repaid_rows.sum())
    fp = float((repaid_rows * flagged).sum())
    tp = float((w * y * flagged).sum())
    fn = defaults - tp
    n_effective = effective_sample_size(repaid_rows)
    low, high = weighted_fpr_interval(fp, repaid, n_effective, alpha) if repaid > 0 else (math.nan, math.nan)
    cost = cost_fn * fn + cost_fp * fp
    members = w > 0
    return {
        "method": method,
        "group": group,
        "n": n,
        "defaults": defaults,
        "repaid": repaid,
        "repaid_effective": n_effective,
        "auc": auc(y[members], p[members], w[members]),
        "fpr": fp / repaid if repaid > 0 else math.nan,
        "fpr_ci_low": low,
        "fpr_ci_high": high,
        "tpr": tp / defaults if defaults > 0 else math.nan,
        "positive_rate": float((w * flagged).sum()) / n if n > 0 else math.nan,
        "cost": float(cost),
        "cost_per_applicant": cost / n if n > 0 else math.nan,
        "calibration_error": calibration_error(y[members], p[members], bins=min(bins, int(members.sum())),
                                               weights=w[members]) if members.any() else math.nan,
        "threshold": threshold,
    }


def membership_weights(groups: Any, not_provided: str | None) -> pd.DataFrame:
    """Self-reported membership as weights: one 0/1 column per group (sorted), one row per applicant."""
    names = normalise_groups(groups, not_provided)
    if OVERALL in set(names):
        raise ValueError(f"{OVERALL!r} is reserved for the overall row and cannot be a group")
    return pd.DataFrame({group: (names == group).astype(float) for group in sorted(set(names))})


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
    bisg: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The policy's decisions scored per group and overall (held-out data, for the gate).

    ``groups``: the self-reported groups (missing ones count as ``policy.not_provided``), or None
    for a book without a group column. ``bisg``: each applicant's BISG probabilities, one column
    per group, rows aligned with ``y`` (see :func:`weighted_group_rates`), or None.

    One row per method and group (``self_reported`` rows from ``groups``, ``bisg`` rows from
    ``bisg``, each sorted by group) and a last row ``"__overall__"``, whose method is the
    primary one (self_reported when there are groups, else bisg); columns
    :data:`POLICY_METRIC_COLUMNS`. Self-reported rows are the weighted rows with 0/1 weights, so
    both methods share every formula. ``auc``, ``fpr`` (with its interval) and ``tpr`` are NaN
    where the group lacks the class they condition on; ``threshold`` is the one the policy applies
    to the group (for BISG rows only a single threshold is the group's; NaN otherwise and overall).
    Every applicant is decided by the policy's own rule (their self-reported group's threshold),
    so fallback and unseen groups are judged by the threshold they actually get.
    """
    scores, labels = check_inputs(p, y, groups, require_both_classes=False)
    if groups is None and bisg is None:
        raise ValueError("give the self-reported groups, the BISG probabilities, or both")
    names = None if groups is None else normalise_groups(groups, policy.not_provided)
    flagged = policy.flag(scores, np.full(len(scores), None, dtype=object) if names is None else names)
    row = partial(weighted_group_rates, y=labels, p=scores, flagged=flagged, cost_fn=cost_fn, cost_fp=cost_fp,
                  alpha=alpha, bins=calibration_bins)
    rows = []
    if names is not None:
        for group, weights in membership_weights(names, policy.not_provided).items():
            rows.append(row(SELF_REPORTED, str(group), w=weights.to_numpy(),
                            threshold=float(policy.threshold_for([group])[0])))
    if bisg is not None:
        if len(bisg) != len(scores):
            raise ValueError(f"bisg has {len(bisg)} rows for {len(scores)} applicants")
        single = math.nan if policy.thresholds else policy.default_threshold
        rows.extend(row(BISG, str(group), w=bisg[group].to_numpy(dtype=float), threshold=single)
                    for group in sorted(bisg.columns))
    primary = SELF_REPORTED if names is not None else BISG
    rows.append(row(primary, OVERALL, w=np.ones(len(scores)), threshold=math.nan))
    return pd.DataFrame(rows, columns=list(POLICY_METRIC_COLUMNS))


def fpr_gap(frame: pd.DataFrame, min_group_size: float = 0, method: str | None = None) -> float:
    """Max − min FPR across groups: the number the fairness policy limits.

    Excludes the ``"__overall__"`` row, groups without an FPR (no repaid loans) and groups whose
    repaid loans are worth fewer than ``min_group_size`` (``repaid_effective``: the count itself
    for self-reported groups, Kish's effective size for BISG's) — the same size rule as the
    equal-FPR policy's fallback: their FPR is too noisy to hold against the model. ``method``
    picks one method's rows (default: the primary one, the overall row's). NaN if no group is left.
    """
    method = frame.loc[frame["group"] == OVERALL, "method"].iloc[0] if method is None else method
    groups = frame[(frame["group"] != OVERALL) & (frame["method"] == method)
                   & (frame["repaid_effective"] >= min_group_size) & frame["fpr"].notna()]
    if groups.empty:
        return math.nan
    return float(groups["fpr"].max() - groups["fpr"].min())
