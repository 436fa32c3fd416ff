"""The dbt project as an analytics engineer would own it: read from dbt's own manifest (``dbt parse``).

Marts are the contract (enforced column types), plumbing is private to its group, keys are tested
across marts, repeated columns have one description, sources declare their columns and the
prediction log its freshness, and every reader outside dbt is an exposure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from warehouse.dbt import run_dbt
from warehouse.paths import Paths
from warehouse.project import private_models

pytestmark = pytest.mark.slow

CONTRACTED_MARTS = ("dlv_approvals", "dlv_pipeline_stages", "mon_alerts", "mon_alert_history",
                    "mon_ops_hourly", "mon_ops_daily", "mon_ops_deployment", "mon_drift_numeric",
                    "mon_drift_categorical")
"""The marts people read whose columns do not depend on the lender's loan-book contract (and have no
nested type: ``dlv_model_versions.gate_checks`` is a list of structs, spelt differently per engine)."""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("dbt-parse")
    paths = Paths.from_env({"LENDGUARD_DATA_DIR": str(root / "data")})
    run = run_dbt(paths, ["parse"], target_path=root / "target")
    assert run.returncode == 0, run.output[-3000:]
    return dict(json.loads((root / "target" / "manifest.json").read_text()))


def _models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def test_the_plumbing_is_private_to_the_monitoring_group(manifest: dict[str, Any]) -> None:
    models = _models(manifest)
    private = {name for name, node in models.items() if node["access"] == "private"}
    assert private == private_models(), "warehouse.project reads access as dbt does"
    assert private == {f"int_{name}" for name in (
        "requests", "drift_requests", "scored_requests", "drift_windows", "drift_reference_bins",
        "drift_reference_values", "drift_value_counts_daily", "group_windows", "request_group_probabilities")}
    assert {models[name]["group"] for name in private} == {"monitoring"}


def test_each_model_is_described_and_unit_tested_next_to_its_sql(manifest: dict[str, Any]) -> None:
    """Whoever edits a model's SQL finds its description, tests and unit tests in a properties file of
    the same folder (the monitoring plumbing's lived beside the marts that read it)."""
    models = _models(manifest)
    folder = {name: Path(node["original_file_path"]).parent for name, node in models.items()}
    misplaced = {name: node["patch_path"] for name, node in models.items()
                 if node["patch_path"] and Path(node["patch_path"].split("://", 1)[1]).parent != folder[name]}
    misplaced |= {test["name"]: test["original_file_path"] for test in manifest["unit_tests"].values()
                  if Path(test["original_file_path"]).parent != folder[test["model"]]}
    assert not misplaced

def test_the_marts_people_read_enforce_their_contract(manifest: dict[str, Any]) -> None:
    models = _models(manifest)
    for name in CONTRACTED_MARTS:
        node = models[name]
        assert node["config"]["contract"]["enforced"], name
        untyped = [column for column, spec in node["columns"].items() if not spec.get("data_type")]
        assert not untyped, f"{name}: columns without a data_type: {untyped}"


def test_keys_are_tested_across_marts(manifest: dict[str, Any]) -> None:
    relationships = {
        (node["attached_node"].split(".")[-1], node["column_name"], node["test_metadata"]["kwargs"]["to"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and node.get("test_metadata", {}).get("name") == "relationships"
    }
    # Alerts point at the registered versions' lineage (staging, so a monitoring-only build, which
    # does not build the delivery marts, can run the test).
    assert ("mon_alerts", "model_version", "ref('stg_landing__model_lineage')") in relationships
    assert ("dlv_approvals", "model_version", "ref('dlv_model_versions')") in relationships
    assert ("mon_alerts", "alert_id", "ref('mon_alert_history')") in relationships


def test_model_version_has_one_description(manifest: dict[str, Any]) -> None:
    described = [
        column["description"]
        for node in [*manifest["nodes"].values(), *manifest["sources"].values()]
        for name, column in node.get("columns", {}).items() if name == "model_version"
    ]
    assert len(described) >= 30
    assert len(set(described)) == 1, "one doc block (models/_docs.md), not one wording per model"
    assert "MLflow model registry" in described[0]


def test_sources_declare_columns_and_the_log_its_freshness(manifest: dict[str, Any]) -> None:
    sources = {node["name"]: node for node in manifest["sources"].values()}
    assert all(node["columns"] for name, node in sources.items() if name != "loans")
    log = sources["prediction_log"]
    assert log["loaded_at_field"] == "received_at"
    assert log["freshness"]["warn_after"] == {"count": 1, "period": "hour"}
    assert log["freshness"]["error_after"] == {"count": 24, "period": "hour"}


def test_every_reader_outside_dbt_is_an_exposure(manifest: dict[str, Any]) -> None:
    exposures = {node["name"]: node for node in manifest["exposures"].values()}
    assert exposures["monitoring_dashboard"]["type"] == "dashboard"
    assert exposures["model_training"]["type"] == "ml"
    assert exposures["model_delivery"]["type"] == "ml"
    assert exposures["scoring_api"]["type"] == "application"
    assert "model.lendguard.train_loans" in exposures["model_training"]["depends_on"]["nodes"]
    exported = {node.split(".")[-1] for node in exposures["bi_parquet_exports"]["depends_on"]["nodes"]}
    assert not exported & private_models(), "the BI exports read marts only"


def test_readme_names_the_generator_and_the_upgrade() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "python -m warehouse.sources" in readme
    assert "lendguard upgrade" in readme
