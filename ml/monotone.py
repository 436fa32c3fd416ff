"""Monotone risk, checked on the registered model: sweep each declared input, hold the rest.

Lenders and their regulators expect risk to move one way with an input whose direction is known (a
better credit score never raises it). The loan-book contract declares those directions
(``monotone: increasing`` / ``decreasing`` in risk); training constrains the boosted trees and
checks the logistic coefficients (``ml.train``), and this sweep checks the result the way it is
served: every declared numeric input over a grid, every other input at its train-split median (a
category at its most frequent value), scored through the version's feature SQL and model SQL, as
the API scores. The grid covers the train split's range and half of it beyond each end (within the
contract's bounds, which the API enforces), the train split's percentiles, and points approaching
the lower end geometrically, where a ratio feature can break (a zero income once scored as a low
risk). The evaluate stage lands the rows; the gate's ``monotone_risk`` check reads them.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.registry import ModelBundle
from ml.scoring import FeatureScorer
from warehouse.loan_book import NumericFeature

GRID_POINTS = 101
"""Evenly spaced points over the extended range (and as many train-split percentiles)."""
EXTENSION = 0.5
"""How far beyond each end of the train split's range the sweep goes, as a share of the range."""
LOWER_APPROACH = np.geomspace(1e-6, 1.0, 13)[:-1]
"""Fractions of the gap between the grid's low end and the train split's minimum, approached
geometrically (a zero, then values just above it)."""


def sweep_grid(feature: NumericFeature, observed: np.ndarray) -> np.ndarray:
    """The sorted, distinct values ``feature`` is swept over, from its train-split values."""
    if feature.allowed is not None:
        return np.unique(np.asarray(feature.allowed, dtype=float))
    values = np.asarray(observed, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError(f"{feature.name}: no values in the train split to sweep over")
    low, high = float(values.min()), float(values.max())
    span = high - low or max(abs(high), 1.0)
    start = low - EXTENSION * span if feature.min is None else max(low - EXTENSION * span, feature.min)
    stop = high + EXTENSION * span if feature.max is None else min(high + EXTENSION * span, feature.max)
    parts = [np.linspace(start, stop, GRID_POINTS), np.quantile(values, np.linspace(0, 1, GRID_POINTS))]
    if start < low:
        parts.append(start + (low - start) * LOWER_APPROACH)
    grid = np.concatenate(parts)
    if feature.integer:
        grid = np.clip(np.round(grid), math.ceil(start), math.floor(stop))
    return np.unique(grid)


def typical_application(train: pd.DataFrame, bundle: ModelBundle) -> dict[str, object]:
    """Every input at its train-split median (numeric) or most frequent value (categorical)."""
    loan_book = bundle.loan_book
    row: dict[str, object] = {f.name: float(train[f.name].median()) for f in loan_book.numeric_features}
    for feature in loan_book.categorical_features:
        counts = train[feature.name].value_counts()
        row[feature.name] = str(counts.index[0]) if not counts.empty else None
    return row


def sweep(bundle: ModelBundle, train: pd.DataFrame, *, run_id: str, at: datetime) -> pd.DataFrame:
    """One row per declared numeric input and grid point, in the ``monotone_sweeps`` dataset's shape."""
    loan_book = bundle.loan_book
    directions = {f.name: f.monotone for f in loan_book.numeric_features if f.monotone is not None}
    if not directions:
        return pd.DataFrame(columns=["model_version", "run_id", "feature", "direction", "value", "probability",
                                     "within_training_range", "evaluated_at"])
    typical = typical_application(train, bundle)
    schema = pa.schema([pa.field(f.name, pa.float64()) for f in loan_book.numeric_features]
                       + [pa.field(f.name, pa.string()) for f in loan_book.categorical_features])
    scorer = FeatureScorer(bundle, engine="sql" if bundle.model_sql else "sklearn")
    frames = []
    try:
        for feature in loan_book.numeric_features:
            if feature.name not in directions:
                continue
            grid = sweep_grid(feature, train[feature.name].to_numpy(dtype=float))
            columns = {name: [value] * len(grid) for name, value in typical.items()}
            columns[feature.name] = grid.tolist()
            probabilities = scorer.probabilities(pa.table(columns, schema=schema))
            observed = train[feature.name].dropna()
            frames.append(pd.DataFrame({
                "feature": feature.name, "direction": directions[feature.name], "value": grid,
                "probability": probabilities,
                "within_training_range": (grid >= observed.min()) & (grid <= observed.max()),
            }))
    finally:
        scorer.close()
    rows = pd.concat(frames, ignore_index=True)
    rows.insert(0, "model_version", bundle.version)
    rows.insert(1, "run_id", run_id)
    rows["evaluated_at"] = at
    return rows
