"""Monotone risk on the simulator's book: declared directions swept, landed and gated; zero income.

Issue #15, finding 4: risk that rose with the credit score in places, and an income of 0 scored as
a lower risk than an income of 1 (the ratio feature divided by NULLIF(income, 0), so a zero income
became a missing ratio, filled with the training median).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ml import registry
from ml.delivery.gate import run_gate
from ml.monotone import typical_application
from ml.scoring import FeatureScorer
from ml.train import load_split
from warehouse import datasets
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

pytestmark = pytest.mark.slow


def test_zero_and_near_zero_income_score_no_lower_risk_than_a_small_income(trained_deployment: Paths) -> None:
    bundle = registry.load_bundle(trained_deployment, "champion")
    typical = typical_application(load_split(trained_deployment, bundle.loan_book, "train"), bundle)
    incomes = [0.0, 0.01, 0.5, 1.0, 10.0, 100.0, 1_000.0, 6_000.0, 20_000.0]
    rows = [{**typical, "annual_income": income} for income in incomes]
    schema = pa.schema([pa.field(f.name, pa.float64()) for f in bundle.loan_book.numeric_features]
                       + [pa.field(f.name, pa.string()) for f in bundle.loan_book.categorical_features])
    for engine in ("sql", "sklearn"):  # both of the API's scoring engines
        risk = FeatureScorer(bundle, engine=engine).probabilities(pa.Table.from_pylist(rows, schema=schema))
        assert (np.diff(risk) <= 1e-12).all(), dict(zip(incomes, risk, strict=True))


def test_every_declared_input_is_swept_and_gated(trained_deployment: Paths) -> None:
    bundle = registry.load_bundle(trained_deployment, "champion")
    declared = {f.name for f in bundle.loan_book.numeric_features if f.monotone}
    with connect_snapshot(trained_deployment) as con:
        swept = con.execute("select distinct feature from eval_monotone_sweeps where model_version = ?",
                            [bundle.version]).df()
        checks = con.execute("select subject, measured_value, passed from eval_gate_checks "
                             "where check_name = 'monotone_risk' and model_version = ?", [bundle.version]).df()
    assert set(swept["feature"]) == declared
    assert len(checks) == len(declared)
    assert checks["passed"].all(), checks


def test_the_gate_fails_a_version_whose_risk_turns_against_a_declared_direction(trained_copy: Paths) -> None:
    version = registry.alias_version(trained_copy, "champion")
    assert version is not None
    with connect_snapshot(trained_copy) as con:
        sweep = con.execute("select * from eval_monotone_sweeps where model_version = ? and feature = 'credit_score' "
                            "order by value", [version]).df()
    # One more grid point, just above the middle one, where a better score carries more risk.
    middle = sweep.iloc[[len(sweep) // 2]]
    reversal = middle.assign(value=middle["value"] + 0.5, probability=middle["probability"] + 0.01)
    datasets.land_rows(trained_copy, datasets.MONOTONE_SWEEPS, reversal)
    result = run_gate(trained_copy, version)
    assert not result.passed
    failures = result.failures()
    assert failures[["check_name", "subject"]].to_dict("records") == [
        {"check_name": "monotone_risk", "subject": "credit_score (decreasing in risk)"}]
    assert failures["measured_value"].iloc[0] == pytest.approx(0.01, abs=1e-3)
