"""CPU per monitoring model, one model at a time (issue #6, goal 7: where a build's time goes).

dbt's run results give each node's wall time, but two nodes run at once and share the two cores,
so the times overlap. This runs each model's compiled SQL alone, on a copy of a built deployment's
warehouse (its upstream tables as the build left them), and reports wall seconds, CPU seconds of
DuckDB's threads and rows; ``--operators N`` adds the N costliest operators from DuckDB's profile.

The compiled SQL is the one the deployment's last build left in ``<data>/dbt/target/compiled``;
after a ``--full-refresh`` build it is every model's full-build form. The copy is scratch: the
deployment is never written.

    .venv/bin/python bench/monitoring.py scale --rows 10000000 --keep --workdir /tmp/lgscale
    .venv/bin/python -m lendguard.cli build --full-refresh --select path:models/staging \
        path:models/intermediate/monitoring path:models/monitoring
        # (with LENDGUARD_DATA_DIR=/tmp/lgscale/scale-10000000)
    .venv/bin/python bench/monitoring_profile.py /tmp/lgscale/scale-10000000 int_requests mon_drift_numeric
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from warehouse.dbt_udfs import register  # noqa: E402 - after the repository is on the path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def operators(profile: dict[str, Any]) -> list[tuple[float, str, int]]:
    """(seconds, operator, rows) of every operator in a DuckDB JSON profile."""
    found = []
    pending = [profile]
    while pending:
        node = pending.pop()
        name = (node.get("operator_name") or node.get("operator_type") or "").strip()
        if name:
            found.append((node.get("operator_timing", 0.0), name, node.get("operator_cardinality", 0)))
        pending.extend(node.get("children", []))
    return sorted(found, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="a built deployment (LENDGUARD_DATA_DIR)")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--operators", type=int, default=0, help="also list the N costliest operators")
    args = parser.parse_args()
    compiled = args.data_dir / "dbt" / "target" / "compiled" / "lendguard" / "models" / "monitoring"
    missing = [m for m in args.models if not (compiled / f"{m}.sql").exists()]
    if missing:
        raise SystemExit(f"no compiled SQL for {missing} in {compiled}: build the deployment first")
    with tempfile.TemporaryDirectory() as scratch:
        # Same file name, so the compiled SQL's "lendguard" catalog resolves to the copy.
        copy = Path(scratch) / "lendguard.duckdb"
        shutil.copyfile(args.data_dir / "lendguard.duckdb", copy)
        con = duckdb.connect(str(copy))
        register(con)
        con.execute("set preserve_insertion_order = false")  # as profiles.yml
        for model in args.models:
            sql = (compiled / f"{model}.sql").read_text()
            profile = Path(scratch) / f"{model}.json"
            if args.operators:
                con.execute(f"pragma enable_profiling = 'json'; pragma profiling_output = '{profile}'")
            started, cpu = time.perf_counter(), cpu_seconds()
            con.execute(f"create or replace table profiled_{model} as ({sql})")
            wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            con.execute("pragma disable_profiling")
            rows = con.execute(f"select count(*) from profiled_{model}").fetchone()[0]
            print(f"{model:32s} wall {wall:6.2f} s  CPU {cpu:6.2f} s  rows {rows:,}", flush=True)
            if args.operators:
                for seconds, name, cardinality in operators(json.loads(profile.read_text()))[: args.operators]:
                    print(f"    {seconds:6.2f} s  {name:20s} {cardinality:>13,} rows")
        con.close()


if __name__ == "__main__":
    main()
