"""The drift UDFs (KS p-value, chi-square survival) are SciPy's own numbers (issue #6)."""

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


def test_ks_p_value_is_ks_2samp_asymp(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(6)
    cases = []
    for n, m, shift in [(50, 20_000, 0.0), (500, 80_000, 0.1), (2_000, 80_000, 0.05), (150, 30, 0.5), (5, 7, 1.0)]:
        result = stats.ks_2samp(rng.normal(shift, 1, n).round(1), rng.normal(0, 1, m).round(1), method="asymp")
        cases.append((float(result.statistic), n, m, float(result.pvalue)))
    cases.append((cases[0][0], cases[0][1], cases[0][2], cases[0][3]))  # repeated pairs are evaluated once
    got = con.execute(
        "select lg_ks_2samp_pvalue(d, n1, n2) from (select unnest($1) as d, unnest($2) as n1, unnest($3) as n2)",
        [[c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases]],
    ).fetchall()
    assert [row[0] for row in got] == pytest.approx([c[3] for c in cases], abs=1e-12, rel=0)
    assert con.execute("select lg_ks_2samp_pvalue(null, 3, 4)").fetchone()[0] is None


def test_chi_square_survival_is_scipys(con: duckdb.DuckDBPyConnection) -> None:
    x, df = [0.5, 6.65, 40.0, 300.0], [1.0, 2.0, 7.0, 14.0]
    got = con.execute(
        "select lg_chi2_sf(x, df) from (select unnest($1) as x, unnest($2) as df)", [x, df]
    ).fetchall()
    assert [row[0] for row in got] == pytest.approx(stats.chi2.sf(x, df), abs=1e-15, rel=1e-12)


def test_no_scipy_answer_is_null_not_an_error(con: duckdb.DuckDBPyConnection) -> None:
    """A KS sample of 0 rows, chi-square with 0 degrees of freedom, a rate above 1: SciPy says NaN,
    the SQL says NULL (DuckDB's default null handling refused a NULL result with an error)."""
    row = con.execute("select lg_ks_2samp_pvalue(0.5, 0, 10), lg_chi2_sf(1.0, 0.0), lg_binom_ppf(0.5, 10, 1.5), "
                      "lg_beta_ppf(0.5, 0.0, 1.0), lg_chi2_sf(3.0, 2.0)").fetchone()
    assert row is not None
    assert row[:4] == (None, None, None, None)
    assert row[4] == pytest.approx(stats.chi2.sf(3.0, 2.0), abs=1e-15)
