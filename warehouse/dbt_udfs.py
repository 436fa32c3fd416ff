"""Statistical functions DuckDB lacks, registered on every dbt connection (a dbt-duckdb plugin).

DuckDB has no inverse binomial (or normal) distribution function, and the monitoring marts must
agree with SciPy to 1e-9. So the marts call SciPy itself: each function here is registered as a
vectorised (Arrow) UDF on every connection dbt opens (``profiles.yml``, ``plugins:``), and the
models call it only through adapter-dispatched macros (``macros/binomial.sql``,
``macros/drift.sql``), so another warehouse can supply its own implementation.

Registered functions (all return DOUBLE; a NULL argument gives NULL):

- ``lg_binom_ppf(q DOUBLE, n BIGINT, p DOUBLE)``: ``scipy.stats.binom.ppf(q, n, p)``, the smallest
  count k with P(X <= k) >= q for X ~ Binomial(n, p);
- ``lg_beta_ppf(q DOUBLE, a DOUBLE, b DOUBLE)``: ``scipy.stats.beta.ppf(q, a, b)`` (the ends of
  the Clopper–Pearson interval);
- ``lg_ks_2samp_pvalue(d DOUBLE, n1 BIGINT, n2 BIGINT)``: the two-sided p-value
  ``scipy.stats.ks_2samp(..., method='asymp')`` gives a statistic ``d`` at sample sizes n1, n2;
- ``lg_chi2_sf(x DOUBLE, df DOUBLE)``: ``scipy.stats.chi2.sf(x, df)``.

A new function goes into ``FUNCTIONS`` (and this list) only when a macro calls it; the readers of
the published snapshot never need these (the marts are tables).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.func import ARROW
from duckdb.sqltypes import BIGINT, DOUBLE, DuckDBPyType


def _stats() -> ModuleType:
    """``scipy.stats``, imported on first use (later calls find it in ``sys.modules``): the import
    takes about a second, and every dbt invocation loads this plugin before its first model, on the
    one thread that is busy then; a build first calls a UDF mid-run, while the other thread has work."""
    return importlib.import_module("scipy.stats")  # typed as a module; scipy itself has no type information


def _floats(array: pa.Array) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)


def binom_ppf(q: pa.Array, n: pa.Array, p: pa.Array) -> pa.Array:
    """``scipy.stats.binom.ppf`` over Arrow columns."""
    return pa.array(_stats().binom.ppf(_floats(q), _floats(n), _floats(p)), type=pa.float64())


def beta_ppf(q: pa.Array, a: pa.Array, b: pa.Array) -> pa.Array:
    """``scipy.stats.beta.ppf`` over Arrow columns (the Clopper–Pearson interval's ends)."""
    return pa.array(_stats().beta.ppf(_floats(q), _floats(a), _floats(b)), type=pa.float64())


def ks_2samp_pvalue(d: pa.Array, n1: pa.Array, n2: pa.Array) -> pa.Array:
    """Two-sided p-value of ``scipy.stats.ks_2samp(..., method='asymp')`` for statistic ``d``.

    SciPy's own formula (``_stats_py.ks_2samp``): ``kstwo.sf(d, round(m*n / (m+n)))`` with ``m >= n``
    the sample sizes. ``method='auto'`` is the same whenever either sample exceeds 10,000 rows.
    """
    d_, a, b = _floats(d), _floats(n1), _floats(n2)
    m, n = np.maximum(a, b), np.minimum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = np.column_stack([d_, np.round(m * n / (m + n))])
        # SciPy evaluates kstwo element by element (milliseconds each): each distinct pair once.
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        values = _stats().kstwo.sf(unique[:, 0], unique[:, 1])[inverse.reshape(-1)]
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def chi2_sf(x: pa.Array, df: pa.Array) -> pa.Array:
    """``scipy.stats.chi2.sf(x, df)`` (the p-value of a chi-square statistic)."""
    with np.errstate(invalid="ignore"):
        values = _stats().chi2.sf(_floats(x), _floats(df))
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


@dataclass(frozen=True)
class Udf:
    name: str
    function: Callable[..., pa.Array]
    parameters: tuple[DuckDBPyType, ...]
    returns: DuckDBPyType


FUNCTIONS: tuple[Udf, ...] = (
    Udf("lg_binom_ppf", binom_ppf, (DOUBLE, BIGINT, DOUBLE), DOUBLE),
    Udf("lg_beta_ppf", beta_ppf, (DOUBLE, DOUBLE, DOUBLE), DOUBLE),
    Udf("lg_ks_2samp_pvalue", ks_2samp_pvalue, (DOUBLE, BIGINT, BIGINT), DOUBLE),
    Udf("lg_chi2_sf", chi2_sf, (DOUBLE, DOUBLE), DOUBLE),
)


def register(conn: DuckDBPyConnection) -> None:
    """Register every function of ``FUNCTIONS`` on ``conn`` (also used by tests and notebooks)."""
    for udf in FUNCTIONS:
        conn.create_function(
            udf.name, udf.function, list(udf.parameters), udf.returns, type=ARROW, side_effects=False,
        )


class Plugin(BasePlugin):
    """dbt-duckdb calls ``configure_connection`` on every connection it opens."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register(conn)

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """No settings."""
