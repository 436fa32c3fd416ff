"""Stage ``evaluate``: test-split metrics of both policies, per group; register the version.

Consumes the training run (model, policies, cost curves, the fitted rows' ids), the ``test``
split, the ``train`` split's inputs (for the monotone sweep) and, when there is one, the current
champion, scored on the same applicants so the gate compares costs on the same rows. Produces a
registered version with alias ``candidate`` (gate tag ``pending``), the metrics logged to the run,
and the ``evaluations``, ``thresholds``, ``cost_curves``, ``monotone_sweeps`` and drift-reference
rows landed for the warehouse.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml import registry
from ml.delivery import CANDIDATE, CHAMPION, utc_now
from ml.delivery.lineage import land_lineage
from ml.delivery.thresholds import CURVES_ARTIFACT_DIR, costs, curve_file, curve_rows
from ml.metrics import BISG, OVERALL, policy_metrics
from ml.monotone import sweep
from ml.policy import PolicySet
from ml.reference import land_reference_inputs
from ml.train import LABEL, OOF_ARTIFACT, load_split
from warehouse import datasets
from warehouse.errors import LendguardError
from warehouse.loan_book import LoanBookSchema
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.project import project_vars

log = logging.getLogger(__name__)

BISG_TABLE = "feat_loan_bisg"


class NoBisgProbabilitiesError(LendguardError):
    """The book declares proxies but the warehouse has no BISG probabilities for its loans."""

SUMMARY_METRICS = ("auc", "fpr", "tpr", "positive_rate", "cost_per_applicant", "calibration_error")
"""The overall metrics logged to the MLflow run per policy."""
RECORDED_METRICS = ("auc", "fpr", "cost_per_applicant", "calibration_error")
"""The overall metrics the pipeline's record keeps per policy."""


@dataclass(frozen=True)
class Evaluation:
    version: str
    run_id: str
    metrics: dict[str, pd.DataFrame]
    champion_version: str | None


def _score_test(bundle: registry.ModelBundle, test: pd.DataFrame) -> np.ndarray:
    # scikit-learn has no type information: its result is declared here.
    probabilities: np.ndarray = bundle.pipeline.predict_proba(test[list(bundle.loan_book.feature_names)])[:, 1]
    return probabilities


def load_bisg(paths: Paths, loan_book: LoanBookSchema, loan_ids: pd.Series) -> pd.DataFrame | None:
    """Each loan's BISG probabilities (``feat_loan_bisg``), one column per group, rows in the order
    of ``loan_ids``; None for a book without proxies. Census categories mapped to one group add up."""
    if not loan_book.proxies:
        return None
    with open_marts(paths) as marts:
        long = marts.frame(f"select loan_id, group_name, sum(probability) as probability from {BISG_TABLE} "
                           "where list_contains(?, loan_id) group by loan_id, group_name",
                           [[str(loan_id) for loan_id in loan_ids]])
    wide = long.pivot(index="loan_id", columns="group_name", values="probability").reindex(loan_ids.astype(str))
    missing = int(wide.isna().all(axis=1).sum())
    if long.empty or missing:
        raise NoBisgProbabilitiesError(
            f"{missing or len(loan_ids)} of {len(loan_ids)} loans have no BISG probabilities in {BISG_TABLE}: "
            "load the Census tables (`lendguard reference-data load`) and run `lendguard build`")
    return wide.fillna(0.0).reset_index(drop=True)


def _test_split(
    paths: Paths, loan_book: LoanBookSchema
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, pd.DataFrame | None]:
    """The test split, its labels, its self-reported groups (None without a group column) and its
    BISG probabilities (None without proxies)."""
    test = load_split(paths, loan_book, "test")
    groups = test["fairness_group"].to_numpy() if loan_book.has_group else None
    return test, test[LABEL].to_numpy(), groups, load_bisg(paths, loan_book, test["loan_id"])


def metric_rows(
    frame: pd.DataFrame, *, candidate: str, version: str, role: str, run_id: str, policy: str, deployed: str,
    at: datetime,
) -> pd.DataFrame:
    """One policy's metrics in the ``evaluations`` dataset's shape."""
    rows = frame.rename(columns={"group": "group_name"}).copy()
    rows["candidate_version"], rows["model_version"], rows["role"] = candidate, version, role
    rows["run_id"], rows["policy"], rows["is_deployed_policy"] = run_id, policy, policy == deployed
    rows["evaluated_at"] = at
    return rows


def threshold_rows(
    version: str, run_id: str, policies: PolicySet, test_groups: set[str], at: datetime
) -> list[dict[str, Any]]:
    """Every policy's threshold for every group it knows or the test split has, and its default."""
    rows: list[dict[str, Any]] = []
    for name, policy in policies.policies.items():
        groups = set(policy.thresholds) | set(policy.fallback_groups) | test_groups
        rows.extend({
            "model_version": version, "run_id": run_id, "policy": name, "group_name": group,
            "threshold": float(policy.threshold_for([group])[0]),
            "is_fallback": group not in policy.thresholds, "target_fpr": policy.target_fpr, "created_at": at,
        } for group in sorted(groups))
        rows.append({
            "model_version": version, "run_id": run_id, "policy": name, "group_name": datasets.DEFAULT_GROUP,
            "threshold": policy.default_threshold, "is_fallback": True, "target_fpr": policy.target_fpr,
            "created_at": at,
        })
    return rows


def metric_key(group: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return "".join(c if c.isalnum() or c in "_-. " else "_" for c in str(group))


def evaluate_and_register(paths: Paths, run_id: str) -> Evaluation:
    """Register the run's model, evaluate it (and the champion) on the test split, land and log the
    results, alias the version ``candidate``."""
    import mlflow  # noqa: PLC0415 - about a second to import
    from mlflow import MlflowClient  # noqa: PLC0415 - as above

    rules = project_vars()
    cost_fn, cost_fp = costs()
    alpha = float(rules["fpr_ci_alpha"])
    registry.configure(paths)
    client = MlflowClient()
    model_uri = client.get_run(run_id).data.tags["model_uri"]
    champion_version = registry.alias_version(paths, CHAMPION)
    version = str(mlflow.register_model(model_uri, registry.MODEL_NAME, tags={"run_id": run_id}).version)
    client.set_model_version_tag(registry.MODEL_NAME, version, "gate_result", "pending")
    bundle = registry.load_version(paths, version)
    test, y, groups, bisg = _test_split(paths, bundle.loan_book)
    policies = bundle.policies
    at = utc_now()
    metrics: dict[str, pd.DataFrame] = {}
    frames = []
    p = _score_test(bundle, test)
    for name, policy in policies.policies.items():
        metrics[name] = policy_metrics(y, p, groups, policy, cost_fn=cost_fn, cost_fp=cost_fp, alpha=alpha, bisg=bisg)
        frames.append(metric_rows(metrics[name], candidate=version, version=version, role=CANDIDATE,
                                  run_id=run_id, policy=name, deployed=policies.deployed, at=at))
    if champion_version is not None:
        champion = registry.load_version(paths, champion_version)
        champion_policies = champion.policies
        champion_metrics = policy_metrics(
            y, _score_test(champion, test), groups, champion_policies.active,
            cost_fn=cost_fn, cost_fp=cost_fp, alpha=alpha, bisg=bisg,
        )
        frames.append(metric_rows(champion_metrics, candidate=version, version=champion_version, role=CHAMPION,
                                  run_id=champion.run_id, policy=champion_policies.deployed,
                                  deployed=champion_policies.deployed, at=at))
    datasets.land_rows(paths, datasets.EVALUATIONS, pd.concat(frames, ignore_index=True))
    test_groups = set() if groups is None else set(groups)
    datasets.land_rows(paths, datasets.THRESHOLDS, threshold_rows(version, run_id, policies, test_groups, at))
    curves_folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CURVES_ARTIFACT_DIR))
    curves = []
    for name, policy in policies.policies.items():
        rows = curve_rows(name, pd.read_csv(curves_folder / curve_file(name)), policy)
        rows["model_version"], rows["run_id"] = version, run_id
        curves.append(rows)
    datasets.land_rows(paths, datasets.COST_CURVES, pd.concat(curves, ignore_index=True))
    oof = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=OOF_ARTIFACT))
    land_reference_inputs(paths, bundle.loan_book, version, oof)  # drift reference (issue #6)
    sweeps = sweep(bundle, load_split(paths, bundle.loan_book, "train"), run_id=run_id, at=at)
    if not sweeps.empty:
        datasets.land_rows(paths, datasets.MONOTONE_SWEEPS, sweeps)
    land_lineage(paths, version, run_id)  # the audit trail's git commit and data fingerprint, for SQL

    _log_metrics(run_id, metrics)
    registry.set_alias(paths, CANDIDATE, version)
    log.info("registered version %s as %s", version, CANDIDATE)
    return Evaluation(version, run_id, metrics, champion_version)


def _log_metrics(run_id: str, metrics: dict[str, pd.DataFrame]) -> None:
    """Each policy's overall and per-group test metrics to the run, and the tables as artifacts."""
    import mlflow  # noqa: PLC0415 - about a second to import

    with mlflow.start_run(run_id=run_id):
        for name, frame in metrics.items():
            overall = frame[frame["group"] == OVERALL].iloc[0]
            for metric in SUMMARY_METRICS:
                mlflow.log_metric(f"test_{name}_{metric}", float(overall[metric]))
            for _, row in frame[frame["group"] != OVERALL].iterrows():
                kind = "fpr_bisg" if row["method"] == BISG else "fpr"
                mlflow.log_metric(f"test_{name}_{kind}__{metric_key(row['group'])}", float(row["fpr"]))
        with tempfile.TemporaryDirectory() as tmp:
            for name, frame in metrics.items():
                frame.to_csv(Path(tmp) / f"test_metrics_{name}.csv", index=False)
            mlflow.log_artifacts(tmp, artifact_path="evaluation")


def details(evaluation: Evaluation) -> dict[str, Any]:
    """What the pipeline records: the version, the champion it was compared with, overall metrics."""
    overall = {name: frame[frame["group"] == OVERALL].iloc[0][list(RECORDED_METRICS)].to_dict()
               for name, frame in evaluation.metrics.items()}
    return {"version": evaluation.version, "champion_version": evaluation.champion_version, "overall": overall}
