"""Batch scoring on Spark: the champion's query as sqlglot writes it for Spark (what score_loans runs
there, ml.delivery.deploy_prod) scores as scikit-learn does, to 1e-9, for the logistic model and a
tree model; and the macros it is installed as give dbt each engine's query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.delivery.deploy_prod import CHAMPION_SQL_DIALECTS, champion_macros
from ml.export.pmml import export_pmml
from ml.export.sql import compile_pmml, to_sql
from ml.train import build_pipeline
from tests.support.spark import start_local_spark, stop_spark
from tests.unit.ml.export.support import MODELS, RELATION, edge_rows, loan_features
from warehouse.loan_book import LoanBookSchema, simulated_schema

pytestmark = [pytest.mark.spark, pytest.mark.slow]

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """lendguard's own local session, the one dbt builds ``score_loans`` in (its settings: ANSI mode
    as Spark 4 has it by default, UTC), not a session of this test's making."""
    stop_spark()
    session = start_local_spark(tmp_path_factory.mktemp("spark-model-sql"))
    yield session
    stop_spark()


@pytest.fixture(scope="module")
def schema() -> LoanBookSchema:
    return simulated_schema()


@pytest.fixture(scope="module")
def rows(schema: LoanBookSchema) -> pd.DataFrame:
    """Held-out loans and the edge rows (missing, unseen and extreme values)."""
    holdout = loan_features(schema, 1_000, seed=99)
    edges = edge_rows(schema, holdout.iloc[0])
    return pd.concat([holdout, edges], ignore_index=True)


def _spark_schema(schema: LoanBookSchema) -> Any:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    return StructType([StructField("loan_id", StringType()), *(
        StructField(name, DoubleType() if name in schema.model_numeric else StringType())
        for name in schema.feature_names)])


def _records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as plain Python values, a missing one as None (Spark's null), built without pandas' own
    conversion (pyspark does not support pandas 3 fully)."""
    return [tuple(None if isinstance(v, float) and np.isnan(v) else (float(v) if isinstance(v, (int, float, np.number))
                                                                        else v) for v in row)
            for row in frame.itertuples(index=False)]


@pytest.mark.parametrize("name", ["logistic_regression", "gradient_boosting"])
def test_the_spark_query_scores_as_scikit_learn(
    name: str, spark: Any, schema: LoanBookSchema, rows: pd.DataFrame, tmp_path: Any
) -> None:
    training = loan_features(schema, 5_000, seed=3)
    pipeline = build_pipeline(schema, MODELS[name])
    pipeline.fit(training[list(schema.feature_names)], training["defaulted"])
    pmml = export_pmml(pipeline, schema.model_numeric, schema.model_categorical, tmp_path / "model.pmml")
    query = compile_pmml(pmml, relation=RELATION, keep=["loan_id"])
    frame = rows[["loan_id", *schema.feature_names]]
    spark.createDataFrame(_records(frame), _spark_schema(schema)).createOrReplaceTempView(RELATION)
    scored = spark.sql(to_sql(query, "spark")).toPandas().set_index("loan_id")
    on_spark = scored.loc[frame["loan_id"], "probability"].to_numpy(dtype=float)
    expected = pipeline.predict_proba(frame[list(schema.feature_names)])[:, 1]
    assert np.max(np.abs(on_spark - expected)) <= TOLERANCE


def test_the_champion_macros_hold_each_engines_query_quoted_raw() -> None:
    text = champion_macros("12", {"duckdb": "select '{{ not jinja }}' as x", "spark": "select `x` from y"})
    assert [f"{dialect}__champion_model_query" in text for dialect in CHAMPION_SQL_DIALECTS] == [True, True]
    assert "{% raw %}select '{{ not jinja }}' as x{% endraw %}" in text
    assert "'version': '12'" in text
