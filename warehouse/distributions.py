"""SciPy's distribution functions the monitoring marts call, once for every engine.

DuckDB and Spark SQL have no inverse binomial or beta distribution, no Kolmogorov distribution and
no chi-square survival function, and the marts must agree with SciPy to 1e-9. So each engine
registers these functions as vectorised UDFs under the same SQL names (DuckDB:
``warehouse.dbt_udfs``, Arrow UDFs; Spark: ``warehouse.spark_session``, pandas UDFs), and both
call the bodies here: one implementation, so the engines cannot drift apart.

Every function takes and returns float64 arrays of one length. A NULL argument arrives as NaN, and
NaN comes back wherever SciPy's answer is undefined (a NULL argument, a probability outside
[0, 1], a sample size of 0); the engine wrappers turn it into SQL NULL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def _stats() -> ModuleType:
    """``scipy.stats``, imported on first use (later calls find it in ``sys.modules``): the import
    takes about a second, and a dbt build or a Spark worker first needs it mid-run."""
    return importlib.import_module("scipy.stats")  # typed as a module; scipy itself has no type information


def binom_ppf(q: Floats, n: Floats, p: Floats) -> Floats:
    """``scipy.stats.binom.ppf(q, n, p)``: the smallest count k with P(X <= k) >= q, X ~ Binomial(n, p)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(_stats().binom.ppf(q, n, p), dtype=np.float64)


def beta_ppf(q: Floats, a: Floats, b: Floats) -> Floats:
    """``scipy.stats.beta.ppf(q, a, b)``: the ends of a Clopper–Pearson interval."""
    with np.errstate(invalid="ignore"):
        return np.asarray(_stats().beta.ppf(q, a, b), dtype=np.float64)


def ks_2samp_pvalue(d: Floats, n1: Floats, n2: Floats) -> Floats:
    """Two-sided p-value of ``scipy.stats.ks_2samp(..., method='asymp')`` for statistic ``d``.

    SciPy's own formula (``_stats_py.ks_2samp``): ``kstwo.sf(d, round(m*n / (m+n)))`` with ``m >= n``
    the sample sizes. ``method='auto'`` is the same whenever either sample exceeds 10,000 rows.
    """
    m, n = np.maximum(n1, n2), np.minimum(n1, n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = np.column_stack([d, np.round(m * n / (m + n))])
        # SciPy evaluates kstwo element by element (milliseconds each): each distinct pair once.
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        return np.asarray(_stats().kstwo.sf(unique[:, 0], unique[:, 1]), dtype=np.float64)[inverse.reshape(-1)]


def chi2_sf(x: Floats, df: Floats) -> Floats:
    """``scipy.stats.chi2.sf(x, df)`` (the p-value of a chi-square statistic)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(_stats().chi2.sf(x, df), dtype=np.float64)


@dataclass(frozen=True)
class SqlFunction:
    """One function as SQL sees it: its name (the same on every engine) and which arguments are counts."""

    name: str
    body: Callable[..., Floats]
    counts: tuple[bool, ...]
    """Per argument: a count (BIGINT in SQL) rather than a DOUBLE."""


FUNCTIONS: tuple[SqlFunction, ...] = (
    SqlFunction("lg_binom_ppf", binom_ppf, (False, True, False)),
    SqlFunction("lg_beta_ppf", beta_ppf, (False, False, False)),
    SqlFunction("lg_ks_2samp_pvalue", ks_2samp_pvalue, (False, True, True)),
    SqlFunction("lg_chi2_sf", chi2_sf, (False, False)),
)
"""Every function a macro calls (macros/binomial.sql, macros/drift.sql); a new one goes here only then."""
