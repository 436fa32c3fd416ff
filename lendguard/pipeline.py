"""``lendguard pipeline``: the continuous-delivery pipeline of the model, as data.

    train → thresholds → evaluate → gate → deploy-dev → test-dev → request-approval
          ⋯ a person runs `lendguard approve` (or `reject`) ⋯ → deploy-prod

The pipeline is ``STAGES``, an ordered tuple of stages (name, function, whether it runs by itself);
what each stage computes lives in ``ml.delivery`` (one module per stage), this module runs them
and keeps the books. ``pipeline run`` runs the automatic stages in order and returns once the run
waits for a person (``--wait`` blocks until the decision instead, for CI servers' input steps).
Every stage event (who, when, inputs, outputs, result) is landed in the ``pipeline_runs``
dataset, so the warehouse holds the audit trail; the run's own state is a JSON file under
``state/pipeline/`` written atomically. A failed stage stops the run with its reason; running
again starts a fresh run, so reruns are safe. The dev API (deploy-dev) is a process of its own,
started here and stopped by whichever later command ends the run (approve, reject, deploy-prod, or
a failed stage).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from lendguard.processes import PortInUseError, ensure_port_free, serve_command, start_server, stop_pid
from lendguard.replay import application_bodies, replay
from ml import registry
from ml.candidates import choose
from ml.delivery import (
    CANDIDATE,
    CHAMPION,
    approval,
    dev_tests,
    evaluation,
    gate,
    thresholds,
    training,
    utc_now,
)
from ml.delivery.deploy_prod import wait_for_serving
from ml.notify import ReportReference
from ml.report.writer import write_report
from ml.train import train
from warehouse import datasets
from warehouse.errors import LendguardError
from warehouse.paths import Paths
from warehouse.settings import Settings, get_settings, variable

RUNNING, FAILED, AWAITING, DEPLOYED, REJECTED = "running", "failed", "awaiting_approval", "deployed", "rejected"
OPEN_STATES = (RUNNING, AWAITING)
DEV_API = "dev-api"
"""The dev API's name: its pid file, log file, landing zone and prediction-log writer id."""
DEV_TEST_CONCURRENCY = 8


class StageFailedError(LendguardError):
    """A stage could not do its job; the message is the reason recorded for the run."""


class PipelineBusyError(LendguardError):
    """Another run is still running or waiting for its approval."""


class NotApprovedError(LendguardError):
    """deploy-prod was asked for a version no one approved."""


class DecisionTimeoutError(LendguardError, TimeoutError):
    """No one decided within the time a caller was willing to wait."""


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
    candidates: list[str] | None = None
    """The candidates the train stage cross-validates, by name; None: the whole search space."""
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
StageFunction = Callable[[Paths, PipelineRun, Settings], dict[str, Any]]
"""A stage: does its work for the run (setting what later stages read on it); returns the details recorded."""


def stage_train(paths: Paths, run: PipelineRun, _: Settings) -> dict[str, Any]:
    outcome = train(paths, choose(run.candidates))
    run.mlflow_run_id = outcome.run_id
    return training.details(outcome)


def stage_thresholds(paths: Paths, run: PipelineRun, _: Settings) -> dict[str, Any]:
    return thresholds.details(thresholds.choose_and_log(paths, _require(run.mlflow_run_id, "train")))


def stage_evaluate(paths: Paths, run: PipelineRun, _: Settings) -> dict[str, Any]:
    result = evaluation.evaluate_and_register(paths, _require(run.mlflow_run_id, "train"))
    run.version = result.version
    return evaluation.details(result)


def stage_gate(paths: Paths, run: PipelineRun, _: Settings) -> dict[str, Any]:
    result = gate.run_gate(paths, _require(run.version, "evaluate"), pipeline_run_id=run.run_id)
    if not result.passed:
        raise StageFailedError("gate failed: " + "; ".join(result.describe_failures() or ["no evaluation rows"]))
    return gate.details(result)


def stage_deploy_dev(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    stop_dev_api(paths)
    run.dev_api_url = start_dev_api(paths, port=settings.pipeline.dev_api_port)
    return {"url": run.dev_api_url, "alias": CANDIDATE}


def stage_test_dev(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    """Integration tests and the performance requirement against the dev API."""
    url, version = _require(run.dev_api_url, "deploy-dev"), _require(run.version, "evaluate")
    cases = dev_tests.load_cases(paths, version, dev_tests.default_requests())
    limit = settings.pipeline.dev_max_p99_ms
    limit = dev_tests.default_max_p99_ms() if limit is None else limit
    report = dev_tests.judge(cases, exercise_dev_api(url, cases), max_p99_ms=limit)
    if not report.passed:
        raise StageFailedError("dev tests failed: " + "; ".join(report.problems))
    return report.details


def stage_request_approval(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    version = _require(run.version, "evaluate")
    report, link = write_report(paths, version, log_to_mlflow=True)  # the approver reads it before deciding
    request = approval.request_approval(
        paths, version, mlflow_run_id=_require(run.mlflow_run_id, "train"),
        dev_api_url=run.dev_api_url, notify=settings.notify, answer_url=settings.pipeline.approval_url,
        report=ReportReference(link.path, link.artifact_uri, report.highlights()),
    )
    run.status = AWAITING
    return {**approval.details(request), "report": {**asdict(link), "summary": report.summary()}}


def stage_deploy_prod(paths: Paths, run: PipelineRun, settings: Settings) -> dict[str, Any]:
    """The alias has moved (by the approval); wait for the production API to serve it, if it is known."""
    version = _require(run.version, "evaluate")
    details: dict[str, Any] = {"alias": CHAMPION, "version": version}
    if settings.pipeline.prod_api_url:
        details["prod_api_url"] = settings.pipeline.prod_api_url
        details["serving"] = wait_for_serving(settings.pipeline.prod_api_url, version,
                                                 timeout=settings.pipeline.prod_switch_timeout_seconds)
        if details["serving"] != version:
            raise StageFailedError(f"the production API at {settings.pipeline.prod_api_url} still serves "
                                   f"{details['serving']}, not {version}")
    else:
        details["note"] = (f"{variable('pipeline.prod_api_url')} not set: "
                           "production APIs switch at their next alias poll")
    stop_dev_api(paths)
    return details


class Stage(NamedTuple):
    name: str
    run: StageFunction
    automatic: bool = True
    """False: it waits for a person (deploy-prod follows an approval)."""


STAGES: tuple[Stage, ...] = (
    Stage("train", stage_train),
    Stage("thresholds", stage_thresholds),
    Stage("evaluate", stage_evaluate),
    Stage("gate", stage_gate),
    Stage("deploy-dev", stage_deploy_dev),
    Stage("test-dev", stage_test_dev),
    Stage("request-approval", stage_request_approval),
    Stage("deploy-prod", stage_deploy_prod, automatic=False),
)
"""The pipeline, in order; everything that lists stages derives from it."""
_BY_NAME = {stage.name: stage for stage in STAGES}


def _require(value: str | None, stage: str) -> str:
    if value is None:
        raise StageFailedError(f"stage {stage!r} has not run in this pipeline run")
    return value


# ----- running ------------------------------------------------------------------------------------
def run_stage(
    paths: Paths, run: PipelineRun, name: str, who: str | None = None, settings: Settings | None = None
) -> PipelineRun:
    """Run one stage of ``run``, recording its start and end; raise StageFailedError on failure."""
    settings = get_settings() if settings is None else settings
    stage = _BY_NAME[name]
    entry: dict[str, Any] = {"stage": name, "status": "running", "started_at": utc_now().isoformat(),
                             "ended_at": None, "actor": who or settings.pipeline.actor, "details": {}}
    run.stages = [s for s in run.stages if s["stage"] != name] + [entry]
    _record(paths, run, entry)
    try:
        entry["details"] = stage.run(paths, run, settings)
    except Exception as exc:
        entry.update(status="failed", ended_at=utc_now().isoformat(), details={"error": f"{exc}"})
        run.status, run.reason = FAILED, f"{name}: {exc}"
        _record(paths, run, entry)
        stop_dev_api(paths)  # the run has ended: nothing later would stop the dev API it started
        if isinstance(exc, StageFailedError):
            raise
        raise StageFailedError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc
    entry["status"] = "waiting" if run.status == AWAITING else "succeeded"
    entry["ended_at"] = None if run.status == AWAITING else utc_now().isoformat()
    _record(paths, run, entry)
    return run


def start_run(
    paths: Paths, *, supersede: bool = False, settings: Settings | None = None, candidates: Sequence[str] | None = None,
) -> PipelineRun:
    """A new run (nothing run yet); PipelineBusyError while another is open, unless ``supersede``.

    ``candidates`` names the ones its train stage cross-validates (None: the whole search space);
    an unknown name raises ``ml.candidates.CandidateError`` before anything is recorded.
    """
    settings = get_settings() if settings is None else settings
    chosen = None if candidates is None else [candidate.name for candidate in choose(candidates)]
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
                      started_at=utc_now().isoformat(), actor=settings.pipeline.actor, candidates=chosen)
    save(paths, run)
    return run


def run_until(
    paths: Paths, last: str, *, supersede: bool = False, on_stage: Callable[[str], None] | None = None,
    settings: Settings | None = None, candidates: Sequence[str] | None = None,
) -> PipelineRun:
    """Start a run and run its stages in order up to and including ``last`` (an automatic stage);
    return the run, or raise StageFailedError when one fails (the run then records the reason).

    When deploy-dev is among them, its port is checked before anything runs: a busy port is a
    one-line PortInUseError now, not minutes later after training.
    """
    settings = get_settings() if settings is None else settings
    names = [stage.name for stage in STAGES if stage.automatic]
    if last not in names:
        raise ValueError(f"{last!r} is not an automatic stage: {names}")
    stages = names[: names.index(last) + 1]
    if "deploy-dev" in stages:
        _check_dev_port(paths, settings.pipeline.dev_api_port)
    run = start_run(paths, supersede=supersede, settings=settings, candidates=candidates)
    for name in stages:
        if on_stage is not None:
            on_stage(name)
        run_stage(paths, run, name, settings=settings)
    return run


def _check_dev_port(paths: Paths, port: int) -> None:
    """PortInUseError unless ``port`` is free or held by this deployment's dev API (deploy-dev replaces it)."""
    try:
        ensure_port_free(port, fix=f"stop it or give the dev API another port ({variable('pipeline.dev_api_port')})")
    except PortInUseError as busy:
        pid_file = _pid_file(paths, DEV_API)
        if busy.holder_pid is None or not pid_file.exists() or int(pid_file.read_text()) != busy.holder_pid:
            raise


def run_pipeline(
    paths: Paths, *, supersede: bool = False, on_stage: Callable[[str], None] | None = None,
    settings: Settings | None = None, candidates: Sequence[str] | None = None,
) -> PipelineRun:
    """Run every automatic stage; return the run (awaiting approval, or raise on failure)."""
    last = [stage.name for stage in STAGES if stage.automatic][-1]
    return run_until(paths, last, supersede=supersede, on_stage=on_stage, settings=settings, candidates=candidates)


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
    decision = approval.decide(paths, version, approve=approve, by=by, note=note, pipeline_run_id=pipeline_run_id)
    if run is None:
        return None
    waiting = run.stage("request-approval")
    if waiting is not None and waiting["status"] == "waiting":
        waiting.update(status="succeeded", ended_at=utc_now().isoformat(),
                       details={**waiting.get("details", {}), "decision": decision, "decided_by": by})
        _record(paths, run, waiting)
    if approve:
        _deploy(paths, run, who=by, settings=settings)
    else:
        run.status, run.reason = REJECTED, f"rejected by {by}: {note}"
        stop_dev_api(paths)
        save(paths, run)
    return run


def deploy_prod(paths: Paths, run: PipelineRun, settings: Settings | None = None) -> bool:
    """Run ``run``'s deploy-prod stage on its own (CI servers call it after the approval): True when
    it deployed now, False when the run was deployed already. NotApprovedError when ``champion``
    is not the run's version (``lendguard approve`` deploys; this confirms or retries that)."""
    if run.status == DEPLOYED:
        return False
    if run.version is None or registry.alias_version(paths, CHAMPION) != run.version:
        raise NotApprovedError(f"version {run.version} is not approved: deploy-prod follows "
                               "`lendguard approve VERSION --by NAME --note TEXT`")
    _deploy(paths, run, who=None, settings=settings)
    return True


def _deploy(paths: Paths, run: PipelineRun, *, who: str | None, settings: Settings | None) -> None:
    run.status = RUNNING
    run_stage(paths, run, "deploy-prod", who=who, settings=settings)
    run.status = DEPLOYED
    save(paths, run)


# ----- the dev API ----------------------------------------------------------------------------------
def _pid_file(paths: Paths, name: str) -> Path:
    return paths.state_dir / f"{name}.pid"


def start_dev_api(paths: Paths, *, port: int, alias: str = CANDIDATE, name: str = DEV_API) -> str:
    """Start ``lendguard serve`` for ``alias`` as a detached process (a later command stops it by its
    pid file); return its URL once it is ready.

    It serves this deployment's registry and logs to a landing zone of its own, so test traffic
    never mixes with production's.
    """
    env = {
        variable("paths.data_dir"): str(paths.data_dir), variable("paths.warehouse"): str(paths.warehouse),
        variable("paths.snapshot"): str(paths.snapshot), variable("paths.tracking_uri"): paths.tracking_uri,
        variable("paths.landing"): str(paths.data_dir / name / "landing"), variable("api.writer_id"): name,
    }
    server = start_server(serve_command(port, alias), port=port, log_path=paths.data_dir / f"{name}.log",
                          env=env, name=name, new_session=True)
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    _pid_file(paths, name).write_text(str(server.pid))
    return server.url


def stop_dev_api(paths: Paths, name: str = DEV_API) -> None:
    """Stop the dev API this deployment started, if it still runs."""
    pid_file = _pid_file(paths, name)
    if pid_file.exists():
        stop_pid(int(pid_file.read_text()))
        pid_file.unlink(missing_ok=True)


def exercise_dev_api(url: str, cases: dev_tests.DevTestCases) -> dev_tests.DevTestAnswers:
    """Send the dev tests' applications (concurrently, timed) and one invalid body; what came back."""
    bodies = application_bodies(cases.applications, cases.loan_book)
    answers: dict[str, dict[str, Any]] = {}
    result = replay(url, "dev-test", bodies, concurrency=DEV_TEST_CONCURRENCY, collect=answers)
    invalid = httpx.post(f"{url}/v1/score", json=cases.invalid_body(), timeout=10)
    return dev_tests.DevTestAnswers(
        requests=len(bodies), ok=result.ok, failures=result.failures, latency_ms_p50=result.latency_ms_p50,
        latency_ms_p99=result.latency_ms_p99, seconds=result.seconds, answers=answers,
        invalid_request_status=invalid.status_code,
    )
