"""Decision thresholds: the cost-minimising single threshold and equal-FPR group thresholds.

The business rules: positive = flagged for manual review; a missed default costs
``cost_fn``, a needless review ``cost_fp``; fairness is Equal Opportunity on the false-positive
rate, FPR_g = P(flagged | repaid, g). Everything here is a pure function of the held-out
predictions the caller passes (the deployed model's, on the validation split; never the test
split), and every decision is
deterministic: a loan is flagged if and only if ``p >= threshold`` of its group.

Candidate thresholds are the distinct scores (plus ``+inf`` for "flag nobody"): any threshold
between two consecutive scores makes the same decisions on the data, so these are all there is
to choose from, and the chosen threshold is always a score that was seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

GROUP_THRESHOLDS = "group_thresholds"
SINGLE_THRESHOLD = "single_threshold"
POLICY_KINDS = (GROUP_THRESHOLDS, SINGLE_THRESHOLD)

DEFAULT_GRID_SIZE = 1_000
"""Targets scanned by :func:`equal_fpr_policy`: f = i / 1000 for i = 0 … 1000 (1,001 points)."""

_INF_JSON = "inf"


# ----- the policy --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThresholdPolicy:
    """Stored, versioned decision rule: flag a loan iff its probability >= its group's threshold.

    ``thresholds`` holds one threshold per group that had enough repaid loans to get its own;
    every other group (too small at fit time, or never seen) gets ``default_threshold``.
    ``not_provided`` names the group that missing group values belong to (applicants who did not
    report their ethnicity), so a missing value at apply time is treated like that group.
    """

    kind: str
    thresholds: dict[str, float]
    default_threshold: float
    target_fpr: float | None = None
    fallback_groups: tuple[str, ...] = ()
    not_provided: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ValueError(f"kind must be one of {POLICY_KINDS}, got {self.kind!r}")
        # Own copies: a frozen policy must not change when the caller's dict or list does.
        object.__setattr__(self, "thresholds", {str(g): float(t) for g, t in self.thresholds.items()})
        object.__setattr__(self, "default_threshold", float(self.default_threshold))
        object.__setattr__(self, "fallback_groups", tuple(str(g) for g in self.fallback_groups))
        for name, value in [("default_threshold", self.default_threshold), *self.thresholds.items()]:
            if math.isnan(value):
                raise ValueError(f"threshold for {name!r} is NaN")
        if self.target_fpr is not None:
            object.__setattr__(self, "target_fpr", float(self.target_fpr))
            if not 0.0 <= self.target_fpr <= 1.0:
                raise ValueError(f"target_fpr must be in [0, 1], got {self.target_fpr}")
        if self.kind == SINGLE_THRESHOLD and self.thresholds:
            raise ValueError("a single-threshold policy has no group thresholds (use default_threshold)")

    def threshold_for(self, groups: Any) -> np.ndarray:
        """The threshold of each row's group (missing → ``not_provided``; unknown → the default)."""
        labels = normalise_groups(groups, self.not_provided, allow_missing=True)
        out = np.full(len(labels), self.default_threshold, dtype=float)
        for group, threshold in self.thresholds.items():
            out[labels == group] = threshold
        return out

    def threshold_of(self, group: object) -> float:
        """``threshold_for`` for one applicant, without building arrays (the API's per-request path)."""
        missing = group is None or (isinstance(group, float) and math.isnan(group))
        label = self.not_provided if missing else str(group)
        return self.default_threshold if label is None else self.thresholds.get(label, self.default_threshold)

    def flag(self, p: Any, groups: Any) -> np.ndarray:
        """Boolean decisions: ``p >= threshold_for(groups)`` (flagged = sent to manual review)."""
        scores = np.asarray(p, dtype=float)
        if scores.ndim != 1:
            raise ValueError("p must be one-dimensional")
        if np.isnan(scores).any():
            raise ValueError("p contains NaN: a missing probability must not silently approve a loan")
        thresholds = self.threshold_for(groups)
        if len(thresholds) != len(scores):
            raise ValueError(f"p and groups differ in length ({len(scores)} vs {len(thresholds)})")
        return scores >= thresholds

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form (``+inf`` is written as the string ``"inf"``, which JSON lacks)."""
        return {
            "kind": self.kind,
            "thresholds": {g: _threshold_to_json(t) for g, t in sorted(self.thresholds.items())},
            "default_threshold": _threshold_to_json(self.default_threshold),
            "target_fpr": self.target_fpr,
            "fallback_groups": list(self.fallback_groups),
            "not_provided": self.not_provided,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ThresholdPolicy:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                kind=raw["kind"],
                thresholds={str(g): _threshold_from_json(t) for g, t in raw.get("thresholds", {}).items()},
                default_threshold=_threshold_from_json(raw["default_threshold"]),
                target_fpr=raw.get("target_fpr"),
                fallback_groups=tuple(raw.get("fallback_groups", ())),
                not_provided=raw.get("not_provided"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed threshold policy: {exc!r}") from exc


def _threshold_to_json(value: float) -> float | str:
    return _INF_JSON if value == math.inf else value


def _threshold_from_json(value: float | str) -> float:
    if isinstance(value, str):
        if value.lower() in {"inf", "+inf", "infinity"}:
            return math.inf
        raise ValueError(f"threshold must be a number or 'inf', got {value!r}")
    return float(value)


# ----- input checks ------------------------------------------------------------------------------
def normalise_groups(groups: Any, not_provided: str | None, *, allow_missing: bool = False) -> np.ndarray:
    """Group labels as strings; missing values become ``not_provided``.

    Without ``not_provided`` a missing label is an error at fit time (``allow_missing=False``)
    and an unknown group at apply time (it gets the policy's default threshold).
    """
    values = pd.Series(groups, dtype=object) if not isinstance(groups, pd.Series) else groups.astype(object)
    if values.ndim != 1:
        raise ValueError("groups must be one-dimensional")
    missing = values.isna().to_numpy()
    labels = np.array([str(v) for v in values.to_numpy()], dtype=object)
    if missing.any():
        if not_provided is not None:
            labels[missing] = not_provided
        elif not allow_missing:
            raise ValueError("groups has missing values and no not_provided group was given")
        else:
            labels[missing] = None
    return labels


def check_inputs(
    p: Any, y: Any, groups: Any = None, *, require_both_classes: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities as float, labels as int8; clear errors for what would otherwise mislead."""
    scores = np.asarray(p, dtype=float)
    labels = np.asarray(y)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ValueError("p and y must be one-dimensional")
    if len(scores) != len(labels):
        raise ValueError(f"p and y differ in length ({len(scores)} vs {len(labels)})")
    if groups is not None and len(groups) != len(scores):
        raise ValueError(f"p and groups differ in length ({len(scores)} vs {len(groups)})")
    if len(scores) == 0:
        raise ValueError("no rows")
    if not np.all((scores >= 0.0) & (scores <= 1.0)):  # also rejects NaN
        raise ValueError("p must be probabilities in [0, 1] (no NaN)")
    if labels.dtype == bool:
        labels = labels.astype(np.int8)
    try:
        valid = bool(np.isin(labels, (0, 1)).all())
    except TypeError:
        valid = False
    if not valid:
        raise ValueError("y must hold only 0 (repaid) and 1 (defaulted)")
    labels = labels.astype(np.int8)
    if require_both_classes and (labels.min() == labels.max()):
        raise ValueError("y needs at least one repaid (0) and one defaulted (1) loan")
    return scores, labels


def _check_costs(cost_fn: float, cost_fp: float) -> None:
    for name, value in (("cost_fn", cost_fn), ("cost_fp", cost_fp)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if cost_fn == 0 and cost_fp == 0:
        raise ValueError("cost_fn and cost_fp cannot both be zero")


# ----- the single threshold ----------------------------------------------------------------------
def _single_threshold_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate threshold (distinct scores, then +inf) with its FP and FN counts."""
    candidates = np.append(np.unique(scores), math.inf)
    negatives = np.sort(scores[labels == 0])
    positives = np.sort(scores[labels == 1])
    fp = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    fn = np.searchsorted(positives, candidates, side="left")
    return candidates, fp, fn


def single_threshold_policy(p: Any, y: Any, *, cost_fn: float, cost_fp: float) -> ThresholdPolicy:
    """One threshold for everybody, at minimum ``cost_fn·FN + cost_fp·FP``.

    For jurisdictions that forbid group-specific thresholds. All distinct scores and ``+inf``
    ("flag nobody") are scanned in one pass (sort + searchsorted); ties go to the higher
    threshold, i.e. fewer manual reviews for the same cost.
    """
    _check_costs(cost_fn, cost_fp)
    scores, labels = check_inputs(p, y)
    candidates, fp, fn = _single_threshold_counts(scores, labels)
    cost = cost_fn * fn + cost_fp * fp
    best = len(cost) - 1 - int(np.argmin(cost[::-1]))  # last minimum = highest threshold
    return ThresholdPolicy(kind=SINGLE_THRESHOLD, thresholds={}, default_threshold=float(candidates[best]))


def single_threshold_curve(
    p: Any, y: Any, groups: Any, *, cost_fn: float, cost_fp: float, min_group_size: int = 1,
    not_provided: str | None = None,
) -> pd.DataFrame:
    """Cost and per-group FPR of every single threshold, to chart next to the equal-FPR curve.

    One row per candidate threshold (distinct scores, then +inf): ``threshold, fpr`` (pooled),
    ``cost, cost_per_applicant, fp, fn, flagged_rate, fpr_gap`` and ``fpr__<group>``. The gap
    counts only groups with at least ``min_group_size`` repaid loans, as the gate does. Without
    ``groups`` (a book without a group column) there are no group columns and the gap is NaN.
    """
    _check_costs(cost_fn, cost_fp)
    scores, labels = check_inputs(p, y, groups)
    names = np.array([], dtype=object) if groups is None else normalise_groups(groups, not_provided)
    candidates, fp, fn = _single_threshold_counts(scores, labels)
    n = len(scores)
    columns: dict[str, np.ndarray] = {
        "threshold": candidates,
        "fpr": fp / int((labels == 0).sum()),
        "cost": cost_fn * fn + cost_fp * fp,
    }
    columns["cost_per_applicant"] = columns["cost"] / n
    columns.update(fp=fp, fn=fn, flagged_rate=(n - np.searchsorted(np.sort(scores), candidates, side="left")) / n)
    group_fpr: dict[str, np.ndarray] = {}
    gap_groups: list[str] = []
    for group in sorted(set(names)):
        negatives = np.sort(scores[(names == group) & (labels == 0)])
        if len(negatives) == 0:
            group_fpr[group] = np.full(len(candidates), np.nan)
            continue
        group_fpr[group] = (len(negatives) - np.searchsorted(negatives, candidates, side="left")) / len(negatives)
        if len(negatives) >= min_group_size:
            gap_groups.append(group)
    columns["fpr_gap"] = _gap([group_fpr[g] for g in gap_groups], len(candidates))
    columns.update({f"fpr__{g}": v for g, v in group_fpr.items()})
    return pd.DataFrame(columns)


def _gap(rates: list[np.ndarray], length: int) -> np.ndarray:
    if not rates:
        return np.full(length, np.nan)
    stacked = np.vstack(rates)
    gap: np.ndarray = stacked.max(axis=0) - stacked.min(axis=0)  # numpy types axis reductions as Any
    return gap


# ----- equal-FPR group thresholds ----------------------------------------------------------------
@dataclass(frozen=True)
class _Scores:
    """One group's (or the pool's) sorted scores: what every threshold and count is read from."""

    negatives: np.ndarray
    positives: np.ndarray
    distinct: np.ndarray = field(repr=False)

    @classmethod
    def of(cls, scores: np.ndarray, labels: np.ndarray) -> _Scores:
        return cls(np.sort(scores[labels == 0]), np.sort(scores[labels == 1]), np.unique(scores))

    def thresholds(self, grid: np.ndarray, grid_size: int) -> np.ndarray:
        """t(f) = the smallest candidate threshold whose empirical FPR is <= f, for f = grid / grid_size.

        At most k = floor(f·n) repaid loans may be flagged (integer arithmetic, so f = 0.3 with
        n = 10 allows exactly 3). With d_k the (k+1)-th largest repaid score, the threshold is the
        smallest score of the group above d_k: it flags exactly the repaid loans above d_k and,
        being the lowest such threshold, every defaulted loan it can at that FPR.
        """
        n = len(self.negatives)
        allowed = (grid * n) // grid_size
        out = np.full(len(grid), math.inf)
        everyone = allowed >= n
        out[everyone] = self.distinct[0]
        rest = ~everyone
        above = self.negatives[n - 1 - allowed[rest]]
        index = np.searchsorted(self.distinct, above, side="right")
        out[rest] = np.where(
            index < len(self.distinct), self.distinct[np.minimum(index, len(self.distinct) - 1)], math.inf
        )
        return out

    def counts(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """False positives and false negatives at each threshold."""
        fp = len(self.negatives) - np.searchsorted(self.negatives, thresholds, side="left")
        fn = np.searchsorted(self.positives, thresholds, side="left")
        return fp, fn


def equal_fpr_policy(
    p: Any,
    y: Any,
    groups: Any,
    *,
    cost_fn: float,
    cost_fp: float,
    min_group_size: int,
    not_provided: str | None,
    grid_size: int = DEFAULT_GRID_SIZE,
) -> tuple[ThresholdPolicy, pd.DataFrame]:
    """Per-group thresholds giving every group the same FPR, at the common FPR of minimum cost.

    For each target f on the grid i / ``grid_size`` (default 0.000, 0.001, …, 1.000), group g gets
    t_g(f), the smallest threshold whose empirical FPR_g <= f (see :meth:`_Scores.thresholds`),
    so FPR_g is the largest achievable value <= f: equal across groups as nearly as the sample
    allows, with no randomised decisions (within 1/n_g of f when g's repaid scores are distinct;
    tied scores, e.g. from a step-function calibrator, make the steps coarser and the realised
    FPRs can then differ by more). The total cost is computed for every f at
    once from sorted arrays and ``searchsorted``; f* = argmin cost, ties to the smaller f.

    Small groups: a group with fewer than ``min_group_size`` repaid loans cannot estimate its
    FPR reliably, so it gets no threshold of its own: it is listed in ``fallback_groups`` and
    decided by ``default_threshold``, the threshold at the same target f computed on all repaid
    loans pooled (their cost at f is counted with that threshold). Groups never seen here get the
    same default when the policy is applied.

    ``not_provided``: the label of applicants who did not report their ethnicity. Missing group
    values are mapped to it (an error if it is None). It is handled like any other group: its own
    threshold when it has at least ``min_group_size`` repaid loans, otherwise it falls back to
    the pooled threshold like every small group. It is never merged into another group.

    Returns the policy and the curve, one row per target: ``target_fpr, cost,
    cost_per_applicant, fp, fn, flagged_rate, fpr_gap`` and ``fpr__<group>`` (realised FPR of
    every group, fallback groups included), so a reviewer sees how flat the optimum is.
    ``fpr_gap`` is over the groups with their own thresholds (the fallback groups' FPR is not
    controlled, and too noisy to judge).
    """
    _check_costs(cost_fn, cost_fp)
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a positive integer, got {min_group_size!r}")
    if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 1:
        raise ValueError(f"grid_size must be a positive integer, got {grid_size!r}")
    scores, labels = check_inputs(p, y, groups)
    names = normalise_groups(groups, not_provided)

    grid = np.arange(grid_size + 1, dtype=np.int64)
    pooled = _Scores.of(scores, labels)
    pooled_thresholds = pooled.thresholds(grid, grid_size)

    own: dict[str, np.ndarray] = {}
    group_fpr: dict[str, np.ndarray] = {}
    fallback: list[str] = []
    fp_total = np.zeros(len(grid), dtype=np.int64)
    fn_total = np.zeros(len(grid), dtype=np.int64)
    for group in sorted(set(names)):
        rows = names == group
        group_scores = _Scores.of(scores[rows], labels[rows])
        n_negatives = len(group_scores.negatives)
        if n_negatives >= min_group_size:
            thresholds = own[group] = group_scores.thresholds(grid, grid_size)
        else:
            fallback.append(group)
            thresholds = pooled_thresholds
        fp, fn = group_scores.counts(thresholds)
        fp_total += fp
        fn_total += fn
        group_fpr[group] = fp / n_negatives if n_negatives else np.full(len(grid), np.nan)

    cost = cost_fn * fn_total + cost_fp * fp_total
    n = len(scores)
    flagged = fp_total + int((labels == 1).sum()) - fn_total
    curve = pd.DataFrame({
        "target_fpr": grid / grid_size,
        "cost": cost,
        "cost_per_applicant": cost / n,
        "fp": fp_total,
        "fn": fn_total,
        "flagged_rate": flagged / n,
        "fpr_gap": _gap([group_fpr[g] for g in own], len(grid)),
        **{f"fpr__{g}": v for g, v in group_fpr.items()},
    })

    best = int(np.argmin(cost))  # first minimum = smallest target FPR
    policy = ThresholdPolicy(
        kind=GROUP_THRESHOLDS,
        thresholds={g: float(t[best]) for g, t in own.items()},
        default_threshold=float(pooled_thresholds[best]),
        target_fpr=float(grid[best] / grid_size),
        fallback_groups=tuple(fallback),
        not_provided=not_provided,
    )
    return policy, curve
