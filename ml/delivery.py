"""The model-delivery stages after training: thresholds, evaluate + register, gate, decide.

Each stage reads what the previous one logged to the MLflow run (or registered version), does
its work, logs its own outputs there and lands rows for the warehouse, so any version traces back
through its thresholds, evaluation, gate checks and approval to the training run's code commit,
data snapshot and parameters.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
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
from ml.metrics import OVERALL, policy_metrics
from ml.policy import PolicySet
from ml.reference import land_reference_inputs
from ml.train import LABEL, OOF_ARTIFACT, load_split
from warehouse import datasets
from warehouse.build import build, current_loan_book
from warehouse.errors import LendguardError
from warehouse.paths import Paths
from warehouse.project import project_vars
from warehouse.publish import connect_snapshot

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
GATE_PASSED = "passed"
GATE_FAILED = "failed"


class GateRefusedError(LendguardError):
    """A version without a passed gate may not be approved."""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def costs() -> tuple[float, float]:
    rules = project_vars()
    return float(rules["cost_false_negative"]), float(rules["cost_false_positive"])


# ----- thresholds --------------------------------------------------------------------------------
def choose_thresholds(oof: pd.DataFrame, not_provided: str | None) -> tuple[PolicySet, dict[str, pd.DataFrame]]:
    """Both policies from out-of-fold training predictions (never the test split)."""
    rules = project_vars()
    cost_fn, cost_fp = costs()
    p, y, groups = oof["probability"].to_numpy(), oof[LABEL].to_numpy(), oof["fairness_group"].to_numpy()
    fair, fair_curve = equal_fpr_policy(
        p, y, groups, cost_fn=cost_fn, cost_fp=cost_fp,
        min_group_size=int(rules["min_group_size"]), not_provided=not_provided,
    )
    single = single_threshold_policy(p, y, cost_fn=cost_fn, cost_fp=cost_fp)
    single_curve = single_threshold_curve(
        p, y, groups, cost_fn=cost_fn, cost_fp=cost_fp,
        min_group_size=int(rules["min_group_size"]), not_provided=not_provided,
    )
    deployed = str(rules["deployed_policy"])
    if deployed not in (GROUP_THRESHOLDS, SINGLE_THRESHOLD):
        raise ValueError(f"var deployed_policy must be {GROUP_THRESHOLDS} or {SINGLE_THRESHOLD}, got {deployed!r}")
    policies = PolicySet(deployed, {GROUP_THRESHOLDS: fair, SINGLE_THRESHOLD: single})
    return policies, {GROUP_THRESHOLDS: fair_curve, SINGLE_THRESHOLD: single_curve}


def _curve_rows(policy: str, curve: pd.DataFrame, chosen: ThresholdPolicy) -> pd.DataFrame:
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


def thresholds_stage(paths: Paths, run_id: str) -> PolicySet:
    """Choose both policies on the run's out-of-fold predictions; log them to the run."""
    import mlflow  # noqa: PLC0415

    registry.configure(paths)
    loan_book = current_loan_book(paths)
    oof = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=OOF_ARTIFACT))
    policies, curves = choose_thresholds(oof, loan_book.group_not_provided)
    with mlflow.start_run(run_id=run_id):
        registry.log_bundle_files(policy=policies.to_dict())
        with tempfile.TemporaryDirectory() as tmp:
            for name, curve in curves.items():
                curve.to_csv(Path(tmp) / f"cost_curve_{name}.csv", index=False)
            mlflow.log_artifacts(tmp, artifact_path="thresholds")
        for name, policy in policies.policies.items():
            mlflow.log_metric(f"threshold_{name}_default", policy.default_threshold)
            if policy.target_fpr is not None:
                mlflow.log_metric(f"target_fpr_{name}", policy.target_fpr)
        mlflow.set_tag("deployed_policy", policies.deployed)
    return policies


# ----- evaluate and register ---------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    version: str
    run_id: str
    metrics: dict[str, pd.DataFrame]
    champion_version: str | None


def _score_test(bundle: registry.ModelBundle, test: pd.DataFrame) -> np.ndarray:
    return bundle.pipeline.predict_proba(test[list(bundle.loan_book.feature_names)])[:, 1]


def _metric_rows(
    frame: pd.DataFrame, *, candidate: str, version: str, role: str, run_id: str, policy: str, deployed: str,
    at: datetime,
) -> pd.DataFrame:
    rows = frame.rename(columns={"group": "group_name"}).copy()
    rows["candidate_version"], rows["model_version"], rows["role"] = candidate, version, role
    rows["run_id"], rows["policy"], rows["is_deployed_policy"] = run_id, policy, policy == deployed
    rows["evaluated_at"] = at
    return rows


def evaluate_stage(paths: Paths, run_id: str) -> Evaluation:
    """Evaluate on the test split (both policies, per group), register, alias ``candidate``.

    The current champion (if any) is scored on the same test split so the gate compares costs on
    the same applicants.
    """
    import mlflow  # noqa: PLC0415
    from mlflow import MlflowClient  # noqa: PLC0415

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
    test = load_split(paths, bundle.loan_book, "test")
    y, groups = test[LABEL].to_numpy(), test["fairness_group"].to_numpy()
    policies = bundle.policies
    at = utc_now()
    metrics: dict[str, pd.DataFrame] = {}
    frames = []
    p = _score_test(bundle, test)
    for name, policy in policies.policies.items():
        metrics[name] = policy_metrics(y, p, groups, policy, cost_fn=cost_fn, cost_fp=cost_fp, alpha=alpha)
        frames.append(_metric_rows(metrics[name], candidate=version, version=version, role=CANDIDATE,
                                   run_id=run_id, policy=name, deployed=policies.deployed, at=at))
    if champion_version is not None:
        champion = registry.load_version(paths, champion_version)
        champion_policies = champion.policies
        champion_metrics = policy_metrics(
            y, _score_test(champion, test), groups, champion_policies.active,
            cost_fn=cost_fn, cost_fp=cost_fp, alpha=alpha,
        )
        frames.append(_metric_rows(champion_metrics, candidate=version, version=champion_version, role=CHAMPION,
                                   run_id=champion.run_id, policy=champion_policies.deployed,
                                   deployed=champion_policies.deployed, at=at))
    datasets.land_rows(paths, datasets.EVALUATIONS, pd.concat(frames, ignore_index=True))
    datasets.land_rows(paths, datasets.THRESHOLDS, _threshold_rows(version, run_id, policies, set(groups), at))
    curves_folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="thresholds"))
    curve_rows = []
    for name, policy in policies.policies.items():
        rows = _curve_rows(name, pd.read_csv(curves_folder / f"cost_curve_{name}.csv"), policy)
        rows["model_version"], rows["run_id"] = version, run_id
        curve_rows.append(rows)
    datasets.land_rows(paths, datasets.COST_CURVES, pd.concat(curve_rows, ignore_index=True))
    oof = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=OOF_ARTIFACT))
    land_reference_inputs(paths, bundle.loan_book, version, oof)  # drift reference (issue #6)

    with mlflow.start_run(run_id=run_id):
        for name, frame in metrics.items():
            overall = frame[frame["group"] == OVERALL].iloc[0]
            for metric in ("auc", "fpr", "tpr", "positive_rate", "cost_per_applicant", "calibration_error"):
                mlflow.log_metric(f"test_{name}_{metric}", float(overall[metric]))
            for _, row in frame[frame["group"] != OVERALL].iterrows():
                mlflow.log_metric(f"test_{name}_fpr__{_metric_key(row['group'])}", float(row["fpr"]))
        with tempfile.TemporaryDirectory() as tmp:
            for name, frame in metrics.items():
                frame.to_csv(Path(tmp) / f"test_metrics_{name}.csv", index=False)
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
    registry.set_alias(paths, CANDIDATE, version)
    log.info("registered version %s as %s", version, CANDIDATE)
    return Evaluation(version, run_id, metrics, champion_version)


def _metric_key(group: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return "".join(c if c.isalnum() or c in "_-. " else "_" for c in str(group))


def _threshold_rows(
    version: str, run_id: str, policies: PolicySet, test_groups: set[str], at: datetime
) -> list[dict[str, Any]]:
    rows = []
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


# ----- gate ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateResult:
    version: str
    passed: bool
    checks: pd.DataFrame
    other_failures: tuple[str, ...]

    def failures(self) -> pd.DataFrame:
        return self.checks[~self.checks["passed"]]

    def describe_failures(self) -> list[str]:
        return [
            f"{row.check_name} ({row.subject}): measured {row.measured_value:.4g}, "
            f"limit {row.comparison} {row.limit_value:.4g}"
            if pd.notna(row.measured_value) else f"{row.check_name} ({row.subject}): not measurable"
            for row in self.failures().itertuples()
        ]


def gate_stage(paths: Paths, version: str, pipeline_run_id: str | None = None) -> GateResult:
    """Run ``dbt build`` with the gate tests for ``version``; tag the version with the verdict."""
    from mlflow import MlflowClient  # noqa: PLC0415

    result = build(paths, gate_version=version)
    with connect_snapshot(paths) as con:
        checks = con.execute("select * from eval_gate_checks order by check_name, subject").df()
    gate_failures = [r for r in result.run.failures if ".gate_check_passes_" in str(r["unique_id"])]
    other = tuple(f"{r['unique_id']}: {r['message']}" for r in result.run.failures if r not in gate_failures)
    passed = bool(checks["passed"].all()) and not gate_failures and not checks.empty
    at = utc_now()
    rows = checks.assign(pipeline_run_id=pipeline_run_id, gated_at=at)
    datasets.land_rows(paths, datasets.GATE_RESULTS, rows)
    registry.configure(paths)
    client = MlflowClient()
    verdict = GATE_PASSED if passed else GATE_FAILED
    client.set_model_version_tag(registry.MODEL_NAME, version, "gate_result", verdict)
    client.set_model_version_tag(registry.MODEL_NAME, version, "gate_checks", json.dumps(
        [{k: (None if pd.isna(v) else v) for k, v in row.items()}
         for row in checks[["check_name", "subject", "measured_value", "limit_value", "passed"]].to_dict("records")]
    )[:5000])
    return GateResult(version, passed, checks, other)


# ----- in-warehouse scoring ------------------------------------------------------------------------
CHAMPION_SQL_KEEP = ("loan_id", "fairness_group")


def champion_sql_dir(paths: Paths) -> Path:
    return paths.state_dir / "champion"


def install_champion_sql(paths: Paths, version: str) -> Path:
    """Compile the champion's PMML for batch scoring in the warehouse and put it where builds read it.

    ``lendguard build`` hands the file to dbt (``score_loans``); builds never need the registry.
    The query reads ``model_features`` (``feat_loans``) and keeps the loan id and group.
    """
    import mlflow  # noqa: PLC0415

    from ml.export.sql import compile_pmml, to_sql  # noqa: PLC0415

    registry.connect(paths)
    run_id = registry.load_version_run_id(paths, version)
    pmml = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{registry.BUNDLE_DIR}/model.pmml"))
    query = compile_pmml(pmml, relation=registry.MODEL_FEATURES_RELATION, keep=list(CHAMPION_SQL_KEEP))
    folder = champion_sql_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".model.duckdb.sql.tmp"
    tmp.write_text(to_sql(query, "duckdb"))
    tmp.replace(folder / "model.duckdb.sql")
    (folder / "version").write_text(version)
    return folder / "model.duckdb.sql"


# ----- human decision ----------------------------------------------------------------------------
def decide(
    paths: Paths, version: str, *, approve: bool, by: str, note: str, pipeline_run_id: str | None = None
) -> str:
    """Record a person's decision on ``version``; on approval, move ``champion`` to it.

    Refuses to approve a version whose gate did not pass. The previous champion keeps the alias
    ``previous_champion`` (the failover fallback). Returns the decision recorded.
    """
    from mlflow import MlflowClient  # noqa: PLC0415
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    if not by.strip() or not note.strip():
        raise ValueError("a decision needs the approver's name (--by) and a note (--note)")
    registry.connect(paths)
    client = MlflowClient()
    try:
        model_version = client.get_model_version(registry.MODEL_NAME, version)
    except MlflowException as exc:
        raise registry.ModelNotFoundError(f"model version {version} does not exist in {paths.tracking_uri}") from exc
    gate = model_version.tags.get("gate_result", "none")
    decision = "approved" if approve else "rejected"
    if approve and gate != GATE_PASSED:
        raise GateRefusedError(f"version {version} cannot be approved: its gate result is {gate!r}, not 'passed'")
    at = utc_now()
    datasets.land_rows(paths, datasets.APPROVALS, [{
        "model_version": version, "decision": decision, "decided_by": by, "note": note, "decided_at": at,
        "gate_result": gate, "pipeline_run_id": pipeline_run_id,
    }])
    for key, value in {"approval": decision, "approval_by": by, "approval_note": note,
                       "approval_at": at.isoformat() + "Z"}.items():
        client.set_model_version_tag(registry.MODEL_NAME, version, key, value)
    if approve:
        current = registry.alias_version(paths, CHAMPION)
        if current is not None and current != version:
            registry.set_alias(paths, PREVIOUS_CHAMPION, current)
        registry.set_alias(paths, CHAMPION, version)
        install_champion_sql(paths, version)
        log.info("version %s is now %s (approved by %s)", version, CHAMPION, by)
    if registry.alias_version(paths, CANDIDATE) == version:
        client.delete_registered_model_alias(registry.MODEL_NAME, CANDIDATE)
    return decision
