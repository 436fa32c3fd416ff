"""``lendguard export-marts --out DIR``: the monitoring and delivery marts as Parquet files, for BI tools
that cannot open a DuckDB file.

Marts only: the ``mon_*`` and ``dlv_*`` tables, less the models the dbt project keeps private to
their group (the monitoring plumbing, such as the 10M-row copy of the prediction log).

Read from the published snapshot (never the file dbt writes); one ``<table>.parquet`` per mart,
each written to a temporary name and renamed into place, so a BI tool refreshing from DIR reads
the previous export or the new one, never a half-written file.
"""

from __future__ import annotations

from pathlib import Path

from warehouse.landing import TMP_SUFFIX
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.project import private_models

MART_PREFIXES = ("mon_", "dlv_")


def export_marts(paths: Paths, out_dir: Path, prefixes: tuple[str, ...] = MART_PREFIXES) -> list[Path]:
    """Copy every table whose name starts with one of ``prefixes`` to ``out_dir/<name>.parquet``, but
    for the private models (:func:`warehouse.project.private_models`)."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with open_marts(paths) as marts:
        names = [table for table in marts.tables() if table.startswith(prefixes) and table not in private_models()]
        for name in names:
            target = out_dir / f"{name}.parquet"
            tmp = out_dir / f".{name}.parquet{TMP_SUFFIX}"
            marts.write_parquet(name, tmp)
            tmp.replace(target)
            written.append(target)
    return written
