"""Benchmark: the delivery stages train → thresholds → evaluate + register → gate on one loan book.

Runs in a fresh deployment (own data dir and MLflow store) in this process; records each stage's
wall time and the peak resident memory of this process.

    .venv/bin/python bench/delivery.py --loans 100000 --out bench/results/delivery-100k.json
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path

from record import command, emit, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lendguard-bench-") as tmp:
        os.environ.update({"LENDGUARD_DATA_DIR": tmp, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                           "MLFLOW_DISABLE_TELEMETRY": "true", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
        from lendguard import pipeline  # noqa: PLC0415 - after the environment points at the bench deployment
        from warehouse.build import build  # noqa: PLC0415
        from warehouse.importer import land_simulated  # noqa: PLC0415
        from warehouse.paths import Paths  # noqa: PLC0415

        paths = Paths.from_env()
        land_simulated(paths, args.loans, seed=42)
        build(paths)
        started = time.perf_counter()
        run = pipeline.run_until(paths, "gate")
        total = round(time.perf_counter() - started, 2)
        stages = {entry["stage"]: round((datetime.fromisoformat(entry["ended_at"])
                                         - datetime.fromisoformat(entry["started_at"])).total_seconds(), 2)
                  for entry in run.stages}  # each stage's own start and end, as the run recorded them
        train = run.stage("train")["details"]
    record = {
        "command": command(),
        "machine": machine(),
        "loans": args.loans,
        "seconds": {**stages, "total": total},
        # This process: training, thresholds, evaluation, MLflow. dbt runs as a child; its peak at
        # this size is in foundation.json (build). A forked child's ru_maxrss includes the parent's
        # pages at fork time, so it is not reported here.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "chosen_model": train["model"], "cv": train["candidates"],
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
