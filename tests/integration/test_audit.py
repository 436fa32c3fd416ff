"""The audit trail in one query, in a snapshot that stands alone; approval only after every stage
before it, and only once (issue #15, findings 5 and 6); a decision is in the snapshot at once (#19)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from lendguard import cli
from ml import registry
from tests.support.deployment import SHARED_CANDIDATE, copy_deployment, deployment_env
from warehouse import datasets, landing
from warehouse.build import current_loan_book
from warehouse.paths import Paths, get_paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.project import project_vars
from warehouse.publish import connect_snapshot
from warehouse.settings import get_settings

pytestmark = pytest.mark.slow

AUDIT_QUERY = """
select request_id, model_version, mlflow_run_id, git_commit, training_data_rows, training_data_sha256,
       dbt_manifest_sha256, gate_passed, gate_checks, version_decision, decided_by, decided_at, decision_note,
       policy, fairness_group, probability, decision, threshold_applied, policy_threshold
from audit_predictions
where request_id = ?
"""


def use(monkeypatch: pytest.MonkeyPatch, paths: Paths) -> None:
    """Point the in-process CLI at ``paths``, with no notification channel."""
    for name, value in deployment_env(paths.data_dir).items():
        monkeypatch.setenv(name, value)
    for name in ("LENDGUARD_SMTP_HOST", "LENDGUARD_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    get_paths.cache_clear()
    get_settings.cache_clear()


def land_requests(paths: Paths, version: str, thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """A few requests answered by ``version`` as the API logs them, one per group, at its threshold."""
    loan_book = current_loan_book(paths)
    schema = prediction_log_schema(loan_book)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for i, group in enumerate(sorted(g for g in thresholds if not g.startswith("__"))):
        probability = 0.05 + 0.1 * i
        rows.append({**dict.fromkeys(schema.names), "request_id": f"audit-{i}", "received_at": now,
                     "endpoint": "/v1/score", "status_code": 200, "model_name": registry.MODEL_NAME,
                     "model_version": version, "threshold": thresholds[group], "probability": probability,
                     "decision": "manual_review" if probability >= thresholds[group] else "auto_approve",
                     "mode": "normal", "latency_ms": 3.0, loan_book.group_column: group})
    table = pa.Table.from_pylist(rows, schema=schema)
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, writer_id="pytest-audit").write(table)
    return rows


def test_the_audit_query_reaches_every_record_from_a_snapshot_copied_elsewhere(
    trained_deployment: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`lendguard monitor` is the only build after the delivery's records landed (its copy starts
    without a warehouse); the snapshot it publishes is copied away, the data directory deleted, and
    one query answers for a logged request: version, run, commit, data fingerprint, manifest, every
    gate check, the approval and the threshold applied."""
    version = registry.alias_version(trained_deployment, "champion")
    assert version is not None
    policy = str(project_vars()["deployed_policy"])
    with connect_snapshot(trained_deployment) as con:
        thresholds = dict(con.execute("select group_name, threshold from eval_thresholds "
                                      "where model_version = ? and policy = ?", [version, policy]).fetchall())
    registry.connect(trained_deployment)
    client = MlflowClient()
    run_id = str(client.get_model_version(registry.MODEL_NAME, version).run_id)
    tags = client.get_run(run_id).data.tags

    paths = copy_deployment(trained_deployment, tmp_path / "deployment", "*.duckdb", "*.duckdb.wal", "prediction_log")
    logged = land_requests(paths, version, thresholds)
    use(monkeypatch, paths)
    assert cli.main(["monitor"]) in (0, cli.EXIT_CRITICAL)

    moved = tmp_path / "elsewhere" / "lendguard.duckdb"
    moved.parent.mkdir()
    shutil.copyfile(paths.snapshot, moved)
    shutil.rmtree(paths.data_dir)
    # no file access at all: a view that read one would fail here
    with duckdb.connect(str(moved), read_only=True, config={"enable_external_access": False}) as con:
        for (view,) in con.execute("select view_name from duckdb_views() where not internal").fetchall():
            con.execute(f'select * from "{view}" limit 1').fetchall()
        audit = con.execute(AUDIT_QUERY, ["audit-1"]).df()
        approvals = con.execute("select decision, decided_by from dlv_approvals where model_version = ?",
                                [version]).fetchall()
        gate_rows = con.execute("select count(*) from eval_gate_history where model_version = ?", [version]).fetchone()
        decision = con.execute("select decision from dlv_model_versions where model_version = ?", [version]).fetchone()
        audited = con.execute("select count(*) from audit_predictions").fetchone()

    assert approvals == [("approved", "pytest")]
    assert gate_rows is not None
    assert gate_rows[0] >= 7
    assert decision == ("approved",)
    assert audited == (len(logged),)
    [row] = audit.to_dict("records")
    request = logged[1]
    assert row["model_version"] == version
    assert row["mlflow_run_id"] == run_id
    assert row["git_commit"] == tags["git_commit"]
    assert len(row["git_commit"]) == 40
    assert row["training_data_rows"] == int(tags["training_data_rows"]) > 0
    assert row["training_data_sha256"] == tags["training_data_sha256"]
    assert row["dbt_manifest_sha256"] == tags["dbt_manifest_sha256"] != "unknown"
    assert row["gate_passed"]
    checks = {c["check_name"]: c for c in row["gate_checks"]}
    assert set(checks) >= {"evaluated", "fpr_gap", "auc", "calibration_error", "cost_vs_champion",
                           "group_test_rows", "threshold_for_every_group"}
    assert all(c["passed"] and c["limit_value"] is not None and c["comparison"] in ("<=", ">=")
               for c in row["gate_checks"])
    assert 0 <= checks["fpr_gap"]["measured_value"] <= checks["fpr_gap"]["limit_value"]
    assert (row["version_decision"], row["decided_by"], row["decision_note"]) == ("approved", "pytest", "test fixture")
    assert row["decided_at"] is not None
    assert row["policy"] == policy
    assert row["fairness_group"] == request[current_loan_book(trained_deployment).group_column]
    assert row["threshold_applied"] == request["threshold"] == row["policy_threshold"]
    assert row["decision"] == request["decision"]


def test_a_decided_version_is_not_decided_again(trained_copy: Paths, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    version = registry.alias_version(trained_copy, "champion")
    use(monkeypatch, trained_copy)
    for verb in ("approve", "reject"):
        assert cli.main([verb, str(version), "--by", "someone", "--note", "again"]) == 1
        err = capsys.readouterr().err
        assert f"version {version} was already approved by pytest at 20" in err, err
        assert len(err.strip().splitlines()) == 1, "one line"
    decided = datasets.query_landed(trained_copy, datasets.APPROVALS, "select decided_by from landed "
                                    "where model_version = ?", [version])
    assert decided == [("pytest",)], "nothing landed: a person's decision stands as it was"


def test_approval_follows_the_dev_stages_and_a_decision_is_published_at_once(
    trained_copy: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """train -> pipeline stage gate -> approve N is refused, naming the dev stage missing; the
    rejection a person then records is in the published snapshot without another build."""
    paths = trained_copy
    use(monkeypatch, paths)
    champion = registry.alias_version(paths, "champion")
    assert cli.main(["train", "--candidates", SHARED_CANDIDATE]) == 0  # delivery is the point, not selection
    assert cli.main(["pipeline", "stage", "gate"]) == 0
    version = registry.alias_version(paths, "candidate")
    assert version is not None
    assert version != champion
    capsys.readouterr()

    assert cli.main(["approve", version, "--by", "eager", "--note", "skip the dev tests"]) == 1
    err = capsys.readouterr().err
    assert f"version {version} cannot be approved: its dev stages did not pass" in err, err
    assert "deploy-dev never ran, test-dev never ran, request-approval never ran" in err
    assert "lendguard pipeline stage deploy-dev" in err
    assert registry.alias_version(paths, "champion") == champion, "nothing reached production"
    assert datasets.query_landed(paths, datasets.APPROVALS, "select * from landed where model_version = ?",
                                 [version]) == []

    assert cli.main(["reject", version, "--by", "Grace Hopper", "--note", "wait for Q3 data"]) == 0
    with connect_snapshot(paths) as con:
        rejected = con.execute("select decision, decided_by from dlv_approvals where model_version = ?",
                               [version]).fetchall()
        versions = con.execute("select gate_passed, decision, decided_by, git_commit is not null "
                               "from dlv_model_versions where model_version = ?", [version]).fetchall()
    assert rejected == [("rejected", "Grace Hopper")], "the snapshot shows the decision at once"
    assert versions == [(True, "rejected", "Grace Hopper", True)]
    capsys.readouterr()
    assert cli.main(["approve", version, "--by", "eager", "--note", "after all"]) == 1
    assert f"version {version} was already rejected by Grace Hopper at" in capsys.readouterr().err
