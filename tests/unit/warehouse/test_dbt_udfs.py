"""The SciPy functions registered on dbt's connections agree with SciPy (to 1e-9: they are SciPy)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from scipy import stats

from warehouse import dbt_udfs


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    dbt_udfs.register(connection)
    return connection


def grid(size: int = 5_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = np.concatenate([rng.random(size), [0.0, 1.0, 1e-12, 1 - 1e-12, 0.5]])
    n = np.concatenate([rng.integers(1, 20_000, size), [1, 1, 5, 5, 10_000_000]])
    p = np.concatenate([rng.random(size), [0.0, 1.0, 0.5, 0.5, 1e-6]])
    return q, n, p


def test_binomial_quantiles_equal_scipys(con: duckdb.DuckDBPyConnection) -> None:
    q, n, p = grid()
    con.execute("create table grid as select * from (select unnest($1) as q, unnest($2) as n, unnest($3) as p)",
                [q.tolist(), n.tolist(), p.tolist()])
    got = con.execute("select lg_binom_ppf(q, n, p) as k from grid").df()
    np.testing.assert_allclose(got.k, stats.binom.ppf(q, n, p), rtol=0, atol=1e-9)


def test_the_two_quantiles_are_scipys_interval(con: duckdb.DuckDBPyConnection) -> None:
    """How mon_positive_rates uses them: binom.interval(1 - a, n, p) = (ppf(a/2), ppf(1 - a/2))."""
    rows = [(0.005, 200, 0.2), (0.01, 300, 0.35), (0.01 / 48, 2_000, 0.18), (0.05, 37, 0.02)]
    for alpha, n, p in rows:
        low, high = con.execute("select lg_binom_ppf($1 / 2, $2, $3), lg_binom_ppf(1 - $1 / 2, $2, $3)",
                                [alpha, n, p]).fetchone()
        assert (low, high) == pytest.approx(stats.binom.interval(1 - alpha, n, p), abs=1e-9)


def test_beta_quantiles_equal_scipys(con: duckdb.DuckDBPyConnection) -> None:
    """The Clopper–Pearson ends mon_positive_rates widens its intervals with."""
    rng = np.random.default_rng(5)
    q, a, b = rng.random(2_000), rng.integers(1, 5_000, 2_000), rng.integers(1, 5_000, 2_000)
    got = con.execute("select lg_beta_ppf(unnest($1), unnest($2), unnest($3)) as x",
                      [q.tolist(), a.tolist(), b.tolist()]).df().x
    np.testing.assert_allclose(got, stats.beta.ppf(q, a, b), rtol=0, atol=1e-9)


def test_null_in_null_out(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("select lg_binom_ppf(null, 10, 0.5), lg_binom_ppf(0.5, 10, null)").fetchone() == (None, None)
