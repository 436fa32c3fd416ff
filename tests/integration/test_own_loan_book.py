"""A lender's own loan book with its own column names goes through build and training unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lendguard import pipeline
from ml.registry import load_version
from ml.scoring import FeatureScorer
from warehouse.build import build
from warehouse.importer import import_loan_book
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

pytestmark = pytest.mark.slow

CONTRACT = {
    "name": "credit_union_book",
    "columns": {"id": "account_ref", "date": "opened_on",
                "group": {"name": "race", "values": ["A", "B", "C", "unknown"], "not_provided": "unknown"}},
    "outcome": {"column": "status", "positive": ["charged_off"], "negative": ["paid"]},
    "numeric_features": [{"name": "income", "min": 0}, {"name": "score", "min": 300, "max": 850, "integer": True}],
    "categorical_features": [{"name": "channel", "values": ["branch", "online", "broker"]}],
    "derived_features": [{"name": "score_per_income", "sql": "score / nullif(income, 0)"}],
}


def _book(rows: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.8, 0.5, rows).round(0)
    score = rng.integers(450, 840, rows)
    risk = 1 / (1 + np.exp(-(-1.0 - (score - 650) / 60 - (np.log(income) - 10.8))))
    return pa.table({
        "account_ref": [f"CU-{i:06d}" for i in range(rows)],
        "opened_on": pa.array(np.datetime64("2023-01-01") + rng.integers(0, 700, rows).astype("timedelta64[D]")),
        "race": rng.choice(["A", "B", "C", "unknown"], rows, p=[0.6, 0.25, 0.1, 0.05]),
        "status": np.where(rng.random(rows) < risk, "charged_off", "paid"),
        "income": income,
        "score": score,
        "channel": rng.choice(["branch", "online", "broker"], rows),
    })


def test_declared_columns_drive_features_and_training(paths: Paths, tmp_path: Path) -> None:
    schema_file = tmp_path / "book.yml"
    schema_file.write_text(yaml.safe_dump(CONTRACT))
    book_file = tmp_path / "book.parquet"
    pq.write_table(_book(3000), book_file)

    assert import_loan_book(paths, book_file, schema_file).rows == 3000
    result = build(paths)
    assert result.ok, result.run.output
    with connect_snapshot(paths) as con:
        columns = [row[0] for row in con.execute("describe train_loans").fetchall()]
        defaulted = con.execute("select avg(defaulted) from train_loans").fetchone()[0]
    assert columns == ["loan_id", "application_date", "fairness_group", "defaulted", "snapshot_id",
                       "income", "score", "channel", "score_per_income", "split"]
    assert 0.05 < defaulted < 0.6

    run = pipeline.start_run(paths)
    for stage in ("train", "thresholds", "evaluate"):
        pipeline.run_stage(paths, run, stage)
    bundle = load_version(paths, str(run.version))
    assert set(bundle.policies.active.thresholds) <= {"A", "B", "C", "unknown"}
    assert list(bundle.pipeline.feature_names_in_) == ["income", "score", "channel", "score_per_income"]
    application = pa.table({"income": [40_000.0], "score": [610.0], "channel": ["broker"]})
    assert 0 < FeatureScorer(bundle).probabilities(application)[0] < 1
