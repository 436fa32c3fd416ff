"""Statistics on Spark (issue #17, item 4): SciPy's functions registered on a real local Spark give
SciPy's numbers, NULL where SciPy has none, and the same as DuckDB's UDFs on the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.support.deployment import paths_for
from warehouse import dbt_udfs
from warehouse.dbt import compile_inline
from warehouse.paths import PROJECT_DIR

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]

NAN = float("nan")


def edge_and_random_cases() -> pd.DataFrame:
    """Arguments of all four functions: a random grid plus the edges the marts reach (an empty
    window n = 0, rates 0 and 1, quantile levels 0 and 1, D = 0 and 1, tiny samples, NULLs)."""
    rng = np.random.default_rng(17)
    size = 400
    random = pd.DataFrame({
        "q": rng.random(size), "n": rng.integers(1, 20_000, size).astype(float), "p": rng.random(size),
        "a": rng.integers(1, 5_000, size).astype(float), "b": rng.integers(1, 5_000, size).astype(float),
        "d": rng.random(size), "n1": rng.integers(1, 100_000, size).astype(float),
        "n2": rng.integers(1, 100_000, size).astype(float),
        "x": rng.exponential(10, size), "df": rng.integers(1, 30, size).astype(float),
    })
    edges = pd.DataFrame([
        # q,   n,     p,    a,    b,    d,    n1,      n2,      x,     df
        (0.0, 10.0, 0.3, 1.0, 1.0, 0.0, 50.0, 20_000.0, 0.0, 1.0),
        (1.0, 10.0, 0.3, 1.0, 5.0, 1.0, 5.0, 7.0, 300.0, 14.0),
        (0.5, 0.0, 0.3, 0.5, 0.5, 0.5, 1.0, 1.0, 6.65, 2.0),
        (0.0025, 2_000.0, 0.0, 3.0, 1_998.0, 1e-4, 80_000.0, 500.0, 40.0, 7.0),
        (0.9975, 2_000.0, 1.0, 1_999.0, 2.0, 0.999, 2.0, 3.0, 1e-9, 0.0),
        (1e-12, 10_000_000.0, 1e-6, 0.0, 5.0, 0.25, 0.0, 10.0, -1.0, 3.0),
        (NAN, 10.0, 0.3, NAN, 1.0, NAN, 10.0, 20.0, NAN, 2.0),
        (0.5, NAN, 0.3, 1.0, NAN, 0.2, NAN, 20.0, 3.0, NAN),
        (0.5, 10.0, NAN, 1.0, 1.0, 0.2, 10.0, NAN, 3.0, 2.0),
    ], columns=random.columns)
    return pd.concat([random, edges], ignore_index=True).reset_index(names="row")


def scipy_values(cases: pd.DataFrame) -> pd.DataFrame:
    """What SciPy says, NaN where it has no answer (NULL in SQL)."""
    with np.errstate(all="ignore"):
        m, n = np.maximum(cases.n1, cases.n2), np.minimum(cases.n1, cases.n2)
        return pd.DataFrame({
            "binom": stats.binom.ppf(cases.q, cases.n, cases.p),
            "beta": stats.beta.ppf(cases.q, cases.a, cases.b),
            "ks": [stats.kstwo.sf(d, en) for d, en in zip(cases.d, np.round(m * n / (m + n)), strict=True)],
            "chi2": stats.chi2.sf(cases.x, cases.df),
        })


QUERY = """
    select
        lg_binom_ppf(q, cast(n as bigint), p) as binom,
        lg_beta_ppf(q, a, b) as beta,
        lg_ks_2samp_pvalue(d, cast(n1 as bigint), cast(n2 as bigint)) as ks,
        lg_chi2_sf(x, df) as chi2
    from cases
    order by row
"""


def on_spark(spark: SparkSession, cases: pd.DataFrame) -> pd.DataFrame:
    rows = [tuple(None if pd.isna(value) else float(value) for value in row) for row in cases.itertuples(index=False)]
    schema = ", ".join(f"{column} double" for column in cases.columns)
    spark.createDataFrame(rows, schema).createOrReplaceTempView("cases")
    return pd.DataFrame([row.asDict() for row in spark.sql(QUERY).collect()], dtype="float64")


def on_duckdb(cases: pd.DataFrame) -> pd.DataFrame:
    with duckdb.connect() as con:
        dbt_udfs.register(con)
        con.register("cases", cases)
        return con.execute(QUERY).df().astype("float64")


def test_spark_udfs_are_scipy_and_duckdb(spark: SparkSession) -> None:
    cases = edge_and_random_cases()
    expected = scipy_values(cases)
    spark_values, duckdb_values = on_spark(spark, cases), on_duckdb(cases)
    for column in expected.columns:
        # NULL exactly where SciPy has no answer (NULL argument, n = 0 in KS, df = 0, ...).
        np.testing.assert_array_equal(spark_values[column].isna(), expected[column].isna(), err_msg=column)
        np.testing.assert_allclose(spark_values[column], expected[column], rtol=0, atol=1e-12, err_msg=column)
        np.testing.assert_array_equal(spark_values[column], duckdb_values[column], err_msg=column)
    edges = spark_values.tail(9).reset_index(drop=True)
    assert edges.binom[:5].tolist() == [-1, 10, 0, 0, 2_000]  # q = 0, q = 1, n = 0, p = 0, p = 1
    assert edges.ks[:2].tolist() == [1, 0]  # D = 0, D = 1
    assert edges.iloc[6:].isna().any(axis=1).all()  # a NULL argument somewhere in each of the last three rows


# ----- the statistics macros, rendered by dbt for each engine, on the same hand-made inputs ----------
QUERIES = {
    "ks": """
        select max({{ drift_ks_gap('production_le', 'production_at', 'n_production',
                                   'reference_le', 'reference_lt', 'n_reference') }}) as d,
            max(n_production) as n, max(n_reference) as m
        from ks_points
    """,
    "ks_p": """
        select {{ drift_ks_p_value('d', 'n', 'm') }} as p from ks_result
    """,
    "categorical": """
        with shares as (
            select *,
                {{ drift_smoothed_share('production_count', 'n_production', 'a', 'n_categories') }} as p,
                {{ drift_smoothed_share('reference_count', 'n_reference', 'a', 'n_categories') }} as q,
                cast(n_production as double) * (production_count + reference_count) / (n_production + n_reference)
                    as expected_production,
                cast(n_reference as double) * (production_count + reference_count) / (n_production + n_reference)
                    as expected_reference
            from categories cross join (select cast(0.5 as double) as a) as smoothing
        )
        select sum({{ drift_kl_term('p', 'q') }}) as kl, sum({{ drift_psi_term('p', 'q') }}) as psi,
            sum({{ drift_chi2_term('production_count', 'expected_production') }}
                + {{ drift_chi2_term('reference_count', 'expected_reference') }}) as chi2,
            sum(case when production_count + reference_count > 0 then 1 else 0 end) - 1 as dof
        from shares
    """,
    "chi2_p": """
        select {{ drift_chi2_p_value('chi2', 'dof') }} as p from categorical_result
    """,
    "intervals": """
        select case_id,
            {{ beta_ppf('alpha / 2', 'x', 'm - x + 1') }} as rate_low,
            {{ beta_ppf('1 - alpha / 2', 'x + 1', 'm - x') }} as rate_high,
            {{ binom_ppf('alpha / 2', 'n', 'rate') }} as positives_low,
            {{ binom_ppf('1 - alpha / 2', 'n', 'rate') }} as positives_high
        from intervals order by case_id
    """,
    "fpr": """
        select fairness_group,
            {{ monitoring_estimated_fpr('sum(case when flagged = 1 then 1 - probability else 0 end)',
                                        'sum(1 - probability)') }} as estimated_fpr
        from scored group by fairness_group order by fairness_group
    """,
}
SEPARATOR = "-- lendguard: next query --"
FED_BY = {"ks_p": ("ks", "ks_result"), "chi2_p": ("categorical", "categorical_result")}
"""A p-value query reads the result of another query (its name) as a relation (the second name)."""


def render(tmp_path: Path) -> dict[str, dict[str, str]]:
    """QUERIES as dbt compiles them for DuckDB (dbt-duckdb, the project's profile) and for Spark
    (dbt-spark ``method: session``, in this process: it takes the test's session, started by the
    ``spark`` fixture)."""
    from dbt.cli.main import dbtRunner  # only these tests run dbt in-process

    document = f"\n{SEPARATOR}\n".join(QUERIES.values())
    rendered = {"duckdb": compile_inline(paths_for(tmp_path / "data"), document, {})}
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "lendguard:\n  target: spark\n  outputs:\n    spark:\n"
        "      {type: spark, method: session, host: localhost, schema: lendguard_tests, threads: 1}\n")
    result = dbtRunner().invoke([
        "compile", "--inline", document, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(profiles),
        "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"), "--quiet",
    ])
    assert result.success, result.exception
    rendered["spark"] = result.result.results[0].node.compiled_code
    return {engine: dict(zip(QUERIES, sql.split(SEPARATOR), strict=True)) for engine, sql in rendered.items()}


def ks_samples() -> tuple[np.ndarray, np.ndarray]:
    """Production and reference values of one input, with ties on both sides."""
    rng = np.random.default_rng(4)
    return rng.integers(0, 40, 700) / 4, rng.integers(2, 44, 2_500) / 4


def hand_made_inputs() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(5)
    production, reference = ks_samples()
    values = np.unique(production)
    ks_points = pd.DataFrame({
        "production_le": [(production <= v).sum() for v in values],
        "production_at": [(production == v).sum() for v in values],
        "reference_le": [(reference <= v).sum() for v in values],
        "reference_lt": [(reference < v).sum() for v in values],
    }).assign(n_production=len(production), n_reference=len(reference))
    categories = pd.DataFrame({  # an unseen category and one neither side has
        "production_count": [120, 300, 55, 25, 0], "reference_count": [400, 900, 300, 0, 0],
    }).assign(n_production=500, n_reference=1_600, n_categories=5)
    intervals = pd.DataFrame([
        # case, alpha, reference x of m, window n, rate
        (0, 0.01 / 48, 350, 2_000, 2_000, 0.18), (1, 0.005, 1, 4_000, 37, 0.02), (2, 0.05, 3_999, 4_000, 200, 0.999),
        (3, 0.01, 1_000, 4_000, 10_000_000, 0.25), (4, 0.01, 500, 4_000, 1, 0.125),
    ], columns=["case_id", "alpha", "x", "m", "n", "rate"])
    probability = rng.random(3_000)
    scored = pd.DataFrame({"fairness_group": rng.choice(["g1", "g2", "g3"], 3_000), "probability": probability,
                           "flagged": (probability >= 0.3).astype(int)})
    return {"ks_points": ks_points, "categories": categories, "intervals": intervals, "scored": scored}


def run_everywhere(spark: SparkSession, queries: dict[str, dict[str, str]],
                   inputs: dict[str, pd.DataFrame]) -> dict[str, dict[str, pd.DataFrame]]:
    """Each query on both engines; the KS and chi-square results feed their p-value queries."""
    results: dict[str, dict[str, pd.DataFrame]] = {"duckdb": {}, "spark": {}}
    with duckdb.connect() as con:
        dbt_udfs.register(con)
        for name, frame in inputs.items():
            con.register(name, frame)
        for name, sql in queries["duckdb"].items():
            if name in FED_BY:
                con.register(FED_BY[name][1], results["duckdb"][FED_BY[name][0]])
            results["duckdb"][name] = con.execute(sql).df()
    for name, frame in inputs.items():
        spark.createDataFrame(frame).createOrReplaceTempView(name)
    for name, sql in queries["spark"].items():
        if name in FED_BY:
            spark.createDataFrame(results["spark"][FED_BY[name][0]]).createOrReplaceTempView(FED_BY[name][1])
        results["spark"][name] = spark.sql(sql).toPandas()
    return results


def test_statistics_macros_equal_on_duckdb_spark_and_scipy(spark: SparkSession, tmp_path: Path) -> None:
    inputs = hand_made_inputs()
    results = run_everywhere(spark, render(tmp_path), inputs)
    for name in QUERIES:
        duck, spk = results["duckdb"][name], results["spark"][name]
        assert list(duck.columns) == list(spk.columns), name
        for column in duck.columns:
            if not pd.api.types.is_numeric_dtype(duck[column]):
                assert duck[column].tolist() == spk[column].tolist(), (name, column)
            else:
                np.testing.assert_allclose(spk[column].astype(float), duck[column].astype(float),
                                           rtol=0, atol=1e-9, err_msg=f"{name}.{column}")
    # ... and both are SciPy's numbers (closed forms where SciPy has none).
    ks = stats.ks_2samp(*ks_samples(), method="asymp")
    spark_values = results["spark"]
    assert spark_values["ks"].d[0] == ks.statistic
    assert spark_values["ks_p"].p[0] == pytest.approx(ks.pvalue, abs=1e-12, rel=0)
    cells = inputs["categories"]
    p = (cells.production_count + 0.5) / (500 + 0.5 * 5)
    q = (cells.reference_count + 0.5) / (1_600 + 0.5 * 5)
    observed = cells[(cells.production_count + cells.reference_count) > 0]
    chi2 = stats.chi2_contingency(np.array([observed.production_count, observed.reference_count]), correction=False)
    categorical = spark_values["categorical"].iloc[0]
    assert categorical.kl == pytest.approx(stats.entropy(p, q), abs=1e-12, rel=0)
    assert categorical.psi == pytest.approx(float(np.sum((p - q) * np.log(p / q))), abs=1e-12, rel=0)
    assert categorical.chi2 == pytest.approx(chi2.statistic, abs=1e-9, rel=0)
    assert categorical.dof == chi2.dof
    assert spark_values["chi2_p"].p[0] == pytest.approx(chi2.pvalue, abs=1e-12, rel=0)
    iv = inputs["intervals"]
    got = spark_values["intervals"]
    low = stats.beta.ppf(iv.alpha / 2, iv.x, iv.m - iv.x + 1)
    high = stats.beta.ppf(1 - iv.alpha / 2, iv.x + 1, iv.m - iv.x)
    np.testing.assert_allclose(got.rate_low, low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.rate_high, high, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.positives_low, stats.binom.ppf(iv.alpha / 2, iv.n, iv.rate))
    np.testing.assert_array_equal(got.positives_high, stats.binom.ppf(1 - iv.alpha / 2, iv.n, iv.rate))
    scored = inputs["scored"]
    expected_fpr = (scored.flagged * (1 - scored.probability)).groupby(scored.fairness_group).sum() / (
        1 - scored.probability).groupby(scored.fairness_group).sum()
    np.testing.assert_allclose(spark_values["fpr"].estimated_fpr, expected_fpr.to_numpy(), rtol=0, atol=1e-12)
