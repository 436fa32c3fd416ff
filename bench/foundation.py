"""Benchmark: simulate + land, build, and train at several loan-book sizes.

Each step runs as its own `lendguard` process (as a user would run it); wall time and the
process's peak resident memory (ru_maxrss of the process and its children, e.g. dbt) are recorded.

    .venv/bin/python bench/foundation.py --loans 100000 1000000 10000000 --out bench/results/foundation.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import command, emit, machine


def run_step(env: dict[str, str], *args: str) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lendguard.cli", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"lendguard {' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, nargs="+", default=[100_000])
    parser.add_argument("--train", action="store_true", help="also time `lendguard train`")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = []
    for loans in args.loans:
        with tempfile.TemporaryDirectory(prefix="lendguard-bench-") as tmp:
            env = {**os.environ, "LENDGUARD_DATA_DIR": tmp, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
            row: dict[str, object] = {"loans": loans}
            row["simulate"] = run_step(env, "simulate", "--loans", str(loans))
            row["build"] = run_step(env, "build")
            if args.train:
                row["train"] = run_step(env, "train")
            results.append(row)
            print(json.dumps(row))
    emit({"machine": machine(), "command": command(), "results": results}, args.out)


if __name__ == "__main__":
    main()
