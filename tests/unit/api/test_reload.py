"""Hot reload's parts on small real models: the contract rule, the slot's drain, the registry probe."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from api.log_writer import PredictionLogWriter
from api.reload import (
    ModelSlot,
    RegistryUnavailableError,
    ReloadOutcome,
    contract_change,
    registry_alias_version,
    reload_model,
    start_model,
)
from api.schemas import build_request_struct
from api.service import Receipt
from ml.candidates import named
from ml.export.sql import to_sql
from ml.registry import ModelBundle
from ml.scoring import FeatureScorer
from ml.train import build_pipeline, export_model
from tests.support.servers import free_port
from warehouse.landing import PREDICTION_LOG
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.settings import ApiSettings
from warehouse.simulator import simulate_traffic

BOOK = simulated_schema()
REQUEST = build_request_struct(BOOK)
FEATURE_SQL = (
    "select *, loan_amount / nullif(annual_income, 0) as loan_to_income, ln(1 + annual_income) as log_annual_income "
    "from application_rows"
)
"""The simulated book's derived features, written out (the registered versions ship dbt's compiled macro)."""


@pytest.fixture(scope="module")
def traffic() -> pa.Table:
    return simulate_traffic("stable", 400, seed=5)


def small_bundle(traffic: pa.Table, version: str, threshold: float) -> ModelBundle:
    """A real (tiny) version: logistic regression fitted on simulated applications."""
    unfitted = ModelBundle("lendguard", version, f"run-{version}", "champion", None, FEATURE_SQL, BOOK,
                           {"threshold": threshold})
    scorer = FeatureScorer(unfitted, engine="sklearn")  # only its features: no model yet
    features = scorer.features(traffic.select(list(BOOK.input_names)))
    scorer.close()
    labels = [int(status in BOOK.outcome_positive) for status in traffic.column(BOOK.outcome_column).to_pylist()]
    pipeline = build_pipeline(BOOK, named("logreg_c1")).fit(features, labels)
    with tempfile.TemporaryDirectory() as folder:
        model_sql = to_sql(export_model(pipeline, BOOK, Path(folder)))
    return dataclasses.replace(unfitted, pipeline=pipeline, model_sql=model_sql)


def test_the_same_contract_may_be_swapped_another_needs_a_restart(traffic: pa.Table) -> None:
    served, same = small_bundle(traffic, "1", 0.3), small_bundle(traffic, "2", 0.4)
    assert contract_change(served, same) is None

    wider = dataclasses.replace(BOOK.numeric_features[0], max=20_000_000)
    other_book = dataclasses.replace(BOOK, numeric_features=(wider, *BOOK.numeric_features[1:]))
    other = dataclasses.replace(same, version="3", loan_book=other_book)
    problem = contract_change(served, other)
    assert problem is not None
    assert "version 3" in problem
    assert "version 1" in problem
    assert BOOK.fingerprint() in problem
    assert other_book.fingerprint() in problem


def test_a_request_keeps_its_model_until_it_is_answered_then_the_old_model_closes(
    traffic: pa.Table, tmp_path: Path
) -> None:
    old_bundle, new_bundle = small_bundle(traffic, "1", 0.3), small_bundle(traffic, "2", 0.4)
    request = REQUEST(**traffic.select(list(BOOK.input_names)).slice(0, 1).to_pylist()[0], ethnicity="Asian")

    async def main() -> None:
        writer = PredictionLogWriter.for_landing(tmp_path, PREDICTION_LOG, prediction_log_schema(BOOK), writer_id="t")
        await writer.start()
        slot = ModelSlot()
        old = await start_model(old_bundle, writer, ApiSettings())
        assert slot.install(old) is None, "nothing to retire at first"
        async with slot.lease() as in_flight:
            retiring = slot.install(await start_model(new_bundle, writer, ApiSettings()))
            assert retiring is not None
            async with slot.lease() as arriving:
                assert arriving is not None
                assert arriving.bundle.version == "2", "a request arriving after the swap gets the new model"
            await asyncio.sleep(0.05)
            assert not retiring.done(), "the old model waits for the request that leased it"
            assert in_flight is not None
            answer = await in_flight.score(request, Receipt.now("/v1/score"))
            assert (answer.model_version, answer.threshold) == ("1", 0.3), "answered by the model it started with"
        await asyncio.wait_for(retiring, 5)
        assert not old.service.running
        with pytest.raises(duckdb.ConnectionException):
            old.scorer.probabilities(traffic.select(list(BOOK.input_names)).slice(0, 1))
        assert slot.bundle is new_bundle
        await slot.close()
        assert slot.bundle is None
        await writer.stop()

    asyncio.run(main())


def test_an_unreachable_registry_is_not_an_unset_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    base = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path)})
    down = dataclasses.replace(base, tracking_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryUnavailableError):
        registry_alias_version(down, "champion")

    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(RegistryUnavailableError, match="does not exist"):
        registry_alias_version(dataclasses.replace(base, tracking_uri=f"sqlite:///{missing}"), "champion")
    assert not missing.exists(), "asking never creates an empty registry"


def test_reload_without_a_served_model_says_so() -> None:
    result = asyncio.run(reload_model(None))
    assert result.outcome is ReloadOutcome.NOT_SERVING
    assert result.served_version is None
