"""The API's scorer runs the compiled artifact (feature SQL + model SQL) and agrees with scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.export.sql import compile_pmml, to_sql
from ml.registry import MODEL_FEATURES_RELATION, ModelBundle
from ml.scoring import FeatureScorer, ScoringEngineError
from tests.unit.ml.export.support import Exported
from warehouse.loan_book import LoanBookSchema

pytestmark = pytest.mark.slow  # fits both model families and runs the Java converter

FEATURE_SQL = (
    "select *, loan_amount / nullif(annual_income, 0) as loan_to_income, ln(1 + annual_income) as log_annual_income "
    "from application_rows"
)
"""The simulated book's derived features, written out (registered versions ship dbt's compiled macro)."""


def bundle_of(exported: Exported, schema: LoanBookSchema) -> ModelBundle:
    model_sql = to_sql(compile_pmml(exported.pmml, relation=MODEL_FEATURES_RELATION), pretty=True)
    return ModelBundle("lendguard", "1", "run", "champion", exported.pipeline, FEATURE_SQL, schema, {}, model_sql)


def applications(schema: LoanBookSchema, frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame[list(schema.input_names)], preserve_index=False)


def test_batches_of_any_range_score_as_scikit_learn(
    exported: Exported, schema: LoanBookSchema, holdout: pd.DataFrame
) -> None:
    """The plan is prepared once over an empty table: batches with very different value ranges
    (a statistics-folded plan would prune splits) all match the pipeline."""
    scorer = FeatureScorer(bundle_of(exported, schema))
    reference = FeatureScorer(bundle_of(exported, schema), engine="sklearn")
    low = holdout.nsmallest(40, "credit_score")
    high = holdout.nlargest(40, "annual_income")
    for batch in (holdout.iloc[:1], low, high, holdout.iloc[:500], low.iloc[:3]):
        table = applications(schema, batch)
        np.testing.assert_allclose(scorer.probabilities(table), reference.probabilities(table), rtol=0, atol=1e-9)


def test_reason_codes_name_the_inputs_that_raised_the_probability(
    exported: Exported, schema: LoanBookSchema, holdout: pd.DataFrame
) -> None:
    scorer = FeatureScorer(bundle_of(exported, schema))
    typical = holdout.iloc[[0]].copy()
    risky = typical.assign(credit_score=450.0, delinquencies_2y=6.0)
    table = applications(schema, pd.concat([typical, risky]))
    explained = scorer.explain(table)
    np.testing.assert_array_equal(explained.probabilities, scorer.probabilities(table))
    assert explained.probabilities[1] > explained.probabilities[0]
    reasons = [name for name, _ in explained.reasons(1)]
    assert {"credit_score", "delinquencies_2y"} & set(reasons[:2]), reasons
    for name, impact in explained.reasons(1):
        withheld = table.slice(1, 1).set_column(
            table.schema.get_field_index(name), name, pa.nulls(1, table.schema.field(name).type))
        assert impact == pytest.approx(explained.probabilities[1] - scorer.probabilities(withheld)[0], abs=1e-12)
        assert impact > 0


def test_a_version_without_model_sql_is_refused_by_the_sql_engine(
    exported: Exported, schema: LoanBookSchema
) -> None:
    bundle = ModelBundle("lendguard", "7", "run", "champion", exported.pipeline, FEATURE_SQL, schema, {})
    with pytest.raises(ScoringEngineError, match=r"version 7 has no compiled model SQL"):
        FeatureScorer(bundle)
