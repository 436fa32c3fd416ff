"""Stage ``request-approval``, and a person's answer to it.

The request consumes the version's landed evaluation (``eval_metrics``) and gate checks
(``eval_gate_checks``) from the published snapshot and produces the message approvers get (email
and/or webhook: metrics, FPR by group under both policies, cost against the champion, the link to
the version's model report, the commands to answer with) and its deliveries. The decision consumes
a person's name and note, the version's gate verdict and its pipeline run's dev stages (an approval
follows deploy-dev, test-dev and request-approval, each passed; a version is decided once); it
produces the ``approvals`` row and the version's approval tags, and on approval moves ``champion``
(``deploy_prod.promote``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from ml import registry
from ml.delivery import CANDIDATE, GATE_PASSED, utc_now
from ml.delivery.deploy_prod import promote
from ml.delivery.gate import plain
from ml.fairness import SINGLE_THRESHOLD
from ml.metrics import OVERALL
from ml.notify import Delivery, Notification, ReportReference, approval_request, send
from warehouse import datasets
from warehouse.errors import LendguardError
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.settings import NotifySettings

log = logging.getLogger(__name__)

APPROVED, REJECTED = "approved", "rejected"
DEV_STAGES = ("deploy-dev", "test-dev", "request-approval")
"""The stages between the gate and the approval, in order: each must have passed before an approval."""
PASSED = ("succeeded", "waiting")
"""Stage states that count as passed (``request-approval`` waits for the very decision)."""


class GateRefusedError(LendguardError):
    """A version without a passed gate may not be approved."""


class DevStagesMissingError(LendguardError):
    """A version whose dev stages did not all pass may not be approved."""


class AlreadyDecidedError(LendguardError):
    """A version is decided once: a person's decision is never overwritten."""


class UnknownVersionError(LendguardError, LookupError):
    """The registry has no such version."""


class IncompleteDecisionError(LendguardError, ValueError):
    """A decision without the approver's name or a note."""


@dataclass(frozen=True)
class ApprovalRequest:
    version: str
    notification: Notification
    deliveries: list[Delivery]


def answer_commands(version: str) -> dict[str, str]:
    """The commands a person answers the request with."""
    return {"approve": f"lendguard approve {version} --by NAME --note TEXT",
            "reject": f"lendguard reject {version} --by NAME --note TEXT"}


def approval_notification(
    *, version: str, mlflow_run_id: str, tracking_uri: str, dev_api_url: str | None,
    metrics: pd.DataFrame, checks: pd.DataFrame, answer_url: str | None = None,
    report: ReportReference | None = None,
) -> Notification:
    """The approvers' message from the version's ``eval_metrics`` and ``eval_gate_checks`` rows."""
    candidate = metrics[metrics["role"] == "candidate"]
    champion = metrics[(metrics["role"] == "champion") & (metrics["group_name"] == OVERALL)]
    overall = candidate[(candidate["group_name"] == OVERALL) & candidate["is_deployed_policy"]].iloc[0]
    # the groups the gate judged: the primary method's (self-reported when the book has a group column)
    groups = candidate[(candidate["group_name"] != OVERALL) & (candidate["method"] == overall["method"])]
    return approval_request(
        model_name=registry.MODEL_NAME, version=version, run_id=mlflow_run_id,
        run_url=f"{tracking_uri} (experiment {registry.EXPERIMENT}, run {mlflow_run_id})",
        dev_api_url=dev_api_url or "(not deployed)", gate_passed=bool(checks["passed"].all()),
        gate_tests=[(f"{r.check_name} ({r.subject})", plain(r.measured_value), plain(r.limit_value))
                    for r in checks.itertuples()],
        auc=float(overall["auc"]), cost_per_applicant=float(overall["cost_per_applicant"]),
        calibration_error=float(overall["calibration_error"]),
        fpr_by_policy={policy: dict(zip(frame["group_name"], frame["fpr"], strict=True))
                       for policy, frame in groups.groupby("policy")},
        cost_by_policy={r.policy: float(r.cost_per_applicant)
                        for r in candidate[candidate["group_name"] == OVERALL].itertuples()},
        champion_cost_per_applicant=float(champion["cost_per_applicant"].iloc[0]) if len(champion) else None,
        deployed_policy=str(overall["policy"]),
        answer_url=answer_url, report=report,
        group_thresholds=bool((candidate["policy"] != SINGLE_THRESHOLD).any()),  # none without a group column
    )


def request_approval(
    paths: Paths, version: str, *, mlflow_run_id: str, dev_api_url: str | None, notify: NotifySettings,
    answer_url: str | None = None, report: ReportReference | None = None,
) -> ApprovalRequest:
    """Notify the approvers of ``version`` (with the link to its model report, when there is one);
    a failed delivery is reported, never raised."""
    with open_marts(paths) as marts:
        metrics = marts.frame("select * from eval_metrics where candidate_version = ?", [version])
        checks = marts.frame("select * from eval_gate_checks where model_version = ?", [version])
    notification = approval_notification(version=version, mlflow_run_id=mlflow_run_id,
                                         tracking_uri=paths.tracking_uri, dev_api_url=dev_api_url,
                                         metrics=metrics, checks=checks, answer_url=answer_url, report=report)
    return ApprovalRequest(version, notification, send(notification, notify))


def details(request: ApprovalRequest) -> dict[str, Any]:
    """What the pipeline records: where the request went, its subject, how to answer."""
    return {"notified": [asdict(d) for d in request.deliveries], "subject": request.notification.subject,
            **answer_commands(request.version)}


def earlier_decision(paths: Paths, version: str) -> tuple[str, str, datetime] | None:
    """The decision already landed for ``version`` (decision, by whom, when), if any."""
    rows = datasets.query_landed(paths, datasets.APPROVALS, "select decision, decided_by, decided_at from landed "
                                 "where model_version = ? order by decided_at limit 1", [version])
    return rows[0] if rows else None


def dev_stage_states(paths: Paths, version: str, pipeline_run_id: str) -> dict[str, str]:
    """The latest state of each stage of ``pipeline_run_id`` that worked on ``version`` (landed events).

    A stage that starts waiting lands ``running`` then ``waiting`` with the same times: the state
    that follows ``running`` wins the tie (as in ``dlv_pipeline_stages``)."""
    return dict(datasets.query_landed(paths, datasets.PIPELINE_RUNS, """
        select stage, status from landed
        where pipeline_run_id = ? and model_version = ?
        qualify row_number() over (
            partition by stage
            order by coalesce(ended_at, started_at) desc, started_at desc, status = 'running') = 1
    """, [pipeline_run_id, version]))


def missing_dev_stages(states: dict[str, str]) -> list[str]:
    """The dev stages that did not pass, in pipeline order, each with what happened instead."""
    return [f"{stage} {states[stage]}" if stage in states else f"{stage} never ran"
            for stage in DEV_STAGES if states.get(stage) not in PASSED]


def check_decidable(
    paths: Paths, version: str, *, approve: bool, gate: str, pipeline_run_id: str | None
) -> None:
    """Raise unless a person may decide on ``version`` now: never twice; an approval only after a
    passed gate and passed dev stages (in the pipeline run that is waiting for the decision)."""
    earlier = earlier_decision(paths, version)
    if earlier is not None:
        decision, by, at = earlier
        raise AlreadyDecidedError(f"version {version} was already {decision} by {by} at {at:%Y-%m-%d %H:%M:%S} UTC; "
                                  "a decision is final (a new candidate comes from a new pipeline run)")
    if not approve:
        return
    if gate != GATE_PASSED:
        raise GateRefusedError(f"version {version} cannot be approved: its gate result is {gate!r}, not 'passed'")
    if pipeline_run_id is None:
        missing = [f"{stage} never ran" for stage in DEV_STAGES]
    else:
        missing = missing_dev_stages(dev_stage_states(paths, version, pipeline_run_id))
    if missing:
        where = "no pipeline run" if pipeline_run_id is None else f"pipeline run {pipeline_run_id}"
        first = missing[0].split(" ", 1)[0]
        raise DevStagesMissingError(
            f"version {version} cannot be approved: its dev stages did not pass ({where}): {', '.join(missing)}; "
            f"run `lendguard pipeline stage {first}` and the stages after it, or `lendguard pipeline run`")


def decide(
    paths: Paths, version: str, *, approve: bool, by: str, note: str, pipeline_run_id: str | None = None
) -> str:
    """Record a person's decision on ``version``; on approval, make it the champion.

    Refuses a version already decided, and an approval of a version whose gate or dev stages did
    not pass (``check_decidable``). The previous champion keeps the alias ``previous_champion``
    (the failover fallback). Returns the decision recorded.
    """
    from mlflow import MlflowClient  # noqa: PLC0415 - about a second to import
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - as above

    if not by.strip() or not note.strip():
        raise IncompleteDecisionError("a decision needs the approver's name (--by) and a note (--note)")
    registry.connect(paths)
    client = MlflowClient()
    try:
        model_version = client.get_model_version(registry.MODEL_NAME, version)
    except MlflowException as exc:
        raise UnknownVersionError(f"model version {version} does not exist in {paths.tracking_uri}") from exc
    gate = model_version.tags.get("gate_result", "none")
    decision = APPROVED if approve else REJECTED
    check_decidable(paths, version, approve=approve, gate=gate, pipeline_run_id=pipeline_run_id)
    at = utc_now()
    datasets.land_rows(paths, datasets.APPROVALS, [{
        "model_version": version, "decision": decision, "decided_by": by, "note": note, "decided_at": at,
        "gate_result": gate, "pipeline_run_id": pipeline_run_id,
    }])
    for key, value in {"approval": decision, "approval_by": by, "approval_note": note,
                       "approval_at": at.isoformat() + "Z"}.items():
        client.set_model_version_tag(registry.MODEL_NAME, version, key, value)
    if approve:
        promote(paths, version)
        log.info("version %s is the champion (approved by %s)", version, by)
    if registry.alias_version(paths, CANDIDATE) == version:
        client.delete_registered_model_alias(registry.MODEL_NAME, CANDIDATE)
    return decision
