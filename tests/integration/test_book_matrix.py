"""Any declared loan book trains, serves and monitors (issue #15, finding 1 and Must have 1).

Three small books, one pipeline each, cover the shapes a lender may declare: only numeric features
(one of them: a one-feature book), only categorical features, and numeric features with a derived
one; every book has a group of a few rows too. Each goes the whole way with real components:
``lendguard import`` → ``build`` → ``pipeline run`` (its dev API and dev tests included) → approval
→ the scoring API (Litestar test client, both scoring engines) → ``lendguard monitor``.

The books are as small as the gate allows: it measures the FPR gap only over groups with at least
``fpr_gap_min_repaid`` (300) repaid test loans and holds calibration error to 0.03 on the test split,
so the largest group needs a few thousand loans. Only one logistic candidate is trained
(``--candidates``): every family goes through the same path in ``test_model_families.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.routes.score import SCORE_PATH
from lendguard import pipeline
from lendguard.cli import cli
from lendguard.monitor import FAILED, run_monitor
from ml import registry
from ml.scoring import FeatureScorer
from tests.support.deployment import deployment_env, paths_for
from tests.support.servers import free_port
from warehouse.build import build
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import get_paths
from warehouse.publish import connect_snapshot
from warehouse.settings import ApiSettings, get_settings, load_settings

pytestmark = pytest.mark.slow

LOANS = 16_000
GROUPS = ("A", "B", "C", "D")
GROUP_SHARES = (0.6, 0.36, 0.0396, 0.0004)
"""D is the group with very few rows: about six loans, fewer than any threshold of its own needs."""
CANDIDATE = "logreg_c1"
REQUESTS = 24
NO_LATENCY_LIMIT_MS = 60_000.0
"""The dev stage's p99 limit here: latency on cores other tests share says nothing (bench/ has it)."""

Columns = Callable[[np.random.Generator, int], tuple[dict[str, Any], np.ndarray]]
"""A book's feature columns and the log-odds of default they imply."""


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str
    features: dict[str, Any]
    """The contract's feature declarations (numeric, categorical, derived)."""
    columns: Columns


def _one_numeric(rng: np.random.Generator, n: int) -> tuple[dict[str, Any], np.ndarray]:
    score = rng.uniform(0, 100, n).round(1)
    return {"score": score}, 1.5 - score / 20


def _categorical(rng: np.random.Generator, n: int) -> tuple[dict[str, Any], np.ndarray]:
    channel, region, product = rng.choice(6, n), rng.choice(5, n), rng.choice(4, n)
    logit = -1.6 + 0.5 * channel - 0.4 * region + np.array([0.0, 1.2, -0.8, 0.4])[product]
    columns = {"channel": np.array([f"ch{i}" for i in range(6)])[channel],
               "region": np.array(["north", "south", "east", "west", "centre"])[region],
               "product": np.array(["card", "auto", "home", "personal"])[product]}
    return columns, logit


def _derived(rng: np.random.Generator, n: int) -> tuple[dict[str, Any], np.ndarray]:
    income = rng.lognormal(10.8, 0.5, n).round(0)
    amount = (income * rng.uniform(0.05, 0.8, n)).round(0)
    return {"income": income, "amount": amount}, -2.8 + 4.5 * amount / income


SHAPES = (
    Shape("one_numeric_feature", {"numeric_features": [{"name": "score", "min": 0, "max": 100}]}, _one_numeric),
    Shape("categorical_only", {"categorical_features": [
        {"name": "channel", "values": [f"ch{i}" for i in range(6)]},
        {"name": "region", "values": ["north", "south", "east", "west", "centre"]},
        {"name": "product", "values": ["card", "auto", "home", "personal"]},
    ]}, _categorical),
    Shape("numeric_with_derived_feature", {
        "numeric_features": [{"name": "income", "min": 0}, {"name": "amount", "min": 0}],
        "derived_features": [{"name": "amount_to_income", "sql": "amount / nullif(income, 0)"}],
    }, _derived),
)


def _contract(shape: Shape) -> dict[str, Any]:
    return {
        "name": shape.name,
        "columns": {"id": "ref", "date": "opened_on", "group": {"name": "cohort", "values": list(GROUPS)}},
        "outcome": {"column": "status", "positive": ["bad"], "negative": ["good"]},
        **shape.features,
    }


def _book(shape: Shape, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    features, logit = shape.columns(rng, LOANS)
    group = rng.choice(GROUPS, LOANS, p=GROUP_SHARES)
    return pa.table({
        "ref": [f"{shape.name[:3]}-{i:06d}" for i in range(LOANS)],
        "opened_on": pa.array(np.datetime64("2024-01-01") + rng.integers(0, 400, LOANS).astype("timedelta64[D]")),
        "cohort": group,
        "status": np.where(rng.random(LOANS) < 1 / (1 + np.exp(-logit)), "bad", "good"),
        **features,
    })


def _bodies(book: pa.Table, loan_book: LoanBookSchema) -> list[dict[str, Any]]:
    """Scoring requests for the book's last loans, and one of the group with very few rows."""
    rows = book.select([*loan_book.input_names, loan_book.group_column]).to_pylist()
    tiny = next(i for i, row in enumerate(rows) if row[loan_book.group_column] == GROUPS[-1])
    chosen = [*range(LOANS - REQUESTS + 1, LOANS), tiny]
    return [{**rows[i], "application_id": f"app-{i}"} for i in chosen]


@pytest.mark.parametrize("shape", SHAPES, ids=[shape.name for shape in SHAPES])
def test_a_declared_book_goes_from_import_to_monitoring(
    shape: Shape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = paths_for(tmp_path / "data")
    for name, value in deployment_env(paths.data_dir).items():
        monkeypatch.setenv(name, value)
    get_paths.cache_clear()
    get_settings.cache_clear()
    book = _book(shape)
    pq.write_table(book, tmp_path / "book.parquet")
    (tmp_path / "book.yml").write_text(yaml.safe_dump(_contract(shape)))

    arguments = ["import", str(tmp_path / "book.parquet"), "--schema", str(tmp_path / "book.yml")]
    imported = CliRunner().invoke(cli, arguments)
    assert imported.exit_code == 0, imported.output
    built = build(paths)
    assert built.ok, built.run.output

    settings = load_settings({**deployment_env(paths.data_dir), "LENDGUARD_DEV_API_PORT": str(free_port()),
                              "LENDGUARD_DEV_MAX_P99_MS": str(NO_LATENCY_LIMIT_MS)})
    run = pipeline.run_pipeline(paths, settings=settings, candidates=[CANDIDATE])
    assert run.status == pipeline.AWAITING
    assert run.stage("test-dev")["details"]["max_probability_difference"] <= 1e-9
    version = str(run.version)
    pipeline.decide(paths, version, approve=True, by="matrix", note=shape.name, settings=settings)
    assert registry.alias_version(paths, "champion") == version

    bundle = registry.load_bundle(paths)
    loan_book = bundle.loan_book
    assert list(bundle.pipeline.feature_names_in_) == list(loan_book.feature_names)
    bodies = _bodies(book, loan_book)
    reference = FeatureScorer(bundle, engine="sklearn")
    try:
        expected = reference.probabilities(book.select(list(loan_book.input_names)).take(
            [int(body["application_id"].removeprefix("app-")) for body in bodies]))
    finally:
        reference.close()
    for engine in ("sql", "sklearn"):
        app = create_app(ApiSettings(writer_id=f"matrix-{engine}", scoring_engine=engine), paths)
        with TestClient(app) as client:
            answers = [client.post(SCORE_PATH, json=body) for body in bodies]
        assert [answer.status_code for answer in answers] == [200] * len(bodies), answers[0].text
        served = np.array([answer.json()["probability"] for answer in answers])
        np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)
        for body, answer in zip(bodies, answers, strict=True):
            assert answer.json()["threshold"] == pytest.approx(bundle.threshold_for(body[loan_book.group_column]))

    report = run_monitor(paths, settings=load_settings({}).notify, actor="matrix")
    assert report.status != FAILED, report.error
    assert report.dbt_failures == []
    with connect_snapshot(paths) as con:
        logged = con.execute(
            "select count(*) from int_requests where model_version = ? and status_code = 200", [version]
        ).fetchone()
    assert logged == (2 * len(bodies),)
