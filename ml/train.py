"""``lendguard train``: fit the model on the warehouse's training set and register it.

The baseline: logistic regression on standardised numeric features and one-hot categories, fitted
on the train split that dbt defined, evaluated on the held-out test split, decided at the
cost-minimising cut-off of a calibrated probability (see ``warehouse.project.bayes_threshold``).
The fair-delivery pipeline (model selection, group thresholds, gate, approval) builds on this.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml import registry
from warehouse.build import current_loan_book, dbt_vars
from warehouse.dbt import compile_inline
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.project import bayes_threshold
from warehouse.publish import connect_snapshot

log = logging.getLogger(__name__)

TRAINING_TABLE = "train_loans"
LABEL = "defaulted"


@dataclass(frozen=True)
class TrainResult:
    version: str
    run_id: str
    metrics: dict[str, float]
    alias: str


def build_pipeline(loan_book: LoanBookSchema, *, c: float = 1.0) -> Pipeline:
    """The baseline pipeline: the model never sees the group column (it is not a feature)."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = OneHotEncoder(handle_unknown="ignore")
    columns = ColumnTransformer(
        [("numeric", numeric, list(loan_book.model_numeric)),
         ("categorical", categorical, list(loan_book.model_categorical))],
    )
    return Pipeline([("features", columns), ("model", LogisticRegression(C=c, max_iter=2000))])


def load_training_set(paths: Paths, loan_book: LoanBookSchema) -> pd.DataFrame:
    """The training table from the published snapshot (readers never open the build's file)."""
    columns = ", ".join(["loan_id", "fairness_group", LABEL, "split", "snapshot_id", *loan_book.feature_names])
    with connect_snapshot(paths) as con:
        return con.execute(f"select {columns} from {TRAINING_TABLE} order by loan_id").df()


def compile_feature_sql(paths: Paths, loan_book: LoanBookSchema) -> str:
    """The feature macro rendered for the scoring path (``select … from application_rows``)."""
    return compile_inline(
        paths, f"select {{{{ loan_feature_columns() }}}} from {registry.FEATURE_RELATION}", dbt_vars(loan_book)
    )


def evaluate(y_true: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = probability >= threshold
    negatives = max(int((y_true == 0).sum()), 1)
    positives = max(int((y_true == 1).sum()), 1)
    return {
        "auc": float(roc_auc_score(y_true, probability)),
        "brier": float(brier_score_loss(y_true, probability)),
        "fpr": float((flagged & (y_true == 0)).sum() / negatives),
        "tpr": float((flagged & (y_true == 1)).sum() / positives),
        "positive_rate": float(flagged.mean()),
        "default_rate": float(y_true.mean()),
        "rows": float(len(y_true)),
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train(paths: Paths, *, alias: str = "champion") -> TrainResult:
    """Fit, evaluate on the test split, register the bundle and point ``alias`` at it."""
    import mlflow  # noqa: PLC0415 - costs about a second to import
    from mlflow.models import infer_signature  # noqa: PLC0415

    loan_book = current_loan_book(paths)
    data = load_training_set(paths, loan_book)
    if data.empty:
        raise ValueError(f"{TRAINING_TABLE} is empty: land a loan book and run `lendguard build`")
    features = list(loan_book.feature_names)
    train_rows, test_rows = data[data["split"] == "train"], data[data["split"] == "test"]
    pipeline = build_pipeline(loan_book)
    pipeline.fit(train_rows[features], train_rows[LABEL])
    threshold = bayes_threshold()
    metrics = evaluate(test_rows[LABEL].to_numpy(), pipeline.predict_proba(test_rows[features])[:, 1], threshold)
    feature_sql = compile_feature_sql(paths, loan_book)
    policy = {"kind": "single_threshold", "threshold": threshold}

    registry.configure(paths)
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_params({"model": "logistic_regression", "C": 1.0, "threshold": threshold,
                           "features": ",".join(features)})
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        mlflow.set_tags({
            "git_commit": git_commit(),
            "loan_book_snapshot": str(data["snapshot_id"].iloc[0]),
            "loan_book_contract": loan_book.fingerprint(),
            "training_rows": str(len(train_rows)),
        })
        registry.log_bundle_files(feature_sql, loan_book, policy)
        sample = train_rows[features].head(5)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=registry.MODEL_NAME,
            signature=infer_signature(sample, pipeline.predict_proba(sample)),
            # skops serialisation (no pickle): the one non-sklearn type the pipeline holds.
            skops_trusted_types=["numpy.dtype"],
        )
    version = str(info.registered_model_version)
    registry.set_alias(paths, alias, version)
    log.info("registered %s version %s as %s (test AUC %.3f)", registry.MODEL_NAME, version, alias, metrics["auc"])
    return TrainResult(version=version, run_id=run.info.run_id, metrics=metrics, alias=alias)
