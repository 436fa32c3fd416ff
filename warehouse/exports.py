"""``lendguard export-marts --out DIR``: the monitoring and delivery marts as Parquet files, for BI tools
that cannot open a DuckDB file.

Read from the published snapshot (never the file dbt writes); one ``<table>.parquet`` per mart,
each written to a temporary name and renamed into place, so a BI tool refreshing from DIR reads
the previous export or the new one, never a half-written file.
"""

from __future__ import annotations

from pathlib import Path

from warehouse.landing import TMP_SUFFIX
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

MART_PREFIXES = ("mon_", "dlv_")


def export_marts(paths: Paths, out_dir: Path, prefixes: tuple[str, ...] = MART_PREFIXES) -> list[Path]:
    """Copy every table whose name starts with one of ``prefixes`` to ``out_dir/<name>.parquet``."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with connect_snapshot(paths) as con:
        names = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE' order by 1"
        ).fetchall() if str(row[0]).startswith(prefixes)]
        for name in names:
            target = out_dir / f"{name}.parquet"
            tmp = out_dir / f".{name}.parquet{TMP_SUFFIX}"
            quoted = str(tmp).replace("'", "''")
            con.execute(f'copy (select * from "{name}") to \'{quoted}\' (format parquet)')
            tmp.replace(target)
            written.append(target)
    return written
