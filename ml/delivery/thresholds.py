"""Stage ``thresholds``: both decision policies, chosen on the deployed model's validation predictions.

Consumes the training run's validation predictions: the probabilities of the very model that is
registered and served, on the validation split, which it was not fitted on (never the test split,
nor the cross-validation fold models, whose probabilities differ from the refitted model's), and
the cost and group-size rules in ``dbt_project.yml``. Produces the policy set (equal-FPR group thresholds and
the single threshold, with the deployed one named) and both cost-vs-FPR curves, logged to the run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml import registry
from ml.fairness import (
    GROUP_THRESHOLDS,
    SINGLE_THRESHOLD,
    ThresholdPolicy,
    equal_fpr_policy,
    single_threshold_curve,
    single_threshold_policy,
)
from ml.policy import PolicySet
from ml.train import LABEL, VALIDATION_ARTIFACT
from warehouse.build import current_loan_book
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import Paths
from warehouse.project import project_vars

CURVES_ARTIFACT_DIR = "thresholds"


def costs() -> tuple[float, float]:
    """(cost of a false negative, cost of a false positive) from the project's rules."""
    rules = project_vars()
    return float(rules["cost_false_negative"]), float(rules["cost_false_positive"])


def choose_thresholds(
    predictions: pd.DataFrame, loan_book: LoanBookSchema
) -> tuple[PolicySet, dict[str, pd.DataFrame]]:
    """The policies from held-out predictions of the deployed model (``probability``, the label,
    ``fairness_group``): the validation split's, never the test split's.

    A book with a group column gets both policies; one without (BISG proxies only) gets the single
    threshold alone, deployed: group thresholds would decide by an estimate of ethnicity.
    """
    rules = project_vars()
    cost_fn, cost_fp = costs()
    p, y = predictions["probability"].to_numpy(), predictions[LABEL].to_numpy()
    groups = predictions["fairness_group"].to_numpy() if loan_book.has_group else None
    requested = str(rules["deployed_policy"])
    if requested not in (GROUP_THRESHOLDS, SINGLE_THRESHOLD):
        raise ValueError(f"var deployed_policy must be {GROUP_THRESHOLDS} or {SINGLE_THRESHOLD}, got {requested!r}")
    deployed = loan_book.deployed_policy(requested)
    single = single_threshold_policy(p, y, cost_fn=cost_fn, cost_fp=cost_fp)
    single_curve = single_threshold_curve(
        p, y, groups, cost_fn=cost_fn, cost_fp=cost_fp,
        min_group_size=int(rules["min_group_size"]), not_provided=loan_book.group_not_provided,
    )
    if groups is None:
        if deployed == GROUP_THRESHOLDS:
            loan_book.refuse_group_thresholds()
        return PolicySet(SINGLE_THRESHOLD, {SINGLE_THRESHOLD: single}), {SINGLE_THRESHOLD: single_curve}
    fair, fair_curve = equal_fpr_policy(
        p, y, groups, cost_fn=cost_fn, cost_fp=cost_fp,
        min_group_size=int(rules["min_group_size"]), not_provided=loan_book.group_not_provided,
    )
    policies = PolicySet(deployed, {GROUP_THRESHOLDS: fair, SINGLE_THRESHOLD: single})
    return policies, {GROUP_THRESHOLDS: fair_curve, SINGLE_THRESHOLD: single_curve}


def curve_rows(policy: str, curve: pd.DataFrame, chosen: ThresholdPolicy) -> pd.DataFrame:
    """The curve in the warehouse's shape: at most one point per 0.001 of FPR."""
    if policy == GROUP_THRESHOLDS:
        frame = curve.copy()
        frame["is_chosen"] = np.isclose(frame["target_fpr"], chosen.target_fpr or 0.0)
    else:
        frame = curve.rename(columns={"fpr": "target_fpr"}).copy()
        frame["is_chosen"] = frame["threshold"] == chosen.default_threshold
        keep = ~frame["target_fpr"].mul(1000).round().duplicated() | frame["is_chosen"]
        frame = frame[keep]
    frame["policy"] = policy
    return frame[["policy", "target_fpr", "cost", "cost_per_applicant", "flagged_rate", "fpr_gap", "is_chosen"]]


def curve_file(policy: str) -> str:
    return f"cost_curve_{policy}.csv"


def choose_and_log(paths: Paths, run_id: str) -> PolicySet:
    """Choose both policies on the run's validation predictions; log them to the run."""
    import mlflow  # noqa: PLC0415 - about a second to import

    registry.configure(paths)
    loan_book = current_loan_book(paths)
    validation = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=VALIDATION_ARTIFACT))
    policies, curves = choose_thresholds(validation, loan_book)
    with mlflow.start_run(run_id=run_id):
        registry.log_bundle_files(policy=policies.to_dict())
        with tempfile.TemporaryDirectory() as tmp:
            for name, curve in curves.items():
                curve.to_csv(Path(tmp) / curve_file(name), index=False)
            mlflow.log_artifacts(tmp, artifact_path=CURVES_ARTIFACT_DIR)
        for name, policy in policies.policies.items():
            mlflow.log_metric(f"threshold_{name}_default", policy.default_threshold)
            if policy.target_fpr is not None:
                mlflow.log_metric(f"target_fpr_{name}", policy.target_fpr)
        mlflow.set_tag("deployed_policy", policies.deployed)
    return policies


def details(policies: PolicySet) -> dict[str, Any]:
    """What the pipeline records: the deployed policy and every policy's thresholds."""
    return {"deployed": policies.deployed,
            "policies": {name: policy.to_dict() for name, policy in policies.policies.items()}}
