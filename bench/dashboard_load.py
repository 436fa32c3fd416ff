"""Benchmark: scoring latency at 500 requests/s while four clients reload the dashboard, before and after
the dashboard left the scoring process.

    mkdir -p /tmp/lendguard-base && git archive <base commit> | tar -x -C /tmp/lendguard-base
    .venv/bin/python bench/dashboard_load.py --before-tree /tmp/lendguard-base \\
        --out bench/results/dashboard-load.json

One deployment (simulated loans, trained, gated, approved; ``bench/api_load.py``'s ``setup``), one
warm-up load whose rows a ``build`` turns into the snapshot the dashboard reads, then four runs of
the same open-loop load (``api_load.open_loop``: latency from each request's scheduled send time):

* ``before_quiet`` / ``before_loaded``: ``lendguard serve`` from ``--before-tree`` (the scoring app
  that also serves ``GET /dashboard``); loaded: four ``wrk`` connections reload its ``/dashboard``
  back to back for the whole run;
* ``after_quiet`` / ``after_loaded``: ``lendguard serve`` from this tree, plus ``lendguard dashboard
  serve`` in a process of its own, which the four connections reload instead.

Every process (servers, load generator, wrk) shares the machine's cores: the numbers are what one
host does with all of them, and on a shared machine they move with whatever else runs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import bodies, deployment_env, open_loop, setup
from record import command, emit, machine

from lendguard.processes import start_server

TREE = Path(__file__).resolve().parent.parent
SCORING_PORT, DASHBOARD_PORT = 8421, 8422
RELOADERS = 4


def reload_dashboard(url: str, seconds: float) -> subprocess.Popen[str]:
    """Four clients reloading ``url`` back to back (wrk, closed loop, one connection each)."""
    # wrk gives up on a request after 2 s by default; a page on a loaded host can take longer
    return subprocess.Popen(["wrk", "-t", "1", "-c", str(RELOADERS), "-d", f"{seconds:.0f}s", "--timeout", "60s",
                             "--latency", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def reload_report(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=120)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {"page_loads": int(total.group(1)) if total else 0,
            "page_p50_ms": round(float(p50.group(1)) * scale[p50.group(2)], 1) if p50 else None,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "socket_errors": errors.group(1) if errors else "none"}


def scoring_run(sample: list[dict[str, Any]], rate: float, seconds: float, dashboard_url: str | None) -> dict[str, Any]:
    reloaders = reload_dashboard(dashboard_url, seconds + 2) if dashboard_url else None
    if reloaders is not None:
        time.sleep(1.0)  # the reloads are under way before the first scored request
    result = open_loop(SCORING_PORT, sample, rate, seconds)
    if reloaders is not None:
        result["dashboard"] = reload_report(reloaders)
    return result


def lendguard(tree: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); from lendguard.cli import main; "
            f"sys.exit(main({list(args)!r}))"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-tree", type=Path, required=True,
                        help="a checkout in which the scoring API still serves /dashboard")
    parser.add_argument("--after-tree", type=Path, default=TREE, help="the tree with the dashboard in its own process "
                        "(default: this one)")
    parser.add_argument("--loans", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lendguard-dashboard-load-") as tmp:
        folder = Path(tmp)
        env = deployment_env(tmp)
        paths = setup(args.loans)
        sample = bodies(2_000)
        runs: dict[str, Any] = {}
        scoring_url = f"http://127.0.0.1:{SCORING_PORT}"

        before = start_server(lendguard(args.before_tree, "serve", "--port", str(SCORING_PORT)), port=SCORING_PORT,
                              log_path=folder / "before.log", env=env, timeout=600)
        try:
            open_loop(SCORING_PORT, sample, args.rate, 5)  # warm-up, and rows for the dashboard to show
            from warehouse.build import build  # noqa: PLC0415 - after the environment points at the bench deployment

            build(paths)
            runs["before_quiet"] = scoring_run(sample, args.rate, args.seconds, None)
            runs["before_loaded"] = scoring_run(sample, args.rate, args.seconds, f"{scoring_url}/dashboard")
        finally:
            before.stop(60)

        after = start_server(lendguard(args.after_tree, "serve", "--port", str(SCORING_PORT)), port=SCORING_PORT,
                             log_path=folder / "after.log", env=env, timeout=600)
        dashboard = start_server(lendguard(args.after_tree, "dashboard", "serve", "--port", str(DASHBOARD_PORT)),
                                 port=DASHBOARD_PORT, log_path=folder / "dashboard.log", env=env, timeout=600)
        try:
            open_loop(SCORING_PORT, sample, args.rate, 5)  # warm-up
            runs["after_quiet"] = scoring_run(sample, args.rate, args.seconds, None)
            runs["after_loaded"] = scoring_run(sample, args.rate, args.seconds,
                                               f"http://127.0.0.1:{DASHBOARD_PORT}/dashboard")
        finally:
            for server in (after, dashboard):
                server.stop(60)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    record = {
        "command": command(),
        "machine": {**machine(),
                    "loadavg_at_end": loadavg,
                    "note": "shared with other agents' builds and tests while it ran: compare runs, not machines"},
        "loans": args.loans, "rate": args.rate, "seconds": args.seconds, "reloaders": RELOADERS, **runs,
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
