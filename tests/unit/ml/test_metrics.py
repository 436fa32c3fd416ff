"""Evaluation metrics: exact intervals against scipy, hand-checked tables, AUC against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, binom, binomtest
from sklearn.metrics import roc_auc_score

from ml.fairness import GROUP_THRESHOLDS, SINGLE_THRESHOLD, ThresholdPolicy
from ml.metrics import (
    BISG,
    OVERALL,
    POLICY_METRIC_COLUMNS,
    SELF_REPORTED,
    auc,
    calibration_error,
    effective_sample_size,
    fpr_gap,
    fpr_interval,
    policy_metrics,
    weighted_fpr_interval,
)

COSTS = {"cost_fn": 5, "cost_fp": 1}


# ----- Clopper–Pearson ---------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
@pytest.mark.parametrize(
    ("fp", "negatives"),
    [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (1, 100), (50, 100), (99, 100), (0, 2500), (123, 2500), (2500, 2500)],
)
def test_fpr_interval_is_clopper_pearson(fp: int, negatives: int, alpha: float) -> None:
    low, high = fpr_interval(fp, negatives, alpha)
    reference = binomtest(fp, negatives).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert low == pytest.approx(reference.low, abs=1e-12)
    assert high == pytest.approx(reference.high, abs=1e-12)
    # the defining property: each bound leaves alpha/2 of binomial probability beyond the count
    if fp > 0:
        assert binom.sf(fp - 1, negatives, low) == pytest.approx(alpha / 2, rel=1e-9)
    else:
        assert low == 0.0
    if fp < negatives:
        assert binom.cdf(fp, negatives, high) == pytest.approx(alpha / 2, rel=1e-9)
    else:
        assert high == 1.0


def test_fpr_interval_known_closed_forms() -> None:
    # k = 0: the upper bound solves (1 - u)^n = alpha/2; k = n: the lower bound solves l^n = alpha/2.
    assert fpr_interval(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)), abs=1e-14)
    assert fpr_interval(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0), abs=1e-14)


@pytest.mark.parametrize(
    ("fp", "negatives", "alpha", "message"),
    [(1, 0, 0.05, "at least 1"), (5, 4, 0.05, "between"), (-1, 4, 0.05, "between"), (1, 4, 0.0, "alpha"),
     (1.5, 4, 0.05, "whole")],
)
def test_fpr_interval_rejects_nonsense(fp: float, negatives: int, alpha: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fpr_interval(fp, negatives, alpha)  # type: ignore[arg-type]


# ----- calibration -------------------------------------------------------------------------------
def test_calibration_error_on_a_hand_computed_table() -> None:
    # Sorted by p, three equal-frequency bins of two:
    #   bin  p           y      mean p  mean y  |diff|
    #   0    0.1 0.2     0 1    0.15    0.5     0.35
    #   1    0.4 0.5     0 1    0.45    0.5     0.05
    #   2    0.8 0.9     1 1    0.85    1.0     0.15
    # ECE = (2/6)(0.35 + 0.05 + 0.15) = 0.55 / 3
    p = np.array([0.8, 0.1, 0.5, 0.9, 0.4, 0.2])  # shuffled: binning is by rank, not row order
    y = np.array([1, 0, 1, 1, 0, 1])
    assert calibration_error(y, p, bins=3) == pytest.approx(0.55 / 3)
    # one bin: |mean y − mean p| = |4/6 − 2.9/6|
    assert calibration_error(y, p, bins=1) == pytest.approx(abs(4 - 2.9) / 6)
    # one bin per row, in p order: mean |y − p| = (0.1 + 0.8 + 0.4 + 0.5 + 0.2 + 0.1) / 6
    assert calibration_error(y, p, bins=6) == pytest.approx(2.1 / 6)


def test_calibration_error_keeps_ties_in_one_bin() -> None:
    # Four loans scored 0.3 (two defaulted) and two scored 0.7 (both repaid), two bins:
    # the tied 0.3s share bin 0 whatever their order, so ECE = (4/6)|0.5−0.3| + (2/6)|0−0.7|.
    p = np.array([0.3, 0.3, 0.3, 0.3, 0.7, 0.7])
    expected = (4 / 6) * 0.2 + (2 / 6) * 0.7
    assert calibration_error(np.array([1, 1, 0, 0, 0, 0]), p, bins=2) == pytest.approx(expected)
    assert calibration_error(np.array([0, 0, 1, 1, 0, 0]), p, bins=2) == pytest.approx(expected)


def test_calibration_error_is_near_zero_for_calibrated_scores() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    assert calibration_error(y, p) < 0.01
    assert calibration_error(y, np.clip(p * 1.5, 0, 1)) > 0.1


# ----- policy metrics ----------------------------------------------------------------------------
def test_auc_per_group_equals_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    n = 3_000
    g = rng.choice(["A", "B", "C"], n)
    p = np.round(rng.beta(2, 5, n), 2)  # ties
    y = (rng.random(n) < p).astype(int)
    policy = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds={"A": 0.3}, default_threshold=0.2)
    frame = policy_metrics(y, p, g, policy, **COSTS).set_index("group")
    for group in ("A", "B", "C"):
        assert frame.loc[group, "auc"] == pytest.approx(roc_auc_score(y[g == group], p[g == group]), abs=1e-12)
    assert frame.loc[OVERALL, "auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)


# Policy: A at 0.5, B at 0.3, anything else at the default 0.4.
#   group  repaid (0)               defaulted (1)  flagged (p >= t)         FP  TP  FN
#   A      0.2 0.6 0.4 0.7          0.8 0.3        0.6 0.7 | 0.8            2   1   1
#   B      0.1 0.3 0.2              0.5 0.25       0.3     | 0.5            1   1   1
#   C      0.45                     -              0.45 (default 0.4)       1   0   0
HAND = pd.DataFrame(
    [("A", 0, 0.2), ("A", 0, 0.6), ("A", 0, 0.4), ("A", 0, 0.7), ("A", 1, 0.8), ("A", 1, 0.3),
     ("B", 0, 0.1), ("B", 0, 0.3), ("B", 0, 0.2), ("B", 1, 0.5), ("B", 1, 0.25),
     ("C", 0, 0.45)],
    columns=["group", "y", "p"],
)
HAND_POLICY = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds={"A": 0.5, "B": 0.3}, default_threshold=0.4)


def test_policy_metrics_on_a_hand_checked_table() -> None:
    frame = policy_metrics(HAND["y"], HAND["p"], HAND["group"], HAND_POLICY, **COSTS)
    assert list(frame.columns) == list(POLICY_METRIC_COLUMNS)
    assert frame["group"].tolist() == ["A", "B", "C", OVERALL]
    rows = frame.set_index("group")
    expected = {
        #           n  defaults repaid fpr  tpr   positive_rate cost (5·FN + FP) threshold
        "A":       (6, 2, 4, 2 / 4, 1 / 2, 3 / 6, 5 * 1 + 2, 0.5),
        "B":       (5, 2, 3, 1 / 3, 1 / 2, 2 / 5, 5 * 1 + 1, 0.3),
        "C":       (1, 0, 1, 1.0, math.nan, 1.0, 1, 0.4),
        OVERALL:   (12, 4, 8, 4 / 8, 2 / 4, 6 / 12, 5 * 2 + 4, math.nan),
    }
    for group, (n, defaults, repaid, fpr, tpr, rate, cost, threshold) in expected.items():
        row = rows.loc[group]
        assert (row["n"], row["defaults"], row["repaid"]) == (n, defaults, repaid)
        assert row["fpr"] == pytest.approx(fpr)
        assert row["tpr"] == pytest.approx(tpr, nan_ok=True)
        assert row["positive_rate"] == pytest.approx(rate)
        assert row["cost"] == cost
        assert row["cost_per_applicant"] == pytest.approx(cost / n)
        assert row["threshold"] == pytest.approx(threshold, nan_ok=True)
        low, high = fpr_interval(round(fpr * repaid), repaid)
        assert (row["fpr_ci_low"], row["fpr_ci_high"]) == pytest.approx((low, high))
    # AUC, counting (defaulted, repaid) pairs: A: 0.8 beats all 4, 0.3 beats 0.2 -> 5/8;
    # B: 0.5 beats all 3, 0.25 beats 0.1 and 0.2 -> 5/6; C has no defaults -> NaN.
    assert rows.loc["A", "auc"] == pytest.approx(5 / 8)
    assert rows.loc["B", "auc"] == pytest.approx(5 / 6)
    assert math.isnan(rows.loc["C", "auc"])
    assert rows.loc["C", "fpr_ci_low"] == pytest.approx(0.025)  # k = n = 1: lower bound alpha/2
    assert rows.loc[OVERALL, "calibration_error"] == pytest.approx(calibration_error(HAND["y"], HAND["p"]))
    # C alone: one bin, |0 − 0.45|
    assert rows.loc["C", "calibration_error"] == pytest.approx(0.45)


def test_fpr_gap_over_groups() -> None:
    frame = policy_metrics(HAND["y"], HAND["p"], HAND["group"], HAND_POLICY, **COSTS)
    assert fpr_gap(frame) == pytest.approx(1.0 - 1 / 3)  # C (1.0) against B (1/3)
    assert fpr_gap(frame, min_group_size=3) == pytest.approx(2 / 4 - 1 / 3)  # C has one repaid loan
    assert math.isnan(fpr_gap(frame, min_group_size=100))


def test_policy_metrics_counts_missing_groups_as_not_provided() -> None:
    policy = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds={"Not provided": 0.9}, default_threshold=0.1,
                             not_provided="Not provided")
    frame = policy_metrics([0, 1, 0], [0.5, 0.95, 0.5], [None, None, "A"], policy, **COSTS).set_index("group")
    assert frame.loc["Not provided", "n"] == 2
    assert frame.loc["Not provided", "fpr"] == 0.0  # 0.5 < 0.9
    assert frame.loc["A", "fpr"] == 1.0  # 0.5 >= default 0.1


def test_policy_metrics_refuses_the_reserved_group_name() -> None:
    with pytest.raises(ValueError, match="reserved"):
        policy_metrics([0, 1], [0.1, 0.9], [OVERALL, "A"], HAND_POLICY, **COSTS)


# ----- probability-weighted (BISG) fairness --------------------------------------------------------
# Four applicants under a single threshold of 0.5, weighted by their BISG probabilities of A and B:
#   i  y  p    flagged  w_A  w_B
#   1  0  0.7  yes      0.8  0.2
#   2  0  0.2  no       0.5  0.5
#   3  0  0.6  yes      0.1  0.9
#   4  1  0.9  yes      0.6  0.4
# A: repaid weight 0.8+0.5+0.1 = 1.4, FP weight 0.8+0.1 = 0.9, FPR 9/14; n 2.0; flagged weight 1.5.
#    Kish 1.4² / (0.64+0.25+0.01) = 2.18 > 1.4, so n_eff = 1.4 (capped at Σw); k_eff = FPR·n_eff = 0.9.
# B: repaid weight 0.2+0.5+0.9 = 1.6, FP weight 1.1, FPR 11/16; n 2.0; flagged weight 1.5.
#    Kish 2.56 / 1.1 = 2.33 > 1.6, so n_eff = 1.6; k_eff = 1.1.
WEIGHTED = pd.DataFrame({"y": [0, 0, 0, 1], "p": [0.7, 0.2, 0.6, 0.9],
                         "A": [0.8, 0.5, 0.1, 0.6], "B": [0.2, 0.5, 0.9, 0.4]})
SINGLE = ThresholdPolicy(kind=SINGLE_THRESHOLD, thresholds={}, default_threshold=0.5)


def test_weighted_rates_on_a_hand_worked_table() -> None:
    frame = policy_metrics(WEIGHTED["y"], WEIGHTED["p"], None, SINGLE, bisg=WEIGHTED[["A", "B"]], **COSTS)
    assert frame["method"].tolist() == [BISG, BISG, BISG], "without groups the overall row is BISG's too"
    rows = frame.set_index("group")
    expected = {
        #    n    defaults repaid fpr      tpr  positive_rate cost (5·FN + FP) n_eff      k_eff
        "A": (2.0, 0.6, 1.4, 0.9 / 1.4, 1.0, 1.5 / 2.0, 0.9, 1.4, 0.9),
        "B": (2.0, 0.4, 1.6, 1.1 / 1.6, 1.0, 1.5 / 2.0, 1.1, 1.6, 1.1),
    }
    for group, (n, defaults, repaid, fpr, tpr, rate, cost, n_eff, k_eff) in expected.items():
        row = rows.loc[group]
        assert (row["n"], row["defaults"], row["repaid"]) == pytest.approx((n, defaults, repaid), abs=1e-12)
        assert row["fpr"] == pytest.approx(fpr, abs=1e-12)
        assert row["tpr"] == pytest.approx(tpr, abs=1e-12)
        assert row["positive_rate"] == pytest.approx(rate, abs=1e-12)
        assert row["cost"] == pytest.approx(cost, abs=1e-12)
        assert row["repaid_effective"] == pytest.approx(n_eff, abs=1e-12)
        assert row["threshold"] == 0.5, "a single threshold is every group's"
        interval = (beta.ppf(0.025, k_eff, n_eff - k_eff + 1), beta.ppf(0.975, k_eff + 1, n_eff - k_eff))
        assert (row["fpr_ci_low"], row["fpr_ci_high"]) == pytest.approx(interval, abs=1e-12)
    assert fpr_gap(frame) == pytest.approx(1.1 / 1.6 - 0.9 / 1.4, abs=1e-12)
    assert rows.loc[OVERALL, "fpr"] == pytest.approx(2 / 3)


def test_weighted_interval_closed_forms() -> None:
    """No weighted false positive: the upper bound is 1 − (alpha/2)^(1/n_eff) (the beta(1, n) quantile);
    all flagged: the lower bound is (alpha/2)^(1/n_eff). Kish's size, capped at Σw."""
    assert effective_sample_size([0.3] * 5) == pytest.approx(1.5, abs=1e-12), "Kish says 5, the members 1.5"
    assert effective_sample_size([2.0] * 4 + [1.0] * 4) == pytest.approx(144 / 20, abs=1e-12), "Kish: 12²/20"
    n_eff = effective_sample_size([0.9, 0.6, 0.9, 0.6])  # Kish 3²/2.34 = 3.85 > Σw = 3
    assert n_eff == pytest.approx(3.0, abs=1e-12)
    assert weighted_fpr_interval(0.0, 3.0, n_eff) == pytest.approx((0.0, 1 - 0.025 ** (1 / 3)), abs=1e-12)
    assert weighted_fpr_interval(3.0, 3.0, n_eff) == pytest.approx((0.025 ** (1 / 3), 1.0), abs=1e-12)
    uneven = effective_sample_size([5.0, 1.0])  # weights above 1 (not probabilities): Kish 36/26 < Σw 6
    assert weighted_fpr_interval(0.0, 6.0, uneven)[1] == pytest.approx(1 - 0.025 ** (26 / 36), abs=1e-12)
    assert weighted_fpr_interval(3, 10, 10.0) == fpr_interval(3, 10), "whole weights: the exact interval"


def test_zero_one_weights_reproduce_the_self_reported_numbers_exactly() -> None:
    rng = np.random.default_rng(8)
    n = 2_000
    g = rng.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1])
    p = np.round(rng.beta(2, 5, n), 3)  # ties
    y = (rng.random(n) < p).astype(int)
    policy = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds={"A": 0.3, "B": 0.25}, default_threshold=0.28)
    one_hot = pd.get_dummies(pd.Series(g)).astype(float)
    frame = policy_metrics(y, p, g, policy, bisg=one_hot, **COSTS)
    reported = frame[frame["method"] == SELF_REPORTED].set_index("group").drop(columns=["method", "threshold"])
    weighted = frame[frame["method"] == BISG].set_index("group").drop(columns=["method", "threshold"])
    pd.testing.assert_frame_equal(weighted, reported.drop(index=OVERALL), check_exact=True)
    assert (reported["repaid_effective"] == reported["repaid"]).all()
    assert fpr_gap(frame, method=BISG) == fpr_gap(frame, method=SELF_REPORTED)


def test_weighted_auc_equals_scikit_learn_with_sample_weights() -> None:
    rng = np.random.default_rng(9)
    p = np.round(rng.random(500), 2)
    y = (rng.random(500) < p).astype(int)
    w = rng.random(500)
    assert auc(y, p, w) == pytest.approx(roc_auc_score(y, p, sample_weight=w), abs=1e-12)


def test_weighted_metrics_need_groups_or_probabilities() -> None:
    with pytest.raises(ValueError, match="groups, the BISG probabilities, or both"):
        policy_metrics([0, 1], [0.1, 0.9], None, SINGLE, **COSTS)
    with pytest.raises(ValueError, match="bisg has 1 rows for 2 applicants"):
        policy_metrics([0, 1], [0.1, 0.9], None, SINGLE, bisg=pd.DataFrame({"A": [1.0]}), **COSTS)
