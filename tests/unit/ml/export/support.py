"""Data and reference computations for the export tests.

The two derived features are computed here in pandas only to make test inputs: in production they
come from the contract's SQL (the feature macro), and the compiled model reads them as columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.pipeline import Pipeline
from sqlglot import exp

from ml.candidates import named
from ml.export.sql import to_sql
from warehouse.loan_book import LoanBookSchema
from warehouse.simulator import simulate_loans

RELATION = "scored_features"
VERY_LARGE = 1e12
UNSEEN = ("boat", "(missing)", "")
MODELS = {"logistic_regression": named("logreg_c1"), "gradient_boosting": named("hgb_depth3"),
          "lightgbm": named("lgbm_leaves7")}
"""The model families exported, one of each kind of estimator."""


@dataclass(frozen=True)
class Exported:
    """A fitted pipeline, its PMML file and the SQL compiled from it."""

    name: str
    pipeline: Pipeline
    pmml: Path
    query: exp.Select


def loan_features(schema: LoanBookSchema, n: int, seed: int) -> pd.DataFrame:
    """Simulated loans as the scoring relation holds them: loan_id, the features, the label."""
    loans = pa.concat_tables(list(simulate_loans(n, seed=seed))).to_pandas()
    frame = pd.DataFrame({"loan_id": loans["loan_id"]})
    for name in schema.input_names:
        frame[name] = loans[name].astype("float64") if name in schema.model_numeric else loans[name].astype(str)
    frame["loan_to_income"] = frame["loan_amount"] / frame["annual_income"].replace(0.0, np.nan)
    frame["log_annual_income"] = np.log1p(frame["annual_income"])
    frame["defaulted"] = (loans["loan_status"] == "defaulted").astype(int)
    return frame


def score_sql(query: exp.Select, frame: pd.DataFrame, dialect_sql: str | None = None) -> np.ndarray:
    """Run the compiled query in DuckDB over ``frame``; probabilities in ``frame``'s row order."""
    with duckdb.connect() as con:
        con.register(RELATION, frame)
        scored = con.execute(dialect_sql or to_sql(query)).df()
    return scored.set_index("loan_id").loc[frame["loan_id"], "probability"].to_numpy(dtype=float)


def with_ids(rows: list[dict[str, object]], prefix: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows).reset_index(drop=True)
    frame["loan_id"] = [f"{prefix}{i:06d}" for i in range(len(frame))]
    return frame


def edge_rows(schema: LoanBookSchema, base: pd.Series) -> pd.DataFrame:
    """Rows at the contract's limits and past them: min, max, allowed values, 0, very large,
    NaN (one feature and all), zero income (loan_to_income NULL) and unseen categories."""
    numeric = list(schema.model_numeric)
    typical = base[[*numeric, *schema.model_categorical]].to_dict()
    rows: list[dict[str, object]] = [typical]
    limits: dict[str, list[float]] = {name: [0.0, VERY_LARGE, np.nan] for name in numeric}
    for feature in schema.numeric_features:
        limits[feature.name] += [v for v in (feature.min, feature.max) if v is not None]
        limits[feature.name] += list(feature.allowed or ())
    for name, values in limits.items():
        rows += [{**typical, name: float(value)} for value in values]
    rows.append({**typical, **dict.fromkeys(numeric, np.nan)})
    rows.append({**typical, **dict.fromkeys(numeric, VERY_LARGE)})
    rows.append({**typical, "annual_income": 0.0, "loan_to_income": np.nan, "log_annual_income": 0.0})
    for name in schema.model_categorical:
        rows += [{**typical, name: value} for value in UNSEEN]
    rows.append({**typical, **dict.fromkeys(schema.model_categorical, UNSEEN[0])})
    return with_ids(rows, "edge")


@dataclass(frozen=True)
class ThresholdRows:
    """Rows whose scaled value equals a split threshold exactly, at a node the row reaches."""

    rows: pd.DataFrame
    splits: int
    """Numeric splits in the model."""
    hit: int
    """Splits reached by a row exactly on the threshold (each also has a row just above it)."""


def exact_raw_value(threshold: float, mean: float, scale: float) -> float | None:
    """A raw value x with (x - mean) / scale == threshold in doubles (as StandardScaler computes)."""
    guess = np.float64(threshold) * np.float64(scale) + np.float64(mean)
    candidates = [guess]
    up = down = guess
    for _ in range(64):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        candidates += [up, down]
    for x in candidates:
        if (x - np.float64(mean)) / np.float64(scale) == threshold:
            return float(x)
    return None


def _just_above(x: float, threshold: float, mean: float, scale: float) -> float:
    """The smallest raw value above ``x`` whose scaled value is past the threshold."""
    value = np.float64(x)
    while (value - np.float64(mean)) / np.float64(scale) <= threshold:
        value = np.nextafter(value, np.inf)
    return float(value)


def _reaches(nodes: np.ndarray, row: np.ndarray, target: int) -> bool:
    index = 0
    while True:
        if index == target:
            return True
        node = nodes[index]
        if node["is_leaf"]:
            return False
        index = int(node["left"] if row[node["feature_idx"]] <= node["num_threshold"] else node["right"])


def threshold_rows(pipeline: Pipeline, schema: LoanBookSchema, base: pd.DataFrame) -> ThresholdRows:
    """For every numeric split of a fitted gradient-boosting pipeline: a row that reaches the split
    with the feature exactly on its threshold, and the same row with the feature just above it."""
    numeric = list(schema.model_numeric)
    columns = pipeline.named_steps["features"]
    scaler = columns.named_transformers_["numeric"].named_steps["scale"]
    model = pipeline.named_steps["model"]
    transformed = columns.transform(base)
    rows: list[dict[str, object]] = []
    splits = hit = 0
    for iteration in model._predictors:  # the fitted trees (private but stable), to aim rows at splits
        nodes = iteration[0].nodes
        for index, node in enumerate(nodes):
            feature = int(node["feature_idx"])
            if node["is_leaf"] or feature >= len(numeric):
                continue
            splits += 1
            threshold = float(node["num_threshold"])
            x = exact_raw_value(threshold, scaler.mean_[feature], scaler.scale_[feature])
            if x is None:
                continue
            for position in range(len(base)):
                scaled = transformed[position].copy()
                scaled[feature] = threshold
                if _reaches(nodes, scaled, index):
                    row = base.iloc[position][[*numeric, *schema.model_categorical]].to_dict()
                    above = _just_above(x, threshold, scaler.mean_[feature], scaler.scale_[feature])
                    rows += [{**row, numeric[feature]: x}, {**row, numeric[feature]: above}]
                    hit += 1
                    break
    return ThresholdRows(with_ids(rows, "split"), splits, hit)
