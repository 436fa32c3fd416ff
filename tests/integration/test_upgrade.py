"""The upgrade path: `lendguard upgrade` on a warehouse an earlier version built (no hook on every run)."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest
import yaml

from warehouse.importer import land_simulated
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.upgrade import upgrade

pytestmark = pytest.mark.slow


def _tables(paths: Paths) -> set[str]:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}


def test_no_build_runs_a_migration_hook() -> None:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert not project.get("on-run-start"), "upgrades are `lendguard upgrade`, not a hook on every run"
    assert not project.get("on-run-end")


def test_upgrade_renames_the_moved_plumbing_and_drops_an_outdated_mart(paths: Paths) -> None:
    land_simulated(paths, 200, seed=1)
    assert upgrade(paths) == [], "no warehouse yet: nothing to upgrade"
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.warehouse)) as con:  # what an earlier version built
        con.execute("create table mon_requests (request_id varchar, scored_count_index bigint)")
        con.execute("insert into mon_requests values ('late-replica', 7), ('first', 0)")
        con.execute("create view mon_drift_requests as select * from mon_requests")
        con.execute("create table mon_group_windows (model_version varchar, window_kind varchar, "
                    "window_index bigint, fairness_group varchar, n bigint, positives bigint)")  # no window_key
        con.execute("create table mon_alerts (alert_id varchar)")

    env = {**os.environ, "LENDGUARD_DATA_DIR": str(paths.data_dir), "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "lendguard.cli", "upgrade"], env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "renamed mon_requests to int_requests" in result.stdout
    assert "dropped mon_drift_requests" in result.stdout
    assert "dropped int_group_windows (built before it had window_key" in result.stdout

    tables = _tables(paths)
    assert {"mon_requests", "mon_drift_requests", "mon_group_windows", "int_group_windows"}.isdisjoint(tables)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        kept = con.execute("select request_id, scored_count_index from int_requests order by 1").fetchall()
    assert kept == [("first", 0), ("late-replica", 7)], "the log's copy keeps its rows and their numbering"
    assert "mon_alerts" in tables, "a relation whose name and shape are current stays as it is"

    assert upgrade(paths) == [], "a second run finds nothing to do"
