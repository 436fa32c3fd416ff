"""What every benchmark does with its result (print it, keep it where ``--out`` says), and the plumbing
of the benchmarks that run each phase in a fresh interpreter (``scoring.py``, ``engines.py``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def emit(record: dict[str, Any], out: Path | None) -> None:
    """Print ``record`` as JSON and, with ``out``, write it there too (the file bench/README.md cites)."""
    text = json.dumps(record, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def command() -> str:
    """The command line that produced a record, so the record says how to reproduce it."""
    return " ".join(["python", *[str(a) for a in sys.argv]])


def machine() -> dict[str, Any]:
    """What the numbers were measured on (cores, Python, platform)."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


# ----- benchmarks made of phases, each phase in a fresh process ---------------------------------------
def phase_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every phased benchmark has: ``--workdir``, ``--out`` and the hidden phase call."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="keep data and scores here (default: a temporary folder)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--arguments", default="{}", help=argparse.SUPPRESS)
    return parser


def run_phased(args: argparse.Namespace, phases: dict[str, Callable[..., None]],
               benchmark: Callable[[argparse.Namespace, Path], None], prefix: str) -> None:
    """In a phase's process, run that phase; otherwise the benchmark, in ``--workdir`` or a temporary one."""
    if args.phase:
        phases[args.phase](args.workdir, **json.loads(args.arguments))
        return
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        benchmark(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            benchmark(args, Path(tmp))


def run_phase(workdir: Path, name: str, script: Path, python: str = sys.executable,
              **arguments: Any) -> dict[str, Any]:
    """Run one phase of ``script`` in its own interpreter; its JSON result plus wall time and peak RSS."""
    result_file = workdir / f"phase-{name}.json"
    result_file.unlink(missing_ok=True)
    log_file = workdir / f"phase-{name}.log"
    argv = [python, str(script), "--phase", name, "--workdir", str(workdir), "--arguments", json.dumps(arguments)]
    started = time.perf_counter()
    with log_file.open("w") as log:
        process = subprocess.Popen(argv, env={**os.environ, **ENV}, cwd=PROJECT_DIR,
                                   stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase {name} {arguments} failed:\n{log_file.read_text()[-3000:]}")
    result = json.loads(result_file.read_text())
    return {**result, "process_seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def write_result(workdir: Path, name: str, result: dict[str, Any]) -> None:
    """A phase's result, where ``run_phase`` in the parent reads it."""
    (workdir / f"phase-{name}.json").write_text(json.dumps(result))
