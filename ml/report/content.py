"""What a model report says, gathered for one version.

The numbers the gate judged come from the evaluation tables of the published snapshot, as the
evaluate stage landed them (``eval_metrics``, ``eval_thresholds``, ``eval_cost_curves``, the gate's
checks); only what no table holds is computed, on the test rows of the same snapshot
(:mod:`ml.report.compute`). When those rows are no longer the ones the version was evaluated on
(a later build changed the test split), the report says so instead of mixing the two silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml import registry
from ml.delivery import CANDIDATE, CHAMPION
from ml.metrics import OVERALL, fpr_gap
from ml.report import compute
from ml.train import LABEL, load_split
from warehouse.errors import LendguardError
from warehouse.loan_book import LoanBookSchema
from warehouse.marts import MartMissingError, MartReader, open_marts
from warehouse.paths import Paths
from warehouse.project import project_vars

MONOTONE_KEY = "monotone"
"""The loan-book contract's per-feature declaration of the direction risk must move in."""
MONOTONE_GATE_TABLE = "eval_gate_history"
"""Where a grid-sweep check of those declarations lands in the snapshot, if it does."""
AUC_TOLERANCE = 1e-9


class ReportError(LendguardError):
    """The version cannot be reported on (unknown, or not evaluated in the published snapshot)."""


@dataclass(frozen=True)
class PolicyOutcome:
    """One policy's overall result on the test split, and its FPR gap as the gate measures it."""

    policy: str
    deployed: bool
    cost: float
    cost_per_applicant: float
    fpr_gap: float | None
    fpr: float
    tpr: float
    positive_rate: float
    auc: float
    calibration_error: float


@dataclass(frozen=True)
class Monotone:
    """Declared monotone directions and the gate's sweep verdict per input, when it was gated."""

    declared: dict[str, str]
    results: pd.DataFrame | None

    def status(self) -> str:
        if not self.declared:
            return "none declared"
        if self.results is None or self.results.empty:
            return f"{len(self.declared)} declared, no grid-sweep result in the snapshot"
        verdict = next((c for c in ("passed", "holds", "is_monotone", "ok") if c in self.results.columns), None)
        if verdict is None:
            return f"{len(self.declared)} declared, {len(self.results)} result rows"
        holding = int(self.results[verdict].fillna(False).astype(bool).sum())
        return f"{holding} of {len(self.results)} checks hold ({len(self.declared)} declared)"


@dataclass(frozen=True)
class ModelReport:
    """Everything the page shows, and the short summary that travels with the approval request."""

    version: str
    run_id: str
    model: str
    family: str
    evaluated_at: str
    deployed_policy: str
    rules: dict[str, float]
    policies: list[PolicyOutcome]
    groups: pd.DataFrame
    champion_version: str | None
    champion: pd.DataFrame
    checks: pd.DataFrame
    thresholds: pd.DataFrame
    cost_curves: pd.DataFrame
    test_rows: int
    roc: pd.DataFrame
    champion_roc: pd.DataFrame | None
    calibration: pd.DataFrame
    coefficients: list[compute.Importance] | None
    permutation: list[compute.Importance]
    monotone: Monotone
    agreement: compute.Agreement | None
    warnings: list[str] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool | None:
        return None if self.checks.empty else bool(self.checks["passed"].all())

    def policy(self, name: str) -> PolicyOutcome:
        return next(p for p in self.policies if p.policy == name)

    def champion_outcome(self) -> dict[str, float | None] | None:
        """The champion's overall numbers on the same test rows (its deployed policy)."""
        if self.champion.empty:
            return None
        overall = self.champion[self.champion["group_name"] == OVERALL].iloc[0]
        return {"cost_per_applicant": _number(overall["cost_per_applicant"]), "auc": _number(overall["auc"]),
                "fpr_gap": _number(_gap(self.champion, self.rules["fpr_gap_min_repaid"])),
                "calibration_error": _number(overall["calibration_error"])}

    def summary(self) -> dict[str, Any]:
        """Strict JSON: what the terminal table and the approval request show of the report."""
        return {
            "version": self.version, "model": self.model, "deployed_policy": self.deployed_policy,
            "gate_passed": self.gate_passed, "max_fpr_gap": self.rules["max_fpr_gap"],
            "policies": [{"policy": p.policy, "deployed": p.deployed,
                          "cost_per_applicant": _number(p.cost_per_applicant), "fpr_gap": _number(p.fpr_gap),
                          "auc": _number(p.auc), "tpr": _number(p.tpr), "fpr": _number(p.fpr)}
                         for p in self.policies],
            "champion": None if self.champion_version is None else {
                "version": self.champion_version, **(self.champion_outcome() or {}),
                "changed_decisions": None if self.agreement is None else self.agreement.changed_share},
            "top_features": [i.feature for i in self.permutation[:3]],
            "monotone": self.monotone.status(),
            "warnings": list(self.warnings),
        }


    def highlights(self) -> list[str]:
        """The report's lines worth reading in the approval request itself."""
        gaps = ", ".join(f"{p.policy} {_text(p.fpr_gap)}" for p in self.policies)
        top = ", ".join(f"{i.feature} {i.value:.4f}" for i in self.permutation[:3])
        lines = [f"FPR gap by the gate's rule (groups with at least {self.rules['fpr_gap_min_repaid']:.0f} repaid "
                 f"test loans): {gaps}; limit {self.rules['max_fpr_gap']:.4f}",
                 f"most important inputs (drop in test AUC when shuffled): {top}",
                 f"monotone directions: {self.monotone.status()}"]
        if self.agreement is not None:
            lines.append(f"against champion {self.champion_version}: {self.agreement.changed_share:.1%} of the "
                         f"{self.agreement.rows:,} test decisions change")
        return lines + [f"warning: {w}" for w in self.warnings]


def _text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _primary_groups(candidate: pd.DataFrame) -> pd.DataFrame:
    """The per-group rows of the method the gate judged (the overall rows' method: self-reported when
    the book has a group column, else BISG's weighted groups)."""
    primary = candidate.loc[candidate["group_name"] == OVERALL, "method"].iloc[0]
    rows = candidate[(candidate["group_name"] != OVERALL) & (candidate["method"] == primary)]
    return rows.reset_index(drop=True)


def _gap(rows: pd.DataFrame, min_repaid: float) -> float | None:
    """The gate's FPR gap (groups with enough repaid test loans) over ``eval_metrics`` rows."""
    return _number(fpr_gap(rows.rename(columns={"group_name": "group"}), int(min_repaid)))


# ----- reading the snapshot ---------------------------------------------------------------------
def _tables(marts: MartReader, version: str) -> dict[str, pd.DataFrame]:
    frames = {
        "metrics": marts.frame("select * from eval_metrics where candidate_version = ? "
                               "order by role, policy, group_name", [version]),
        "thresholds": marts.frame("select * from eval_thresholds where model_version = ? "
                                  "order by policy, group_name", [version]),
        "curves": marts.frame("select * from eval_cost_curves where model_version = ? "
                              "order by policy, target_fpr", [version]),
        "checks": marts.frame("select check_name, subject, measured_value, limit_value, passed "
                              "from eval_gate_checks where model_version = ? order by check_name, subject",
                              [version]),
    }
    if frames["checks"].empty:  # the gate view shows the latest gated version; its history keeps every one
        frames["checks"] = marts.frame(
            "select check_name, subject, measured_value, limit_value, passed from eval_gate_history "
            "where model_version = ? and gated_at = (select max(gated_at) from eval_gate_history "
            "where model_version = ?) order by check_name, subject", [version, version])
    return frames


def _monotone_results(marts: MartReader, version: str) -> pd.DataFrame | None:
    """The gate's ``monotone_risk`` rows of ``version``'s latest gate: per declared input, the largest
    step of risk against its direction on the sweep, the limit and the verdict (None: never gated)."""
    try:
        return marts.frame(
            f"""select subject as feature, measured_value as largest_reversal, limit_value, passed
            from {MONOTONE_GATE_TABLE}
            where model_version = ? and check_name = 'monotone_risk'
              and gated_at = (select max(gated_at) from {MONOTONE_GATE_TABLE} where model_version = ?)
            order by subject""", [version, version])
    except MartMissingError:
        return None


def declared_monotone(loan_book: LoanBookSchema) -> dict[str, str]:
    """{feature: direction} for every feature the contract declares ``monotone:`` on."""
    declared = loan_book.to_dict()
    return {str(entry["name"]): str(entry[MONOTONE_KEY])
            for kind in ("numeric_features", "categorical_features", "derived_features")
            for entry in declared.get(kind, []) if entry.get(MONOTONE_KEY)}


# ----- gathering ----------------------------------------------------------------------------------
def gather(paths: Paths, version: str) -> ModelReport:
    """The report of ``version``: its landed evaluation, and what is computed on the test rows."""
    from mlflow import MlflowClient  # noqa: PLC0415 - about a second to import
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - as above

    with open_marts(paths) as marts:
        tables = _tables(marts, version)
        monotone_rows = _monotone_results(marts, version)
    metrics = tables["metrics"]
    if metrics.empty:
        raise ReportError(f"version {version} has no evaluation in the published snapshot: run "
                          "`lendguard pipeline run` (or `lendguard build` after its evaluate stage)")
    registry.connect(paths)
    try:
        bundle = registry.load_version(paths, version)
        run = MlflowClient().get_run(bundle.run_id)
    except MlflowException as exc:
        raise ReportError(f"version {version} is not in the registry at {paths.tracking_uri}: {exc.message}") from exc
    rules = project_vars()
    alpha = float(rules["fpr_ci_alpha"])
    candidate = compute.with_tpr_intervals(metrics[metrics["role"] == CANDIDATE], alpha)
    champion = compute.with_tpr_intervals(metrics[metrics["role"] == CHAMPION], alpha)
    limits = {name: float(rules[name]) for name in ("max_fpr_gap", "fpr_gap_min_repaid", "fpr_ci_alpha",
                                                  "cost_false_negative", "cost_false_positive")}
    policies = []
    for policy, rows in candidate.groupby("policy", sort=True):
        overall = rows[rows["group_name"] == OVERALL].iloc[0]
        policies.append(PolicyOutcome(
            policy=str(policy), deployed=bool(overall["is_deployed_policy"]), cost=float(overall["cost"]),
            cost_per_applicant=float(overall["cost_per_applicant"]), fpr_gap=_gap(rows, limits["fpr_gap_min_repaid"]),
            fpr=float(overall["fpr"]), tpr=float(overall["tpr"]), positive_rate=float(overall["positive_rate"]),
            auc=float(overall["auc"]), calibration_error=float(overall["calibration_error"]),
        ))
    deployed = next((p.policy for p in policies if p.deployed), bundle.policies.deployed)

    test = load_split(paths, bundle.loan_book, "test")
    y = test[LABEL].to_numpy()
    features = test[list(bundle.loan_book.feature_names)]
    p = bundle.pipeline.predict_proba(features)[:, 1]
    roc = compute.roc_points(y, p)
    warnings = _split_warnings(candidate, len(test), compute.area_under(roc))
    champion_version = str(champion["model_version"].iloc[0]) if not champion.empty else None
    champion_roc, agreement = None, None
    if champion_version is not None:
        champion_bundle = registry.load_version(paths, champion_version)
        champion_p = champion_bundle.pipeline.predict_proba(test[list(champion_bundle.loan_book.feature_names)])[:, 1]
        champion_roc = compute.roc_points(y, champion_p)
        groups = test["fairness_group"].to_numpy()
        agreement = compute.agreement(bundle.policies.active.flag(p, groups),
                                      champion_bundle.policies.active.flag(champion_p, groups))
    return ModelReport(
        version=version, run_id=bundle.run_id, model=str(run.data.params.get("model", "?")),
        family=str(run.data.params.get("family", "?")), evaluated_at=str(candidate["evaluated_at"].max()),
        deployed_policy=deployed, rules=limits, policies=policies,
        groups=_primary_groups(candidate),
        champion_version=champion_version, champion=champion.reset_index(drop=True), checks=tables["checks"],
        thresholds=tables["thresholds"], cost_curves=tables["curves"], test_rows=len(test), roc=roc,
        champion_roc=champion_roc, calibration=compute.calibration_points(y, p),
        coefficients=compute.coefficients(bundle.pipeline),
        permutation=compute.permutation_importance(bundle.pipeline, features, y),
        monotone=Monotone(declared_monotone(bundle.loan_book), monotone_rows), agreement=agreement,
        warnings=warnings,
    )


def _split_warnings(candidate: pd.DataFrame, test_rows: int, curve_auc: float) -> list[str]:
    """Say so when today's test rows are not the ones the evaluation tables were computed on."""
    overall = candidate[(candidate["group_name"] == OVERALL) & candidate["is_deployed_policy"]].iloc[0]
    evaluated_rows, evaluated_auc = int(overall["n"]), float(overall["auc"])
    if evaluated_rows == test_rows and np.isclose(evaluated_auc, curve_auc, rtol=0, atol=AUC_TOLERANCE):
        return []
    return [f"the published test split ({test_rows:,} rows, AUC {curve_auc:.4f}) is not the one this version "
            f"was evaluated on ({evaluated_rows:,} rows, AUC {evaluated_auc:.4f}): the tables show the evaluation, "
            "the ROC, calibration, importance and champion-agreement sections today's rows"]
