"""The published snapshot is self-contained: tables and views over them, never a view over files."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.paths import Paths
from warehouse.publish import publish


def test_views_that_read_files_are_not_published_and_the_copy_needs_no_files(paths: Paths, tmp_path: Path) -> None:
    landed = tmp_path / "landing" / "approvals"
    landed.mkdir(parents=True)
    pq.write_table(pa.table({"model_version": ["1"], "decided_by": ["Ada"]}), landed / "a.parquet")
    (landed / "b.csv").write_text("model_version,decided_by\n2,Grace\n")
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute(f"create view stg_over_files as select * from read_parquet('{landed}/*.parquet')")
        con.execute("create table stg_approvals as select * from stg_over_files")
        con.execute("create view audit as select decided_by from stg_approvals")
        con.execute("create schema extra")
        con.execute(f"create view extra.csv_reader as select * from read_csv('{landed}/*.csv')")

    publish(paths)

    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        kept = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert kept == {"stg_over_files", "audit", "csv_reader"}, "the warehouse keeps its views; only the copy loses them"
    moved = tmp_path / "elsewhere.duckdb"
    shutil.copyfile(paths.snapshot, moved)
    shutil.rmtree(tmp_path / "landing")
    with duckdb.connect(str(moved), read_only=True, config={"enable_external_access": False}) as con:
        views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        assert views == {"audit"}
        assert con.execute("select decided_by from audit").fetchall() == [("Ada",)]
