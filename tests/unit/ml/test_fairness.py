"""Threshold policies: hand-checked answers, brute-force scans, and the fairness they deliver."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from ml.fairness import (
    GROUP_THRESHOLDS,
    SINGLE_THRESHOLD,
    ThresholdPolicy,
    equal_fpr_policy,
    single_threshold_curve,
    single_threshold_policy,
)

COSTS = {"cost_fn": 5, "cost_fp": 1}


def cost_of(flagged: np.ndarray, y: np.ndarray, cost_fn: float = 5, cost_fp: float = 1) -> float:
    fn = int((~flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    return cost_fn * fn + cost_fp * fp


def fpr_of(flagged: np.ndarray, y: np.ndarray) -> float:
    return float((flagged & (y == 0)).sum() / (y == 0).sum())


# ----- a hand-checked case -----------------------------------------------------------------------
# Two groups of ten loans, five repaid in each, so both groups can reach exactly the same FPRs
# (0, .2, .4, .6, .8, 1) and every target on the grid gives them equal FPRs.
#   group A, repaid:    0.10 0.30 0.50 0.60 0.80       defaulted: 0.40 0.70 0.85 0.90 0.95
#   group B, repaid:    0.05 0.10 0.20 0.25 0.45       defaulted: 0.15 0.30 0.35 0.50 0.60
HAND_P = np.array([0.10, 0.30, 0.50, 0.60, 0.80, 0.40, 0.70, 0.85, 0.90, 0.95,
                   0.05, 0.10, 0.20, 0.25, 0.45, 0.15, 0.30, 0.35, 0.50, 0.60])
HAND_Y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1] * 2)
HAND_G = np.array(["A"] * 10 + ["B"] * 10)
# FPR k/5 allows k flagged repaid loans; the threshold is the group's smallest score above its
# (k+1)-th highest repaid score. Cost = 5·FN + FP:
#   k  FPR   A: threshold  FP FN cost   B: threshold  FP FN cost   total
#   0  0.0      0.85       0  2  10        0.50       0  3  15      25
#   1  0.2      0.70       1  1   6        0.30       1  1   6      12
#   2  0.4      0.60       2  1   7        0.25       2  1   7      14
#   3  0.6      0.40       3  0   3        0.15       3  0   3       6   <- minimum
#   4  0.8      0.30       4  0   4        0.10       4  0   4       8
#   5  1.0      0.10       5  0   5        0.05       5  0   5      10
# Taking the next *repaid* score instead (A at FPR .6 -> 0.50) would miss A's 0.40 default (cost 8).
HAND_TOTALS = {0.0: 25, 0.2: 12, 0.4: 14, 0.6: 6, 0.8: 8, 1.0: 10}


def test_equal_fpr_policy_on_the_hand_checked_case() -> None:
    policy, curve = equal_fpr_policy(HAND_P, HAND_Y, HAND_G, min_group_size=1, not_provided=None, **COSTS)
    assert policy.kind == GROUP_THRESHOLDS
    assert policy.thresholds == {"A": 0.40, "B": 0.15}
    assert policy.target_fpr == 0.6  # ties up to 0.799 go to the smaller target
    assert policy.fallback_groups == ()
    flagged = policy.flag(HAND_P, HAND_G)
    for group in ("A", "B"):
        rows = group == HAND_G
        assert fpr_of(flagged[rows], HAND_Y[rows]) == pytest.approx(0.6)
    assert cost_of(flagged, HAND_Y) == 6
    by_target = curve.set_index("target_fpr")
    for target, total in HAND_TOTALS.items():
        assert by_target.loc[target, "cost"] == total
        assert by_target.loc[target, "fpr__A"] == pytest.approx(target)
        assert by_target.loc[target, "fpr__B"] == pytest.approx(target)
    assert by_target.loc[0.6, ["fp", "fn"]].tolist() == [6, 0]
    assert by_target.loc[0.6, "flagged_rate"] == pytest.approx(16 / 20)
    assert by_target.loc[0.6, "cost_per_applicant"] == pytest.approx(6 / 20)


def brute_force_equal_fpr(p: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Minimum cost over every combination of per-group thresholds whose empirical FPRs are equal."""
    candidates = np.append(np.unique(p), np.inf)
    names = sorted(set(groups))
    fprs, costs = [], []
    for group in names:
        rows = groups == group
        gp, gy = p[rows], y[rows]
        flags = gp[None, :] >= candidates[:, None]  # candidate x loan
        fp = (flags & (gy == 0)).sum(axis=1)
        fn = (~flags & (gy == 1)).sum(axis=1)
        negatives = int((gy == 0).sum())
        fprs.append([(int(f), negatives) for f in fp])
        costs.append(5 * fn + fp)
    best = math.inf
    for combo in itertools.product(range(len(candidates)), repeat=len(names)):
        rates = [fprs[g][i] for g, i in enumerate(combo)]
        # equal FPRs, compared as fractions: fp_a / n_a == fp_b / n_b
        if all(a * nb == b * na for (a, na), (b, nb) in itertools.pairwise(rates)):
            best = min(best, sum(int(costs[g][i]) for g, i in enumerate(combo)))
    return best


def test_hand_checked_case_matches_brute_force() -> None:
    policy, curve = equal_fpr_policy(HAND_P, HAND_Y, HAND_G, min_group_size=1, not_provided=None, **COSTS)
    assert brute_force_equal_fpr(HAND_P, HAND_Y, HAND_G) == 6
    assert cost_of(policy.flag(HAND_P, HAND_G), HAND_Y) == 6
    assert curve["cost"].min() == 6


@pytest.mark.parametrize("seed", range(6))
def test_equal_fpr_policy_matches_brute_force_on_random_small_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups_n = 2 if seed % 2 else 3
    # Equal repaid counts per group, with distinct repaid scores within a group: then every FPR
    # k/n one group can reach, all can, and exactly equal FPRs exist to compare against. (1/6 is
    # not on the 0.001 grid, 1/5 and 1/8 are.)
    negatives = (5, 8, 6)[seed % 3]
    values = np.round(np.arange(0.05, 1.0, 0.05), 2)
    parts = []
    for g in range(groups_n):
        positives = int(rng.integers(2, 7))
        # defaulted loans drawn from the same coarse values, so they tie with repaid ones
        p = np.concatenate([rng.choice(values[:14], negatives, replace=False), rng.choice(values[4:], positives)])
        y = np.array([0] * negatives + [1] * positives)
        parts.append(pd.DataFrame({"p": p, "y": y, "g": f"g{g}"}))
    data = pd.concat(parts, ignore_index=True)
    p, y, g = data["p"].to_numpy(), data["y"].to_numpy(), data["g"].to_numpy()
    policy, curve = equal_fpr_policy(p, y, g, min_group_size=1, not_provided=None, **COSTS)
    flagged = policy.flag(p, g)
    expected = brute_force_equal_fpr(p, y, g)
    assert cost_of(flagged, y) == expected
    assert curve["cost"].min() == expected
    realised = {fpr_of(flagged[g == group], y[g == group]) for group in set(g)}
    assert len(realised) == 1  # exactly equal
    assert policy.target_fpr - 0.001 < realised.pop() <= policy.target_fpr  # the first grid target reaching it


def definition_thresholds(p: np.ndarray, y: np.ndarray, step: int, grid: int) -> float:
    """Smallest candidate (distinct score or +inf) whose FPR <= step/grid, by plain search."""
    negatives = p[y == 0]
    for t in [*np.unique(p), math.inf]:
        if int((negatives >= t).sum()) * grid <= step * len(negatives):
            return float(t)
    raise AssertionError("+inf always qualifies")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_follows_the_definition_with_unequal_and_small_groups(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = {"big": 300, "mid": 170, "tiny": 12}
    g = np.repeat(list(sizes), list(sizes.values()))
    p = np.round(rng.beta(2, 5, len(g)) + (g == "mid") * 0.1, 3).clip(0, 1)
    y = (rng.random(len(g)) < p).astype(int)
    policy, curve = equal_fpr_policy(p, y, g, min_group_size=30, not_provided=None, **COSTS)
    assert policy.fallback_groups == ("tiny",)
    assert set(policy.thresholds) == {"big", "mid"}
    for step in [*range(0, 1001, 37), round(policy.target_fpr * 1000)]:
        thresholds = {grp: definition_thresholds(p[g == grp], y[g == grp], step, 1000) for grp in ("big", "mid")}
        pooled = definition_thresholds(p, y, step, 1000)
        flagged = p >= np.array([thresholds.get(grp, pooled) for grp in g])
        row = curve.iloc[step]
        assert row["target_fpr"] == step / 1000
        assert row["cost"] == cost_of(flagged, y)
        assert row["fp"] == int((flagged & (y == 0)).sum())
        assert row["fn"] == int((~flagged & (y == 1)).sum())
        assert row["flagged_rate"] == pytest.approx(flagged.mean())
        for grp in sizes:
            assert row[f"fpr__{grp}"] == pytest.approx(fpr_of(flagged[g == grp], y[g == grp]))
            if grp != "tiny":  # never above the target (ties among repaid scores can keep it further below)
                assert row[f"fpr__{grp}"] <= step / 1000 + 1e-12
        assert row["fpr_gap"] == pytest.approx(abs(row["fpr__big"] - row["fpr__mid"]))
        if step == round(policy.target_fpr * 1000):
            assert policy.thresholds == thresholds
            assert policy.default_threshold == pooled
    assert curve["cost"].iloc[round(policy.target_fpr * 1000)] == curve["cost"].min()


# ----- the single threshold ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_single_threshold_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    p = np.round(rng.beta(2, 6, n), 2)  # ties, so equal-cost thresholds occur
    y = (rng.random(n) < p).astype(int)
    costs = {"cost_fn": 5, "cost_fp": 1} if seed % 2 else {"cost_fn": 3, "cost_fp": 2}
    best_cost, best_t = math.inf, math.nan
    for t in [*np.unique(p), math.inf]:  # ascending, so "<=" keeps the highest among equals
        c = cost_of(p >= t, y, **costs)
        if c <= best_cost:
            best_cost, best_t = c, t
    policy = single_threshold_policy(p, y, **costs)
    assert policy.kind == SINGLE_THRESHOLD
    assert policy.thresholds == {}
    assert policy.default_threshold == best_t
    assert cost_of(policy.flag(p, np.zeros(n)), y, **costs) == best_cost


def test_single_threshold_can_flag_nobody() -> None:
    # With review as costly as a miss and one default in four, no threshold beats approving all.
    p = np.array([0.9, 0.9, 0.9, 0.9])
    y = np.array([1, 0, 0, 0])
    policy = single_threshold_policy(p, y, cost_fn=1, cost_fp=1)
    assert policy.default_threshold == math.inf
    assert not policy.flag(p, ["x"] * 4).any()


def test_single_threshold_curve_agrees_with_the_policy() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(2, 5, 500)
    y = (rng.random(500) < p).astype(int)
    g = np.where(rng.random(500) < 0.5, "A", "B")
    curve = single_threshold_curve(p, y, g, **COSTS)
    policy = single_threshold_policy(p, y, **COSTS)
    assert len(curve) == len(np.unique(p)) + 1
    best = curve.loc[curve["cost"] == curve["cost"].min(), "threshold"].max()
    assert best == policy.default_threshold
    row = curve.loc[curve["threshold"] == best].iloc[0]
    flagged = p >= best
    assert row["fpr__A"] == pytest.approx(fpr_of(flagged[g == "A"], y[g == "A"]))
    assert row["fpr"] == pytest.approx(fpr_of(flagged, y))
    assert row["fpr_gap"] == pytest.approx(abs(row["fpr__A"] - row["fpr__B"]))
    without_groups = single_threshold_curve(p, y, None, **COSTS)  # a book without a group column
    pd.testing.assert_frame_equal(without_groups.drop(columns="fpr_gap"),
                                  curve.drop(columns=["fpr_gap", "fpr__A", "fpr__B"]))
    assert without_groups["fpr_gap"].isna().all()


# ----- the fairness it buys ----------------------------------------------------------------------
def simulated(seed: int, n_per_group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated scores whose distribution differs by group (as in lending data)."""
    rng = np.random.default_rng(seed)
    shifts = {"A": -0.6, "B": 0.0, "C": 0.7}
    g = np.repeat(list(shifts), n_per_group)
    z = rng.normal(-1.8, 1.0, len(g)) + np.array([shifts[x] for x in g])
    p = 1 / (1 + np.exp(-z))
    y = (rng.random(len(g)) < p).astype(int)
    return p, y, g


def realised_gap(flagged: np.ndarray, y: np.ndarray, g: np.ndarray) -> float:
    rates = [fpr_of(flagged[g == x], y[g == x]) for x in set(g)]
    return max(rates) - min(rates)


def test_group_thresholds_close_the_fpr_gap_a_single_threshold_leaves() -> None:
    p, y, g = simulated(seed=11, n_per_group=20_000)
    single = single_threshold_policy(p, y, **COSTS)
    equal, curve = equal_fpr_policy(p, y, g, min_group_size=100, not_provided=None, **COSTS)
    assert realised_gap(single.flag(p, g), y, g) > 0.15
    assert realised_gap(equal.flag(p, g), y, g) <= 0.01
    assert curve["fpr_gap"].iloc[round(equal.target_fpr * 1000)] <= 0.01
    # Every group within one repaid loan of the target (continuous scores: no ties):
    for group in "ABC":
        rows = g == group
        repaid = int((y[rows] == 0).sum())
        assert equal.target_fpr - 1 / repaid < fpr_of(equal.flag(p, g)[rows], y[rows]) <= equal.target_fpr
    # Fairness costs something (here about 6%), never less than the unconstrained optimum:
    assert cost_of(single.flag(p, g), y) < cost_of(equal.flag(p, g), y) <= 1.10 * cost_of(single.flag(p, g), y)
    # and it carries over to fresh data from the same population (what the test split sees):
    p2, y2, g2 = simulated(seed=12, n_per_group=20_000)
    assert realised_gap(equal.flag(p2, g2), y2, g2) <= 0.03
    assert realised_gap(single.flag(p2, g2), y2, g2) > 0.15


# ----- small groups, not provided, unseen groups -------------------------------------------------
def test_small_groups_fall_back_to_the_pooled_threshold() -> None:
    # Hand case plus group C with only three repaid loans (below min_group_size = 5).
    p = np.append(HAND_P, [0.20, 0.70, 0.90, 0.80])
    y = np.append(HAND_Y, [0, 0, 0, 1])
    g = np.append(HAND_G, ["C"] * 4)
    policy, curve = equal_fpr_policy(p, y, g, min_group_size=5, not_provided=None, **COSTS)
    assert policy.fallback_groups == ("C",)
    assert set(policy.thresholds) == {"A", "B"}
    # Pooled repaid scores (13): 0.9 0.8 0.7 0.6 0.5 0.45 0.3 0.25 0.2 0.2 0.1 0.1 0.05.
    # At f = 0.6 at most floor(0.6·13) = 7 may be flagged; the 8th highest is 0.25, so the
    # pooled threshold is the smallest score above it: 0.30. C then has FP 2 (0.7, 0.9), FN 0,
    # so the total at 0.6 is 6 + 2 = 8; at 0.8 (floor(10.4) = 10 flagged, above 0.1 -> 0.15)
    # it is 8 + 3 = 11; at 0.2 (2 flagged, above 0.7 -> 0.8) C has FP 1, FN 0: 12 + 1 = 13.
    by_target = curve.set_index("target_fpr")
    assert by_target.loc[0.6, "cost"] == 8
    assert by_target.loc[0.8, "cost"] == 11
    assert by_target.loc[0.2, "cost"] == 13
    assert policy.target_fpr == 0.6
    assert policy.default_threshold == 0.30
    assert by_target.loc[0.6, "fpr__C"] == pytest.approx(2 / 3)
    assert by_target.loc[0.6, "fpr_gap"] == pytest.approx(0.0)  # C's uncontrolled FPR is not in the gap
    assert policy.threshold_for(["C", "A", "B"]).tolist() == [0.30, 0.40, 0.15]


def test_not_provided_is_its_own_group_when_large_enough() -> None:
    groups = np.array(HAND_G, dtype=object)
    groups[HAND_G == "B"] = None  # B's applicants did not report their ethnicity
    policy, curve = equal_fpr_policy(HAND_P, HAND_Y, groups, min_group_size=5, not_provided="Not provided",
                                     **COSTS)
    assert policy.thresholds == {"A": 0.40, "Not provided": 0.15}
    assert policy.fallback_groups == ()
    assert "fpr__Not provided" in curve.columns
    # at apply time a missing group is the not-provided group, a label it never saw is the default
    assert policy.threshold_for([None, np.nan, "Not provided", "A", "Martian"]).tolist() == [
        0.15, 0.15, 0.15, 0.40, policy.default_threshold]


@pytest.mark.parametrize("not_provided", ["Not provided", None])
def test_one_applicants_threshold_equals_the_vectorised_rule(not_provided: str | None) -> None:
    """The API's per-request lookup (``threshold_of``) must apply exactly the batch rule."""
    policy = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds={"A": 0.4, "Not provided": 0.15, "7": 0.2},
                             default_threshold=0.3, not_provided=not_provided)
    groups = [None, np.nan, "Not provided", "A", "a", "Martian", "", 7, "7"]
    assert [policy.threshold_of(g) for g in groups] == policy.threshold_for(groups).tolist()


def test_not_provided_falls_back_when_small() -> None:
    p = np.append(HAND_P, [0.3, 0.5])
    y = np.append(HAND_Y, [0, 1])
    g = pd.Series([*HAND_G, None, None])
    policy, _ = equal_fpr_policy(p, y, g, min_group_size=5, not_provided="Not provided", **COSTS)
    assert policy.fallback_groups == ("Not provided",)
    assert "Not provided" not in policy.thresholds
    assert policy.threshold_for([None])[0] == policy.default_threshold


def test_missing_groups_need_a_not_provided_label() -> None:
    g = np.array(HAND_G, dtype=object)
    g[0] = None
    with pytest.raises(ValueError, match="not_provided"):
        equal_fpr_policy(HAND_P, HAND_Y, g, min_group_size=1, not_provided=None, **COSTS)


def test_unseen_group_gets_the_default_threshold() -> None:
    policy = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds={"A": 0.4}, default_threshold=0.2, target_fpr=0.1)
    assert policy.threshold_for(["A", "Z", None]).tolist() == [0.4, 0.2, 0.2]
    assert policy.flag([0.3, 0.3, 0.3], ["A", "Z", None]).tolist() == [False, True, True]
    assert policy.flag([0.4, 0.2], ["A", "Z"]).tolist() == [True, True]  # p >= threshold is flagged


# ----- storage -----------------------------------------------------------------------------------
def test_policy_round_trips_through_strict_json() -> None:
    policy, _ = equal_fpr_policy(HAND_P, HAND_Y, HAND_G, min_group_size=1, not_provided="Not provided", **COSTS)
    policy = ThresholdPolicy(**{**policy.__dict__, "thresholds": {**policy.thresholds, "Z": math.inf}})
    text = json.dumps(policy.to_dict(), allow_nan=False)
    assert ThresholdPolicy.from_dict(json.loads(text)) == policy
    single = single_threshold_policy([0.9, 0.9], [1, 0], cost_fn=1, cost_fp=1)
    assert single.default_threshold == math.inf
    assert ThresholdPolicy.from_dict(json.loads(json.dumps(single.to_dict(), allow_nan=False))) == single


def test_policy_is_immutable_and_owns_its_thresholds() -> None:
    thresholds = {"A": 0.4}
    policy = ThresholdPolicy(kind=GROUP_THRESHOLDS, thresholds=thresholds, default_threshold=0.2)
    thresholds["A"] = 0.9
    assert policy.thresholds == {"A": 0.4}
    with pytest.raises(AttributeError):
        policy.default_threshold = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "lottery", "default_threshold": 0.5}, "kind"),
        ({"kind": "group_thresholds", "default_threshold": "high"}, "threshold"),
        ({"kind": "group_thresholds"}, "malformed"),
        ({"kind": "group_thresholds", "default_threshold": 0.5, "target_fpr": 2}, "target_fpr"),
        ({"kind": "single_threshold", "default_threshold": 0.5, "thresholds": {"A": 0.1}}, "single"),
    ],
)
def test_from_dict_rejects_malformed_policies(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThresholdPolicy.from_dict(raw)


# ----- input validation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "y", "g", "message"),
    [
        ([0.1, 0.2], [0, 1, 1], ["a", "b"], "length"),
        ([0.1, 0.2], [0, 1], ["a"], "length"),
        ([0.1, 1.2], [0, 1], ["a", "b"], r"\[0, 1\]"),
        ([0.1, math.nan], [0, 1], ["a", "b"], r"\[0, 1\]"),
        ([0.1, 0.2], [0, 2], ["a", "b"], "only 0"),
        ([0.1, 0.2], ["no", "yes"], ["a", "b"], "only 0"),
        ([0.1, 0.2], [0, 0], ["a", "b"], "at least one"),
        ([0.1, 0.2], [1, 1], ["a", "b"], "at least one"),
        ([], [], [], "no rows"),
    ],
)
def test_invalid_inputs_are_refused(p: list, y: list, g: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        equal_fpr_policy(p, y, g, min_group_size=1, not_provided=None, **COSTS)
    if len(g) == len(p):
        with pytest.raises(ValueError, match=message):
            single_threshold_policy(p, y, **COSTS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_group_size": 0}, "min_group_size"),
        ({"min_group_size": 2.5}, "min_group_size"),
        ({"cost_fn": -1}, "cost_fn"),
        ({"cost_fn": 0, "cost_fp": 0}, "both be zero"),
        ({"grid_size": 0}, "grid_size"),
    ],
)
def test_invalid_settings_are_refused(options: dict, message: str) -> None:
    settings = {"min_group_size": 1, "not_provided": None, **COSTS, **options}
    with pytest.raises(ValueError, match=message):
        equal_fpr_policy(HAND_P, HAND_Y, HAND_G, **settings)


def test_flag_refuses_missing_probabilities_and_mismatched_lengths() -> None:
    policy = ThresholdPolicy(kind=SINGLE_THRESHOLD, thresholds={}, default_threshold=0.5)
    with pytest.raises(ValueError, match="NaN"):
        policy.flag([0.1, math.nan], ["a", "b"])
    with pytest.raises(ValueError, match="length"):
        policy.flag([0.1, 0.2], ["a"])
