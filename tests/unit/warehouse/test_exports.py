"""``lendguard export-marts``: the marts of the published snapshot as Parquet files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse.exports import export_marts
from warehouse.paths import Paths
from warehouse.project import private_models
from warehouse.publish import SnapshotMissingError


def test_every_mart_and_only_the_marts_become_parquet(paths: Paths, tmp_path: Path) -> None:
    paths.snapshot.parent.mkdir(parents=True)
    with duckdb.connect(str(paths.snapshot)) as con:
        con.execute("create table mon_ops_hourly as select range as requests from range(3)")
        con.execute("create table dlv_approvals as select 'approved' as decision")
        con.execute("create table feat_loans as select 1 as loan_id")
        for name in private_models():  # plumbing (the 10M-row copy of the log among it): never a mart
            con.execute(f'create table "{name}" as select 1 as x')
        con.execute("create view mon_view as select 1 as x")
    out = tmp_path / "bi"
    written = export_marts(paths, out)
    assert sorted(p.name for p in written) == ["dlv_approvals.parquet", "mon_ops_hourly.parquet"]
    assert sorted(p.name for p in out.iterdir()) == ["dlv_approvals.parquet", "mon_ops_hourly.parquet"]
    assert duckdb.sql(f"select sum(requests) from '{out / 'mon_ops_hourly.parquet'}'").fetchone() == (3,)
    export_marts(paths, out)  # again: replaced in place, nothing left behind
    assert len(list(out.iterdir())) == 2


def test_the_monitoring_plumbing_is_private() -> None:
    assert {"int_requests", "int_drift_requests", "int_scored_requests", "int_group_windows"} <= private_models()
    assert "mon_alerts" not in private_models()


def test_no_snapshot_no_export(paths: Paths, tmp_path: Path) -> None:
    with pytest.raises(SnapshotMissingError):
        export_marts(paths, tmp_path / "bi")
