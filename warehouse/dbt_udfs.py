"""Statistical functions DuckDB lacks, registered on every dbt connection (a dbt-duckdb plugin).

DuckDB has no inverse binomial (or normal) distribution function, and the monitoring marts must
agree with SciPy to 1e-9. So the marts call SciPy itself: each function of
``warehouse.distributions.FUNCTIONS`` is registered as a vectorised (Arrow) UDF on every connection
dbt opens (``profiles.yml``, ``plugins:``), and the models call it only through adapter-dispatched
macros (``macros/binomial.sql``, ``macros/drift.sql``). Spark registers the same bodies under the
same names (``warehouse.spark_session``).

Registered functions (all return DOUBLE; a NULL argument, or an argument SciPy has no answer for,
gives NULL):

- ``lg_binom_ppf(q DOUBLE, n BIGINT, p DOUBLE)``: ``scipy.stats.binom.ppf(q, n, p)``, the smallest
  count k with P(X <= k) >= q for X ~ Binomial(n, p);
- ``lg_beta_ppf(q DOUBLE, a DOUBLE, b DOUBLE)``: ``scipy.stats.beta.ppf(q, a, b)`` (the ends of
  the Clopper–Pearson interval);
- ``lg_ks_2samp_pvalue(d DOUBLE, n1 BIGINT, n2 BIGINT)``: the two-sided p-value
  ``scipy.stats.ks_2samp(..., method='asymp')`` gives a statistic ``d`` at sample sizes n1, n2;
- ``lg_chi2_sf(x DOUBLE, df DOUBLE)``: ``scipy.stats.chi2.sf(x, df)``.

The readers of the published snapshot never need these (the marts are tables).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.func import ARROW, SPECIAL
from duckdb.sqltypes import BIGINT, DOUBLE

from warehouse.distributions import FUNCTIONS, Floats, SqlFunction


def _floats(array: pa.Array) -> Floats:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)


def arrow_udf(function: SqlFunction) -> Callable[..., pa.Array]:
    """``function``'s body over Arrow columns, NaN (undefined) returned as NULL."""
    def udf(*columns: pa.Array) -> pa.Array:
        values = function.body(*(_floats(column) for column in columns))
        return pa.array(values, type=pa.float64(), mask=np.isnan(values))

    udf.__name__ = function.name
    # DuckDB reads the arity from the signature.
    udf.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(function.counts))])
    return udf


def register(conn: DuckDBPyConnection) -> None:
    """Register every function of ``FUNCTIONS`` on ``conn`` (also used by tests and notebooks).

    NULLs reach the bodies as NaN (``special``): DuckDB's default would refuse the NULL a body
    returns for arguments SciPy has no answer for (a KS sample of 0 rows, chi-square with 0 degrees).
    """
    for function in FUNCTIONS:
        conn.create_function(
            function.name, arrow_udf(function), [BIGINT if count else DOUBLE for count in function.counts], DOUBLE,
            type=ARROW, null_handling=SPECIAL, side_effects=False,
        )


class Plugin(BasePlugin):
    """dbt-duckdb calls ``configure_connection`` on every connection it opens."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register(conn)

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """No settings."""
