"""A small landed book and prediction log with drift, for the tests that build the whole project on Spark."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from warehouse import datasets, landing
from warehouse.build import current_loan_book
from warehouse.importer import land_simulated
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema


def land_book_and_log(paths: Paths) -> LoanBookSchema:
    """A small book and log in ``paths``' landing zone: 3,000 loans, two model versions' training inputs
    and 2,500 logged requests each (about 3 % refused), the second version's drifted."""
    land_simulated(paths, 3_000, seed=11)
    loan_book = current_loan_book(paths)
    rng = np.random.default_rng(20261204)
    numeric = [f.name for f in loan_book.numeric_features]
    categorical = [f.name for f in loan_book.categorical_features]
    for version, size, shift in (("1", 2_000, 0.0), ("2", 2_000, 0.5)):
        reference = pd.DataFrame({name: rng.normal(size=size).round(1) for name in numeric})
        reference[numeric[0]] = rng.integers(0, 5, size)  # ties
        for name in categorical:
            reference[name] = rng.choice(["a", "b", "c", None], size, p=[0.5, 0.3, 0.15, 0.05])
        reference[loan_book.group_column] = rng.choice(["g1", "g2", "g3"], size, p=[0.6, 0.3, 0.1])
        reference.insert(0, "model_version", version)
        datasets.land_reference_inputs(paths, loan_book, reference)
        _land_log(paths, loan_book, rng, version, shift, n=2_500, start=datetime(2026, 3, 1, 22, 0) +
                  timedelta(days=int(version)), seconds=7_200, ids=f"v{version}", prefix=f"parity-{version}")
    for dataset, dataset_schema in datasets.SCHEMAS.items():
        landing.ensure_seed(paths.landing, dataset, dataset_schema)
    return loan_book


LATE = {i: datetime(2026, 3, 3, 22, 30) + timedelta(minutes=i) for i in range(40)} | {
    40: datetime(2025, 3, 3, 12, 0), 41: datetime(2025, 3, 3, 12, 0)}
"""The later requests' own times where they are not their receipt: 40 inside an hour window the first
build closed (version 2's first hour), 2 dated a year back."""


def land_later_log(paths: Paths, loan_book: LoanBookSchema) -> int:
    """What arrives after a build: 600 more requests of version 2, received an hour after its last,
    with :data:`LATE`'s late and back-dated ones among them (they join the open count window, and
    the event-time windows they fall in). Returns the rows landed."""
    n = 600
    _land_log(paths, loan_book, np.random.default_rng(20261205), "2", 0.5, n=n, start=datetime(2026, 3, 4, 1, 0),
              seconds=3_600, ids="v2-later", prefix="parity-2-later", occurred=LATE)
    return n


def _land_log(paths: Paths, loan_book: LoanBookSchema, rng: np.random.Generator, version: str, shift: float, *,
              n: int, start: datetime, seconds: int, ids: str, prefix: str,
              occurred: dict[int, datetime] | None = None) -> None:
    """``n`` logged requests of ``version`` received over ``seconds`` from ``start``, inputs shifted by
    ``shift``, about 3 % refused; each request's own time is its receipt unless ``occurred`` has it."""
    numeric = [f.name for f in loan_book.numeric_features]
    categorical = [f.name for f in loan_book.categorical_features]
    log = {name: (rng.normal(size=n) + shift).round(1) for name in numeric}
    log[numeric[0]] = rng.integers(0, 6, n).astype(float)
    for name in categorical:
        log[name] = rng.choice(["a", "b", "c", "new", None], n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    log[loan_book.group_column] = rng.choice(["g1", "g2", "g3"], n, p=[0.6 - shift / 2, 0.3 + shift / 2, 0.1])
    at = [start + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, seconds, n))]
    probability = rng.uniform(0.01, 0.6, n)
    columns: dict[str, Any] = {
        **log, "request_id": [f"{ids}-{i:05d}" for i in range(n)], "model_version": [version] * n,
        "received_at": at, "occurred_at": [(occurred or {}).get(i, t) for i, t in enumerate(at)],
        "status_code": np.where(rng.random(n) < 0.03, 422, 200),
        "mode": ["normal"] * n, "probability": probability, "threshold": [0.3] * n,
        "decision": np.where(probability >= 0.3, "manual_review", "auto_approve"),
        "latency_ms": rng.uniform(1, 40, n), "endpoint": ["/v1/score"] * n, "caller": ["pytest"] * n,
    }
    schema = prediction_log_schema(loan_book)
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * n), type=f.type) for f in schema}, schema=schema)
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, prefix).write(table)
