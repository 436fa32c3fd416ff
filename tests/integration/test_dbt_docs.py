"""``dbt docs generate`` works offline, documents the monitoring marts and lists the dashboard exposure.

The command is the README's (``dbt docs generate --static``), run through the project's runner
against a built warehouse with the build lock held (dbt opens the warehouse file to read its
catalog). ``static_index.html`` is one file with the manifest and catalog inside; its usage
tracking is off because the manifest says ``send_anonymous_usage_stats: false``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warehouse.build import build_lock, current_loan_book, dbt_vars
from warehouse.dbt import run_dbt
from warehouse.paths import Paths

pytestmark = pytest.mark.slow


def test_docs_generate_documents_the_marts_and_the_dashboard_exposure(trained_copy: Paths, tmp_path: Path) -> None:
    """In a copy: dbt opens the warehouse file, which another worker's dbt may have open."""
    target = tmp_path / "docs"
    with build_lock(trained_copy):
        run = run_dbt(trained_copy, ["docs", "generate", "--static"], dbt_vars(current_loan_book(trained_copy)),
                      target_path=target)
    assert run.returncode == 0, run.output[-3000:]
    assert (target / "static_index.html").stat().st_size > 1_000_000, "one self-contained page"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    assert manifest["metadata"]["send_anonymous_usage_stats"] is False, "the docs page's tracking stays off"

    exposure = manifest["exposures"]["exposure.lendguard.monitoring_dashboard"]
    assert exposure["type"] == "dashboard"
    assert exposure["url"].endswith("/dashboard")
    read = {node.split(".")[-1] for node in exposure["depends_on"]["nodes"]}
    assert {"mon_ops_hourly", "mon_drift_numeric", "mon_drift_categorical", "mon_feature_histograms",
            "mon_positive_rates", "mon_fairness_estimated", "mon_realised_quality", "mon_alerts",
            "dlv_approvals"} <= read
    for node in exposure["depends_on"]["nodes"]:  # every mart the dashboard reads is documented, column by column
        model = manifest["nodes"][node]
        assert model["description"], node
        documented = {name.lower() for name, column in model["columns"].items() if column.get("description")}
        in_warehouse = {name.lower() for name in catalog["nodes"][node]["columns"]}
        assert in_warehouse <= documented, f"{node}: undocumented columns {sorted(in_warehouse - documented)}"
