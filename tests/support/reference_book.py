"""A lender's book whose ideal fair policy is known exactly: the reference the pipeline is held to.

Three groups differ only in where their scores lie: a group's score is normal, N(mean, sd), and the
probability of default depends on the score alone, logit p(s) = INTERCEPT + SLOPE·(s − 50), the same
curve for everyone (so p is the ideal risk score, decreasing in the score). Flagging p ≥ t is
flagging s ≤ c, so every policy is a score cut per group, and its rates are integrals:

    repaid share        N_g = ∫ (1 − p) φ_g
    FPR at cut c        F_g(c) = ∫_{−∞}^{c} (1 − p) φ_g / N_g
    missed defaults     M_g(c) = ∫_{c}^{∞} p φ_g
    cost per applicant  Σ_g π_g [5·M_g(c_g) + 1·N_g·F_g(c_g)]

Equal FPR f puts group g's cut at c_g(f) = F_g⁻¹(f). The cost's derivative in f is
Σ_g π_g N_g [1 − 5·p(c_g)/(1 − p(c_g))], increasing in f (each cut rises with f and the odds of
default fall with the score), so the optimum is the root of Σ_g π_g N_g (1 − 5·odds(c_g)) = 0.
The single threshold's optimum is Bayes' rule, p(c) = 1/(1 + 5). SciPy integrates and solves.

What a finite book can show is bounded by sampling: :func:`ideal_sampling` runs the same choosers
as the pipeline (``ml.fairness``) on the *true* probabilities of books of the pipeline's split
sizes, many times, so a result is judged against the spread of an ideal implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import integrate, optimize, stats
from scipy.special import expit, logit

from ml.fairness import equal_fpr_policy, single_threshold_policy

GROUPS = ("A", "B", "C")
SHARES = np.array([0.55, 0.30, 0.15])
MEANS = np.array([62.0, 52.0, 44.0])
SDS = np.array([11.0, 11.0, 10.0])
INTERCEPT, SLOPE = -1.6, -0.15
COST_FN, COST_FP = 5.0, 1.0

CONTRACT = {
    "name": "reference_book",
    "description": "Three groups, one score, a known default curve: the equal-FPR optimum is known exactly.",
    "columns": {"id": "application_ref", "date": "decided_on", "group": {"name": "cohort", "values": list(GROUPS)}},
    "outcome": {"column": "outcome", "positive": ["default"], "negative": ["repaid"]},
    "numeric_features": [{"name": "score", "min": 0, "max": 100, "monotone": "decreasing"}],
    # One category only: it carries no information (and keeps the book off the numeric-only path,
    # which is another change's to fix), so a probability is a function of the score alone.
    "categorical_features": [{"name": "channel", "values": ["branch"]}],
}


def default_probability(score: np.ndarray | float) -> np.ndarray:
    return np.asarray(expit(INTERCEPT + SLOPE * (np.asarray(score, dtype=float) - 50.0)))


@dataclass(frozen=True)
class _Sample:
    score: np.ndarray
    p: np.ndarray
    y: np.ndarray
    group: np.ndarray


def _draw(rng: np.random.Generator, rows: int) -> _Sample:
    """Applicants of the book: group, score (rounded to 0.01, within 0-100), true risk, outcome."""
    group = np.asarray(GROUPS)[rng.choice(len(GROUPS), size=rows, p=SHARES)]
    index = np.searchsorted(GROUPS, group)
    score = np.clip(np.round(rng.normal(MEANS[index], SDS[index]), 2), 0, 100)
    p = default_probability(score)
    return _Sample(score, p, rng.random(rows) < p, group)


def book(rows: int, seed: int) -> pd.DataFrame:
    """A sample of the book in the contract's columns."""
    rng = np.random.default_rng(seed)
    sample = _draw(rng, rows)
    return pd.DataFrame({
        "application_ref": [f"R{i:07d}" for i in range(rows)],
        "decided_on": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D"),
        "cohort": sample.group,
        "score": sample.score,
        "channel": "branch",
        "outcome": np.where(sample.y, "default", "repaid"),
    })


def _integral(function, low: float, high: float) -> float:  # type: ignore[no-untyped-def]
    value, _ = integrate.quad(function, low, high, limit=200, epsabs=1e-12, epsrel=1e-10)
    return float(value)


@dataclass(frozen=True)
class Group:
    """One group's score law, and its repaid and defaulted mass below every score.

    The masses are tabulated once (trapezoid rule, step 0.001, scores −100 to 200), so
    cuts are inverted and costs read in microseconds; :meth:`quad_cost` integrates adaptively
    (``scipy.integrate.quad``) to check the table (they agree to about 1e-9).
    """

    share: float
    mean: float
    sd: float

    def density(self, s: np.ndarray | float) -> np.ndarray:
        return np.asarray(stats.norm.pdf(s, self.mean, self.sd))

    @property
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        key = (self.mean, self.sd)
        if key not in _TABLES:
            _TABLES[key] = (_cumulative((1 - default_probability(_GRID)) * self.density(_GRID)),
                            _cumulative(default_probability(_GRID) * self.density(_GRID)))
        return _TABLES[key]

    @property
    def repaid(self) -> float:
        return float(self._tables[0][-1])

    def fpr(self, cut: float) -> float:
        return float(np.interp(cut, _GRID, self._tables[0])) / self.repaid

    def cut_at(self, fpr: float) -> float:
        return float(np.interp(fpr * self.repaid, self._tables[0], _GRID))

    def cost(self, cut: float) -> float:
        """Cost per applicant of the group when s ≤ ``cut`` is flagged."""
        repaid, defaults = self._tables
        return float(COST_FN * (defaults[-1] - np.interp(cut, _GRID, defaults))
                     + COST_FP * np.interp(cut, _GRID, repaid))

    def quad_cost(self, cut: float) -> float:
        """:meth:`cost` by adaptive quadrature."""
        low, high = self.mean - 12 * self.sd, self.mean + 12 * self.sd
        defaults = _integral(lambda s: default_probability(s) * self.density(s), cut, high)
        repaid = _integral(lambda s: (1 - default_probability(s)) * self.density(s), low, cut)
        return COST_FN * defaults + COST_FP * repaid


_GRID = np.linspace(-100.0, 200.0, 300_001)
_TABLES: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}


def _cumulative(weight: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum((weight[1:] + weight[:-1]) / 2 * np.diff(_GRID))])


GROUP_LAWS = {name: Group(float(p), float(m), float(s))
              for name, p, m, s in zip(GROUPS, SHARES, MEANS, SDS, strict=True)}


@dataclass(frozen=True)
class Exact:
    common_fpr: float
    group_cuts: dict[str, float]
    group_cost: float
    single_cut: float
    single_fpr: dict[str, float]
    single_cost: float


def exact() -> Exact:
    """The equal-FPR optimum (root of the cost's derivative in f) and the single threshold's (Bayes)."""
    laws = GROUP_LAWS

    def slope(f: float) -> float:
        total = 0.0
        for law in laws.values():
            p = float(default_probability(law.cut_at(f)))
            total += law.share * law.repaid * (1 - COST_FN / COST_FP * p / (1 - p))
        return total

    f = float(optimize.brentq(slope, 1e-4, 0.99, xtol=1e-12))
    cuts = {g: law.cut_at(f) for g, law in laws.items()}
    single_cut = true_cut(COST_FP / (COST_FP + COST_FN))
    return Exact(f, cuts, expected_cost(cuts), single_cut, {g: law.fpr(single_cut) for g, law in laws.items()},
                 expected_cost(dict.fromkeys(GROUPS, single_cut)))


def true_cut(threshold: float) -> float:
    """The score below which the true probability is at least ``threshold``."""
    return 50.0 + (float(logit(threshold)) - INTERCEPT) / SLOPE if 0 < threshold < 1 else -np.inf


def expected_cost(cuts: dict[str, float]) -> float:
    """Cost per applicant, in expectation over the book, of flagging s ≤ cuts[g] in group g."""
    return sum(law.share * law.cost(cuts[g]) for g, law in GROUP_LAWS.items())


@dataclass(frozen=True)
class Spread:
    """Quantiles of an ideal implementation's results over many books of the pipeline's split sizes:
    the common FPR and the single threshold's score cut it chooses, the cost per applicant it
    realises on a test sample, and its expected cost over the book (test sampling aside)."""

    common_fpr: np.ndarray
    group_cost: np.ndarray
    group_expected_cost: np.ndarray
    single_cut: np.ndarray
    single_cost: np.ndarray
    single_expected_cost: np.ndarray


def ideal_sampling(validation_rows: int, test_rows: int, *, min_group_size: int, replicates: int = 400,
                   seed: int = 2026, quantiles: tuple[float, float] = (0.005, 0.995)) -> Spread:
    """The central range of what the choosers give on the *true* probabilities: thresholds chosen on
    a validation sample, cost measured on an independent test sample."""
    rng = np.random.default_rng(seed)
    results: dict[str, list[float]] = {"f": [], "gc": [], "ge": [], "cut": [], "sc": [], "se": []}
    for _ in range(replicates):
        chosen = _draw(rng, validation_rows)
        fair, _ = equal_fpr_policy(chosen.p, chosen.y, chosen.group, cost_fn=COST_FN, cost_fp=COST_FP,
                                   min_group_size=min_group_size, not_provided=None)
        single = single_threshold_policy(chosen.p, chosen.y, cost_fn=COST_FN, cost_fp=COST_FP)
        test = _draw(rng, test_rows)
        for key, policy in (("gc", fair), ("sc", single)):
            flagged = policy.flag(test.p, test.group)
            cost = COST_FN * (~flagged & test.y).sum() + COST_FP * (flagged & ~test.y).sum()
            results[key].append(cost / test_rows)
        results["f"].append(float(fair.target_fpr or 0.0))
        results["ge"].append(expected_cost({g: true_cut(fair.threshold_of(g)) for g in GROUPS}))
        results["cut"].append(true_cut(single.default_threshold))
        results["se"].append(expected_cost(dict.fromkeys(GROUPS, true_cut(single.default_threshold))))
    q = np.asarray(quantiles)
    return Spread(*(np.quantile(results[k], q) for k in ("f", "gc", "ge", "cut", "sc", "se")))

