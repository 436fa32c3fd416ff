"""Stage ``train``: select, fit and log the model (the work is ``ml.train.train``).

Consumes the current loan book's ``train`` and ``validation`` splits from the published snapshot.
Produces an MLflow run (parameters, CV table, fitted pipeline, PMML and its SQL, the fitted model's
validation predictions) that the later stages continue, and the summary below for the pipeline's
record.
"""

from __future__ import annotations

from typing import Any

from ml.train import TrainOutcome


def details(outcome: TrainOutcome) -> dict[str, Any]:
    """What the pipeline records of a training run: the winner, its CV scores, every candidate's."""
    best = outcome.cv_results[outcome.cv_results["candidate"] == outcome.candidate.name].iloc[0]
    return {"model": outcome.candidate.name, "cv_log_loss": float(best["log_loss_mean"]),
            "cv_auc": float(best["auc_mean"]), "training_rows": outcome.training_rows,
            "outliers_removed": outcome.outliers_removed, "validation_rows": outcome.validation_rows,
            "candidates": outcome.cv_results[["candidate", "log_loss_mean", "auc_mean"]].to_dict("records")}
