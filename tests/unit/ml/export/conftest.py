"""Fitted pipelines of both model families, their PMML and compiled SQL, made once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml.export.pmml import export_pmml
from ml.export.sql import compile_pmml
from ml.train import build_pipeline
from tests.unit.ml.export.support import MODELS, RELATION, Exported, loan_features
from warehouse.loan_book import LoanBookSchema, simulated_schema


@pytest.fixture(scope="session")
def schema() -> LoanBookSchema:
    return simulated_schema()


@pytest.fixture(scope="session")
def training(schema: LoanBookSchema) -> pd.DataFrame:
    return loan_features(schema, 20_000, seed=3)


@pytest.fixture(scope="session")
def holdout(schema: LoanBookSchema) -> pd.DataFrame:
    return loan_features(schema, 2_000, seed=99)


@pytest.fixture(scope="session")
def export_model(
    schema: LoanBookSchema,
    training: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], Exported]:
    """Fit, export and compile a model family once; later calls return the same artifacts."""
    cache: dict[str, Exported] = {}
    folder = tmp_path_factory.mktemp("pmml")

    def export(name: str) -> Exported:
        if name not in cache:
            pipeline = build_pipeline(schema, MODELS[name])
            pipeline.fit(training[list(schema.feature_names)], training["defaulted"])
            path = export_pmml(pipeline, schema.model_numeric, schema.model_categorical, folder / f"{name}.pmml")
            query = compile_pmml(path, relation=RELATION, keep=["loan_id"])
            cache[name] = Exported(name, pipeline, path, query)
        return cache[name]

    return export


@pytest.fixture(scope="session", params=list(MODELS))
def exported(request: pytest.FixtureRequest, export_model: Callable[[str], Exported]) -> Exported:
    return export_model(request.param)


@pytest.fixture(scope="session")
def boosted(export_model: Callable[[str], Exported]) -> Exported:
    return export_model("gradient_boosting")


@pytest.fixture(scope="session")
def pmml_evaluator() -> Callable[[Path], Any]:
    """JPMML's evaluator for a PMML file (JVM through JPype, started once per session)."""
    jpmml_evaluator = pytest.importorskip("jpmml_evaluator")
    cache: dict[Path, Any] = {}

    def evaluator(path: Path) -> Any:
        if path not in cache:
            cache[path] = jpmml_evaluator.make_evaluator(str(path), backend="jpype")
        return cache[path]

    return evaluator
