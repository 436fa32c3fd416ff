"""Parity: the compiled SQL (run in DuckDB) scores as scikit-learn and the PMML evaluator do, to 1e-9."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from ml.export.sql import to_sql
from tests.unit.ml.export.support import RELATION, Exported, ThresholdRows, edge_rows, score_sql, threshold_rows
from warehouse.loan_book import LoanBookSchema

TOLERANCE = 1e-9

pytestmark = pytest.mark.slow  # fits both model families and runs the Java converter


def sklearn_scores(exported: Exported, schema: LoanBookSchema, frame: pd.DataFrame) -> np.ndarray:
    return exported.pipeline.predict_proba(frame[list(schema.feature_names)])[:, 1]


@pytest.fixture(scope="module")
def edges(schema: LoanBookSchema, holdout: pd.DataFrame) -> pd.DataFrame:
    return edge_rows(schema, holdout.iloc[0])


@pytest.fixture(scope="module")
def on_thresholds(boosted: Exported, schema: LoanBookSchema, holdout: pd.DataFrame) -> ThresholdRows:
    return threshold_rows(boosted.pipeline, schema, holdout.iloc[:300])


def test_held_out_rows_match_scikit_learn(exported: Exported, schema: LoanBookSchema, holdout: pd.DataFrame) -> None:
    sql = score_sql(exported.query, holdout)
    assert np.abs(sql - sklearn_scores(exported, schema, holdout)).max() <= TOLERANCE


def test_edge_rows_match_scikit_learn(exported: Exported, schema: LoanBookSchema, edges: pd.DataFrame) -> None:
    sql = score_sql(exported.query, edges)
    assert not np.isnan(sql).any()
    assert np.abs(sql - sklearn_scores(exported, schema, edges)).max() <= TOLERANCE


def test_rows_exactly_on_split_thresholds_take_the_same_branch(
    boosted: Exported,
    schema: LoanBookSchema,
    on_thresholds: ThresholdRows,
) -> None:
    # Most splits can be hit exactly from a raw value (not all: where the scale is below 1,
    # neighbouring raw doubles can step over the scaled threshold).
    assert on_thresholds.hit > 0.5 * on_thresholds.splits
    rows = on_thresholds.rows
    sql = score_sql(boosted.query, rows)
    assert np.abs(sql - sklearn_scores(boosted, schema, rows)).max() <= TOLERANCE


def test_threshold_rows_would_catch_a_wrong_comparison(
    boosted: Exported,
    schema: LoanBookSchema,
    on_thresholds: ThresholdRows,
) -> None:
    """The rows are sharp: compiling ``<=`` as ``<`` breaks every row on a threshold (no branch
    is true there, so PMML's returnNullPrediction gives NULL)."""
    wrong = boosted.query.transform(
        lambda node: (
            exp.LT(this=node.this.copy(), expression=node.expression.copy()) if isinstance(node, exp.LTE) else node
        ),
    )
    rows = on_thresholds.rows
    difference = np.abs(score_sql(wrong, rows) - sklearn_scores(boosted, schema, rows))
    assert not (difference[0::2] <= TOLERANCE).any()


def test_nan_doubles_count_as_missing(exported: Exported, edges: pd.DataFrame) -> None:
    """A NaN stored as a double (not NULL) is imputed too, as scikit-learn's imputer does."""
    missing = edges[edges["annual_income"].isna()].copy()
    query = to_sql(exported.query).replace(f"FROM {RELATION}", "FROM nan_rows")
    with duckdb.connect() as con:
        con.register("missing_rows", missing)
        con.execute(
            "create table nan_rows as select * replace "
            "(coalesce(annual_income, 'NaN'::double) as annual_income) from missing_rows"
        )
        assert con.execute("select bool_and(isnan(annual_income)) from nan_rows").fetchone() == (True,)
        scored = con.execute(query).df().set_index("loan_id").loc[missing["loan_id"], "probability"]
    assert np.abs(scored.to_numpy() - score_sql(exported.query, missing)).max() == 0.0


@pytest.mark.parametrize("dialect", ["spark", "postgres"])
def test_other_dialects_keep_the_scores(exported: Exported, holdout: pd.DataFrame, dialect: str) -> None:
    """Rendered for Spark or PostgreSQL, parsed back and run: the same numbers."""
    text = to_sql(exported.query, dialect)
    back = sqlglot.parse_one(text, read=dialect)
    rows = holdout.iloc[:200]
    assert np.abs(score_sql(exported.query, rows, to_sql(back)) - score_sql(exported.query, rows)).max() == 0.0


def test_sql_matches_the_pmml_evaluator(
    exported: Exported,
    schema: LoanBookSchema,
    holdout: pd.DataFrame,
    edges: pd.DataFrame,
    on_thresholds: ThresholdRows,
    pmml_evaluator: Callable[[Path], Any],
) -> None:
    rows = pd.concat([holdout, edges, on_thresholds.rows], ignore_index=True)
    evaluated = pmml_evaluator(exported.pmml).evaluateAll(rows[list(schema.feature_names)])
    assert "errors" not in evaluated or evaluated["errors"].isna().all()
    pmml = evaluated["probability(1)"].to_numpy(dtype=float)
    assert np.abs(score_sql(exported.query, rows) - pmml).max() <= TOLERANCE
    assert np.abs(sklearn_scores(exported, schema, rows) - pmml).max() <= TOLERANCE
