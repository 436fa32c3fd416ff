"""Benchmark: how many dbt invocations each command makes, and where their time goes.

A fresh deployment (own data dir and MLflow store, a small simulated book); then the commands a
person runs, each in a process of its own as from a shell:

    lendguard build
    lendguard pipeline run --candidates logreg_c0.1
    lendguard approve VERSION
    lendguard monitor

Each process records every dbt invocation (``warehouse.dbt`` logs a ``DbtTiming`` with each):
wall and CPU seconds, dbt's own execution time (the rest is set-up and parsing) and whether it
parsed the project or reused a manifest; and the command's wall time and CPU (its own and its
children's: the dev API server of a pipeline run).

    .venv/bin/python bench/dbt_invocations.py --loans 30000 --out bench/results/dbt-invocations.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from record import command, emit, machine

DEV_API_PORT = 18101
"""The pipeline's dev API in this benchmark (the lead's port range for this work)."""


class _Timings(logging.Handler):
    """Keeps the ``DbtTiming`` that ``warehouse.dbt`` logs with each invocation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.timings: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        timing = getattr(record, "dbt_timing", None)
        if timing is not None:
            self.timings.append({
                "command": timing.command, "wall_seconds": round(timing.wall_seconds, 2),
                "cpu_seconds": round(timing.cpu_seconds, 2),
                "execution_seconds": None if timing.execution_seconds is None else round(timing.execution_seconds, 2),
                "startup_and_parse_seconds": (None if timing.startup_and_parse_seconds is None
                                              else round(timing.startup_and_parse_seconds, 2)),
                "parsed": timing.parsed,
            })


def child(argv: list[str]) -> None:
    """Run one ``lendguard`` command in this process; print what its dbt invocations cost, as JSON."""
    timings = _Timings()
    dbt_log = logging.getLogger("warehouse.dbt")
    dbt_log.setLevel(logging.DEBUG)
    dbt_log.addHandler(timings)
    dbt_log.propagate = False
    from lendguard.cli import main  # noqa: PLC0415 - after the handler is in place

    started = time.perf_counter()
    code = main(argv)
    wall = time.perf_counter() - started
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "exit": code, "wall_seconds": round(wall, 2),
        "cpu_seconds": round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 2),
        "dbt": timings.timings,
    }))


def run_command(env: dict[str, str], *argv: str) -> dict[str, Any]:
    """``lendguard ARGV`` in a child process (this script's ``--child`` mode); what it recorded."""
    done = subprocess.run([sys.executable, __file__, "--child", *argv], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"lendguard {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    record: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if record["exit"] != 0:
        raise SystemExit(f"lendguard {' '.join(argv)} exited {record['exit']}:\n{done.stdout}\n{done.stderr}")
    record["dbt_invocations"] = len(record["dbt"])
    return record


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=30_000)
    parser.add_argument("--candidate", default="logreg_c0.1")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commands: dict[str, dict[str, Any]] = {}
    load = {"before": load_average()}
    with tempfile.TemporaryDirectory(prefix="lendguard-bench-") as tmp:
        env = {**os.environ, "LENDGUARD_DATA_DIR": tmp, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
               "LENDGUARD_DEV_API_PORT": str(DEV_API_PORT), "LENDGUARD_DEV_MAX_P99_MS": "60000"}
        run_command(env, "simulate", "--loans", str(args.loans), "--seed", "11")
        commands["build"] = run_command(env, "build")
        commands["pipeline run"] = run_command(env, "pipeline", "run", "--candidates", args.candidate)
        runs = sorted((Path(tmp) / "state" / "pipeline").glob("*.json"), key=lambda p: p.stat().st_mtime)
        version = json.loads(runs[-1].read_text())["version"]
        commands["approve"] = run_command(env, "approve", str(version), "--by", "bench", "--note", "dbt invocations")
        commands["monitor"] = run_command(env, "monitor")
    load["after"] = load_average()
    record = {
        "command": command(),
        "machine": machine(),
        "load_average_1_5_15": load,
        "loans": args.loans,
        "commands": commands,
        "totals": {name: {"dbt_invocations": c["dbt_invocations"], "wall_seconds": c["wall_seconds"],
                          "dbt_wall_seconds": round(sum(d["wall_seconds"] for d in c["dbt"]), 2)}
                   for name, c in commands.items()},
    }
    emit(record, args.out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
