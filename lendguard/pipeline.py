"""``lendguard pipeline``: the continuous-delivery pipeline of the model, as data.

    train → thresholds → evaluate → gate → deploy-dev → test-dev → request-approval
          ⋯ a person runs `lendguard approve` (or `reject`) ⋯ → deploy-prod

``pipeline run`` runs the stages in order and returns once the run waits for a person (``--wait``
blocks until the decision instead, for CI servers' input steps). Every stage event (who, when,
inputs, outputs, result) is landed in the ``pipeline_runs`` dataset, so the warehouse holds the
audit trail; the run's own state is a JSON file under ``state/pipeline/`` written atomically.
A failed stage stops the run with its reason; running again starts a fresh run, so reruns are safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from ml import delivery, registry
from ml.train import load_split, train
from warehouse import datasets
from warehouse.errors import LendguardError
from warehouse.paths import Paths
from warehouse.project import project_vars
from warehouse.publish import connect_snapshot
from warehouse.settings import Settings, child_environment, get_settings, variable

log = logging.getLogger(__name__)

RUNNING, FAILED, AWAITING, DEPLOYED, REJECTED = "running", "failed", "awaiting_approval", "deployed", "rejected"
OPEN_STATES = (RUNNING, AWAITING)


class StageFailedError(LendguardError):
    """A stage could not do its job; the message is the reason recorded for the run."""


class PipelineBusyError(LendguardError):
    """Another run is still running or waiting for its approval."""


class DecisionTimeoutError(LendguardError, TimeoutError):
    """``--wait`` gave up: nobody approved or rejected the version in time."""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class PipelineRun:
    """The state of one pipeline run (persisted as JSON)."""

    run_id: str
    status: str
    started_at: str
    actor: str
    mlflow_run_id: str | None = None
    version: str | None = None
    dev_api_url: str | None = None
    reason: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)

    def stage(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.stages if s["stage"] == name), None)


# ----- persistence --------------------------------------------------------------------------------
def _runs_dir(paths: Paths) -> Path:
    return paths.state_dir / "pipeline"


def save(paths: Paths, run: PipelineRun) -> None:
    folder = _runs_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{run.run_id}.json.tmp"
    tmp.write_text(json.dumps(asdict(run), indent=2))
    tmp.replace(folder / f"{run.run_id}.json")


def load(paths: Paths, run_id: str) -> PipelineRun:
    return PipelineRun(**json.loads((_runs_dir(paths) / f"{run_id}.json").read_text()))


def latest(paths: Paths) -> PipelineRun | None:
    """The most recently started run (run ids sort by start time)."""
    runs = sorted(_runs_dir(paths).glob("*.json")) if _runs_dir(paths).exists() else []
    return load(paths, runs[-1].stem) if runs else None


def run_for_version(paths: Paths, version: str) -> PipelineRun | None:
    if not _runs_dir(paths).exists():
        return None
    for file in sorted(_runs_dir(paths).glob("*.json"), reverse=True):
        run = load(paths, file.stem)
        if run.version == version:
            return run
    return None


def _record(paths: Paths, run: PipelineRun, entry: dict[str, Any]) -> None:
    """Persist the run and land the stage event for the warehouse's audit trail."""
    save(paths, run)
    datasets.land_rows(paths, datasets.PIPELINE_RUNS, [{
        "pipeline_run_id": run.run_id, "stage": entry["stage"], "status": entry["status"],
        "started_at": datetime.fromisoformat(entry["started_at"]),
        "ended_at": datetime.fromisoformat(entry["ended_at"]) if entry.get("ended_at") else None,
        "actor": entry["actor"], "model_version": run.version, "mlflow_run_id": run.mlflow_run_id,
        "details": json.dumps(entry.get("details", {}), default=str),
    }])


# ----- the stages ---------------------------------------------------------------------------------
StageFn = Callable[[Paths, PipelineRun, Settings], dict[str, Any]]
"""A stage: the deployment's paths, the run it updates, and the process's settings."""


def stage_train(paths: Paths, run: PipelineRun, _settings: Settings) -> dict[str, Any]:
    outcome = train(paths)
    run.mlflow_run_id = outcome.run_id
    best = outcome.cv_results.iloc[0]
    return {"model": outcome.candidate.name, "cv_log_loss": float(best["log_loss_mean"]),
            "cv_auc": float(best["auc_mean"]), "training_rows": outcome.training_rows,
            "outliers_removed": outcome.outliers_removed,
            "candidates": outcome.cv_results[["candidate", "log_loss_mean", "auc_mean"]].to_dict("records")}


def stage_thresholds(paths: Paths, run: PipelineRun, _settings: Settings) -> dict[str, Any]:
    policies = delivery.thresholds_stage(paths, _require(run.mlflow_run_id, "train"))
    return {"deployed": policies.deployed,
            "policies": {name: policy.to_dict() for name, policy in policies.policies.items()}}


def stage_evaluate(paths: Paths, run: PipelineRun, _settings: Settings) -> dict[str, Any]:
    evaluation = delivery.evaluate_stage(paths, _require(run.mlflow_run_id, "train"))
    run.version = evaluation.version
    overall = {name: frame[frame["group"] == "__overall__"].iloc[0][
        ["auc", "fpr", "cost_per_applicant", "calibration_error"]].to_dict()
        for name, frame in evaluation.metrics.items()}
    return {"version": evaluation.version, "champion_version": evaluation.champion_version, "overall": overall}


def stage_gate(paths: Paths, run: PipelineRun, _settings: Settings) -> dict[str, Any]:
    result = delivery.gate_stage(paths, _require(run.version, "evaluate"), pipeline_run_id=run.run_id)
    details = {"passed": result.passed, "checks": _json_records(result.checks), "other_failures": result.other_failures}
    if not result.passed:
        raise StageFailedError("gate failed: " + "; ".join(result.describe_failures() or ["no evaluation rows"]))
    return details


def stage_deploy_dev(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    stop_dev_api(paths)
    url = start_api(paths, port=settings.pipeline.dev_api_port, alias=delivery.CANDIDATE, name="dev-api")
    run.dev_api_url = url
    return {"url": url, "alias": delivery.CANDIDATE}


def stage_test_dev(paths: Paths, run: PipelineRun, _settings: Settings) -> dict[str, Any]:
    """Integration tests and the performance requirement against the dev API."""
    from lendguard.replay import application_bodies, replay  # noqa: PLC0415

    url, version = _require(run.dev_api_url, "deploy-dev"), _require(run.version, "evaluate")
    rules = project_vars()
    bundle = registry.load_version(paths, version)
    loan_book = bundle.loan_book
    test = load_split(paths, loan_book, "test").head(int(rules["dev_test_requests"]))
    columns = ", ".join(["loan_id", f"fairness_group as {loan_book.group_column}", *loan_book.input_names])
    with connect_snapshot(paths) as con:
        con.register("test_ids", pa.table({"loan_id": test["loan_id"].to_numpy()}))
        raw = con.execute(f"select {columns} from stg_landing__loans join test_ids using (loan_id) "
                          "order by loan_id").fetch_arrow_table()
    bodies = application_bodies(raw, loan_book)
    answers: dict[str, dict[str, Any]] = {}
    result = replay(url, "dev-test", bodies, concurrency=8, collect=answers)
    problems = []
    if result.ok != len(bodies):
        problems.append(f"{len(bodies) - result.ok} of {len(bodies)} requests failed: {result.failures[:3]}")
    expected = bundle.pipeline.predict_proba(test[list(loan_book.feature_names)])[:, 1]
    served = np.array([answers.get(str(i), {}).get("probability", np.nan) for i in test["loan_id"]])
    max_difference = float(np.nanmax(np.abs(served - expected))) if answers else float("nan")
    if not max_difference <= 1e-9:
        problems.append(f"served probabilities differ from the registered model's by up to {max_difference:.3g}")
    versions = {a.get("model_version") for a in answers.values()}
    if versions != {version}:
        problems.append(f"the dev API served versions {sorted(map(str, versions))}, expected {version}")
    bad = httpx.post(f"{url}/v1/score", json={loan_book.input_names[0]: "not a number"}, timeout=10)
    if bad.status_code not in (400, 422):
        problems.append(f"an invalid application got HTTP {bad.status_code}, expected 400/422")
    limit = float(rules["dev_max_p99_ms"])
    if result.latency_ms_p99 > limit:
        problems.append(f"p99 latency {result.latency_ms_p99:.1f} ms exceeds the requirement of {limit:.0f} ms")
    details = {"requests": len(bodies), "ok": result.ok, "max_probability_difference": max_difference,
               "p50_ms": result.latency_ms_p50, "p99_ms": result.latency_ms_p99, "p99_limit_ms": limit,
               "throughput_per_s": len(bodies) / max(result.seconds, 1e-9), "invalid_request_status": bad.status_code}
    if problems:
        raise StageFailedError("dev tests failed: " + "; ".join(problems))
    return details


def stage_request_approval(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    from ml.notify import approval_request, send  # noqa: PLC0415

    version = _require(run.version, "evaluate")
    with connect_snapshot(paths) as con:
        metrics = con.execute("select * from eval_metrics where candidate_version = ?", [version]).df()
        checks = con.execute("select * from eval_gate_checks where model_version = ?", [version]).df()
    candidate = metrics[metrics["role"] == "candidate"]
    champion = metrics[(metrics["role"] == "champion") & (metrics["group_name"] == "__overall__")]
    overall = candidate[(candidate["group_name"] == "__overall__") & candidate["is_deployed_policy"]].iloc[0]
    groups = candidate[candidate["group_name"] != "__overall__"]
    notification = approval_request(
        model_name=registry.MODEL_NAME, version=version, run_id=_require(run.mlflow_run_id, "train"),
        run_url=f"{paths.tracking_uri} (experiment {registry.EXPERIMENT}, run {run.mlflow_run_id})",
        dev_api_url=run.dev_api_url or "(not deployed)", gate_passed=bool(checks["passed"].all()),
        gate_tests=[(f"{r.check_name} ({r.subject})", _plain(r.measured_value), _plain(r.limit_value))
                    for r in checks.itertuples()],
        auc=float(overall["auc"]), cost_per_applicant=float(overall["cost_per_applicant"]),
        calibration_error=float(overall["calibration_error"]),
        fpr_by_policy={policy: dict(zip(frame["group_name"], frame["fpr"], strict=True))
                       for policy, frame in groups.groupby("policy")},
        cost_by_policy={r.policy: float(r.cost_per_applicant)
                        for r in candidate[candidate["group_name"] == "__overall__"].itertuples()},
        champion_cost_per_applicant=float(champion["cost_per_applicant"].iloc[0]) if len(champion) else None,
        deployed_policy=str(overall["policy"]),
        answer_url=settings.pipeline.approval_url,
    )
    deliveries = send(notification, settings.notify)
    run.status = AWAITING
    return {"notified": [asdict(d) for d in deliveries], "subject": notification.subject,
            "approve": f"lendguard approve {version} --by NAME --note TEXT",
            "reject": f"lendguard reject {version} --by NAME --note TEXT"}


def stage_deploy_prod(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    """The alias has moved (by the approval); wait for the production API to serve it, if it is known."""
    version = _require(run.version, "evaluate")
    details: dict[str, Any] = {"alias": delivery.CHAMPION, "version": version}
    prod_url = settings.pipeline.prod_api_url
    if prod_url:
        details["prod_api_url"] = prod_url
        details["serving"] = _wait_for_version(prod_url, version,
                                               timeout=settings.pipeline.prod_switch_timeout_seconds)
        if details["serving"] != version:
            raise StageFailedError(f"the production API at {prod_url} still serves {details['serving']}, not {version}")
    else:
        details["note"] = (f"{variable('pipeline.prod_api_url')} not set: "
                           "production APIs switch at their next alias poll")
    stop_dev_api(paths)
    return details


STAGES: tuple[tuple[str, StageFn], ...] = (
    ("train", stage_train),
    ("thresholds", stage_thresholds),
    ("evaluate", stage_evaluate),
    ("gate", stage_gate),
    ("deploy-dev", stage_deploy_dev),
    ("test-dev", stage_test_dev),
    ("request-approval", stage_request_approval),
    ("deploy-prod", stage_deploy_prod),
)
"""The pipeline, in order. ``deploy-prod`` runs only after a person approved."""
AUTOMATIC = tuple(name for name, _ in STAGES if name != "deploy-prod")
STAGE_NAMES = tuple(name for name, _ in STAGES)


def _require(value: str | None, stage: str) -> str:
    if value is None:
        raise StageFailedError(f"stage {stage!r} has not run in this pipeline run")
    return value


def _plain(value: Any) -> Any:
    """numpy scalars and NaN to JSON-friendly Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _json_records(frame: Any) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


# ----- running ------------------------------------------------------------------------------------
def run_stage(
    paths: Paths, run: PipelineRun, name: str, who: str | None = None, *, settings: Settings | None = None
) -> PipelineRun:
    """Run one stage of ``run``, recording its start and end; raise StageFailedError on failure.

    ``settings`` left as None are this process's (``warehouse.settings.get_settings``), here and below.
    """
    settings = settings or get_settings()
    function = dict(STAGES)[name]
    entry: dict[str, Any] = {"stage": name, "status": "running", "started_at": utc_now().isoformat(),
                             "ended_at": None, "actor": who or settings.pipeline.actor, "details": {}}
    run.stages = [s for s in run.stages if s["stage"] != name] + [entry]
    _record(paths, run, entry)
    try:
        entry["details"] = function(paths, run, settings)
    except Exception as exc:
        entry.update(status="failed", ended_at=utc_now().isoformat(), details={"error": f"{exc}"})
        run.status, run.reason = FAILED, f"{name}: {exc}"
        _record(paths, run, entry)
        if isinstance(exc, StageFailedError):
            raise
        raise StageFailedError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc
    entry["status"] = "waiting" if run.status == AWAITING else "succeeded"
    entry["ended_at"] = None if run.status == AWAITING else utc_now().isoformat()
    _record(paths, run, entry)
    return run


def start_run(paths: Paths, *, supersede: bool = False, settings: Settings | None = None) -> PipelineRun:
    settings = settings or get_settings()
    current = latest(paths)
    if current is not None and current.status in OPEN_STATES:
        if not supersede:
            raise PipelineBusyError(
                f"pipeline run {current.run_id} is {current.status}"
                + (f" (version {current.version}: approve or reject it)" if current.status == AWAITING else "")
                + "; pass --supersede to abandon it"
            )
        current.status, current.reason = FAILED, "superseded by a new run"
        save(paths, current)
    run = PipelineRun(run_id=f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", status=RUNNING,
                      started_at=utc_now().isoformat(), actor=settings.pipeline.actor)
    save(paths, run)
    return run


def run_pipeline(
    paths: Paths, *, supersede: bool = False, on_stage: Callable[[str], None] | None = None,
    settings: Settings | None = None,
) -> PipelineRun:
    """Run every automatic stage; return the run (awaiting approval, or raise on failure)."""
    settings = settings or get_settings()
    run = start_run(paths, supersede=supersede, settings=settings)
    for name in AUTOMATIC:
        if on_stage is not None:
            on_stage(name)
        run_stage(paths, run, name, settings=settings)
    return run


def wait_for_decision(paths: Paths, run_id: str, timeout: float | None = None, poll: float = 2.0) -> PipelineRun:
    """Block until a person decided and the run ended (deployed, rejected or failed); another process
    records the decision, and an approval's deploy-prod stage runs before the run ends."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = load(paths, run_id)
        if run.status not in OPEN_STATES:
            return run
        if deadline is not None and time.monotonic() > deadline:
            raise DecisionTimeoutError(f"no decision on version {run.version} within {timeout:.0f} s")
        time.sleep(poll)


def decide(
    paths: Paths, version: str, *, approve: bool, by: str, note: str, settings: Settings | None = None
) -> PipelineRun | None:
    """Record the decision; on approval deploy to production (the run's last stage)."""
    run = run_for_version(paths, version)
    pipeline_run_id = run.run_id if run is not None else None
    delivery.decide(paths, version, approve=approve, by=by, note=note, pipeline_run_id=pipeline_run_id)
    if run is None:
        return None
    waiting = run.stage("request-approval")
    if waiting is not None and waiting["status"] == "waiting":
        waiting.update(status="succeeded", ended_at=utc_now().isoformat(),
                       details={**waiting.get("details", {}), "decision": "approved" if approve else "rejected",
                                "decided_by": by})
        _record(paths, run, waiting)
    if approve:
        run.status = RUNNING
        run_stage(paths, run, "deploy-prod", who=by, settings=settings)
        run.status = DEPLOYED
    else:
        run.status, run.reason = REJECTED, f"rejected by {by}: {note}"
        stop_dev_api(paths)
    save(paths, run)
    return run


# ----- API processes --------------------------------------------------------------------------------
def _pid_file(paths: Paths, name: str) -> Path:
    return paths.state_dir / f"{name}.pid"


def start_api(paths: Paths, *, port: int, alias: str, name: str, timeout: float = 120.0) -> str:
    """Start ``lendguard serve`` for ``alias`` as a detached process; wait until it is ready.

    Its prediction log goes to a landing zone of its own, so test traffic never mixes with
    production's.
    """
    log_path = paths.data_dir / f"{name}.log"
    landing = paths.data_dir / name / "landing"
    env = child_environment({variable("paths.landing"): str(landing), variable("api.writer_id"): name})
    with log_path.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "lendguard.cli", "serve", "--port", str(port), "--alias", alias],
            stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    _pid_file(paths, name).write_text(str(process.pid))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StageFailedError(f"{name} exited with code {process.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return url
        time.sleep(0.25)
    stop_dev_api(paths, name)
    raise StageFailedError(f"{name} was not ready within {timeout:.0f} s; see {log_path}")


def stop_dev_api(paths: Paths, name: str = "dev-api") -> None:
    """Stop the dev API this deployment started, if it still runs."""
    pid_file = _pid_file(paths, name)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(120):
            if _exited(pid):
                break
            time.sleep(0.25)
    pid_file.unlink(missing_ok=True)


def _exited(pid: int) -> bool:
    """Whether ``pid`` has ended (reaping it when it is our own child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: probe it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return done == pid


def _wait_for_version(url: str, version: str, timeout: float) -> str | None:
    deadline, serving = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            serving = str(httpx.get(f"{url}/readyz", timeout=2.0).json().get("model_version"))
            if serving == version:
                return serving
        time.sleep(1.0)
    return serving

