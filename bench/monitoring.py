"""Benchmark (issue #6, items 6 and 7): drift detection delay and false alarms; monitoring build at scale.

* ``detection``: a trained deployment (30,000 simulated loans, train / thresholds / evaluate / gate,
  approved) is copied once per scenario of ``warehouse.simulator``; N requests of the scenario
  (onset 2,000 by default) are scored by the champion's compiled SQL (``ml.scoring.FeatureScorer``,
  the API's scorer), landed as prediction-log rows (``warehouse.landing.LandingWriter``) and the
  monitoring selection is built (``lendguard build --select path:models/staging
  path:models/monitoring``, what ``lendguard monitor`` builds). Reported: the first alerting count
  window after the onset and requests from onset to its end, and which checks fired; for ``stable``
  (1M requests by default) the windows tested and the warn / critical alerts.
* ``scale``: the same trained deployment with N logged predictions (stable traffic, simulated in
  blocks, scored by the same compiled SQL); the monitoring selection is built with
  ``--full-refresh`` in a fresh process (wall time, peak RSS of the process and its children, dbt's
  elapsed time and its slowest nodes), then 10,000 new rows are landed and the incremental run is
  timed, and with ``--full-refresh`` a rebuild of the same rows for comparison.

Each build is its own ``lendguard`` process; peak RSS is ru_maxrss of that process and its children.

    .venv/bin/python bench/monitoring.py detection --out bench/results/monitoring-detection.json
    .venv/bin/python bench/monitoring.py scale --rows 1000000 10000000 --full-refresh \
        --out bench/results/monitoring-scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MONITOR_SELECT = ["path:models/staging", "path:models/monitoring"]
BLOCK = 250_000
DRIFT_SCENARIOS = ("economic_shock", "purpose_shift", "group_mix", "income_in_thousands")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def env_for(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LENDGUARD_DATA_DIR": str(data_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_step(data_dir: Path, *args: str) -> dict[str, float]:
    """One ``lendguard`` command in a fresh process: wall seconds and peak RSS (it and its children)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lendguard.cli", *args], env=env_for(data_dir), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: a (monitor) test failed, marts built
        raise SystemExit(f"lendguard {' '.join(args)} failed: {process.stderr.read().decode()[-3000:]}")
    # CPU seconds too: the machine is shared, and CPU time moves less than wall time with others' load.
    step: dict[str, Any] = {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
    if args[0] == "build":
        results = json.loads((data_dir / "dbt" / "target" / "run_results.json").read_text())
        broken = [r["unique_id"] for r in results["results"] if r["status"] in ("error", "skipped")
                  and r["unique_id"].startswith("model.")]
        if broken:
            raise SystemExit(f"lendguard {' '.join(args)}: models not built: {broken}")
        step["dbt_seconds"] = round(results["elapsed_time"], 2)
        slowest = sorted(results["results"], key=lambda r: -r["execution_time"])[:8]
        step["slowest_nodes"] = {r["unique_id"].split(".", 2)[-1]: round(r["execution_time"], 2) for r in slowest}
    return step


def run_python(data_dir: Path, code: str) -> str:
    """``code`` in a fresh interpreter pointed at ``data_dir`` (the stages import lendguard with its env)."""
    done = subprocess.run([sys.executable, "-c", code], env=env_for(data_dir), cwd=REPO,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"step failed:\n{done.stderr[-4000:]}")
    return done.stdout


SETUP = """
import os
from lendguard import pipeline
from warehouse.build import build
from warehouse.importer import land_simulated
from warehouse.paths import Paths
from warehouse.settings import load_settings
paths = Paths.from_env()
land_simulated(paths, {loans}, seed=42)
assert build(paths).ok
settings = load_settings({{**os.environ, "LENDGUARD_DEV_MAX_P99_MS": "60000"}})  # approval follows the dev stages
run = pipeline.run_pipeline(paths, settings=settings)
pipeline.decide(paths, str(run.version), approve=True, by="bench", note="monitoring benchmark", settings=settings)
print(run.version)
"""


def trained_base(workdir: Path, loans: int) -> Path:
    """A deployment with an approved champion (made once per workdir, then reused)."""
    base = workdir / "base"
    if not (base / "version").exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        version = run_python(base, SETUP.format(loans=loans)).strip().splitlines()[-1]
        (base / "version").write_text(version)
    return base


def fresh_copy(base: Path, target: Path) -> Path:
    """``base`` with an empty prediction log (the copy shares nothing with it)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target, symlinks=True)
    log_dir = target / "landing" / "prediction_log"
    for path in log_dir.glob("*.parquet"):
        if not path.name.startswith("0000-seed-"):
            path.unlink()
    return target


LAND = """
import sys
sys.path.insert(0, {repo!r})
from bench.monitoring import land
land({scenario!r}, {n}, seed={seed}, onset={onset}, interval={interval}, prefix={prefix!r}, start={start!r})
"""


def land(scenario: str, n: int, *, seed: int, onset: int | None, interval: float, prefix: str,
         start: str | None = None) -> None:
    """Simulate ``n`` requests of ``scenario``, score them with the champion, land them (in blocks)."""
    # Imported here: this runs in its own interpreter, pointed at the deployment by its environment.
    from ml.registry import load_bundle  # noqa: PLC0415
    from ml.scoring import FeatureScorer  # noqa: PLC0415
    from warehouse import landing  # noqa: PLC0415
    from warehouse.build import current_loan_book  # noqa: PLC0415
    from warehouse.paths import Paths  # noqa: PLC0415
    from warehouse.prediction_log import prediction_log_schema  # noqa: PLC0415
    from warehouse.simulator import simulate_traffic  # noqa: PLC0415

    paths = Paths.from_env()
    bundle = load_bundle(paths, "champion")
    scorer = FeatureScorer(bundle, engine="sql")
    loan_book = current_loan_book(paths)
    schema = prediction_log_schema(loan_book)
    writer = landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, prefix)
    begin = datetime(2026, 1, 5, 8, 0, tzinfo=UTC) if start is None else datetime.fromisoformat(start)
    # One simulated stream; drawn in blocks so memory stays flat (arrival times continue across blocks).
    for first in range(0, n, BLOCK):
        rows = min(BLOCK, n - first)
        block_onset = None if onset is None else max(0, onset - first)
        if scenario == "stable" or (onset is not None and onset >= first + rows):
            traffic = simulate_traffic("stable", rows, seed=seed + first, mean_interval_seconds=interval,
                                       start=begin + timedelta(seconds=first * interval))
        else:
            traffic = simulate_traffic(scenario, rows, seed=seed + first, onset=block_onset,
                                       mean_interval_seconds=interval,
                                       start=begin + timedelta(seconds=first * interval))
        probability = scorer.probabilities(traffic)
        groups = np.asarray(traffic.column(loan_book.group_column).to_pylist(), dtype=object)
        thresholds = np.zeros(rows)
        for group in set(groups):
            thresholds[groups == group] = bundle.threshold_for(group)
        index = np.arange(first, first + rows)
        occurred = traffic.column("occurred_at").cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        columns: dict[str, Any] = {
            "request_id": pa.array([f"{prefix}-{i:09d}" for i in index]),
            "received_at": occurred,
            "occurred_at": occurred,
            "endpoint": pa.array(["/v1/score"] * rows),
            "status_code": pa.array(np.full(rows, 200, dtype=np.int32)),
            "model_name": pa.array([bundle.name] * rows),
            "model_version": pa.array([bundle.version] * rows),
            "threshold": pa.array(thresholds),
            "probability": pa.array(probability),
            "decision": pa.array(np.where(probability >= thresholds, "manual_review", "auto_approve")),
            "mode": pa.array(["normal"] * rows),
            "latency_ms": pa.array(np.full(rows, 3.0)),
        }
        for name in schema.names:
            if name not in columns and name in traffic.column_names:
                columns[name] = traffic.column(name)
        table = pa.table({f.name: (columns[f.name].cast(f.type) if f.name in columns
                                   else pa.nulls(rows, f.type)) for f in schema}, schema=schema)
        writer.write(table, durable=False)


def land_step(data_dir: Path, scenario: str, n: int, *, seed: int, onset: int | None, interval: float,
              prefix: str, start: str | None = None) -> dict[str, float]:
    started = time.perf_counter()
    run_python(data_dir, LAND.format(repo=str(REPO), scenario=scenario, n=n, seed=seed, onset=onset,
                                     interval=interval, prefix=prefix, start=start))
    return {"seconds": round(time.perf_counter() - started, 2)}


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb  # noqa: PLC0415 - only the result readers need it

    snapshot = next((data_dir / "published").glob("*.duckdb"))
    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute(sql).fetchall()


def detection(args: argparse.Namespace, base: Path) -> list[dict[str, Any]]:
    window = 2000
    out = []
    for scenario in args.scenarios:
        n = args.stable_requests if scenario == "stable" else args.requests
        onset = None if scenario == "stable" else args.onset
        data_dir = fresh_copy(base, args.workdir / f"detect-{scenario}")
        row: dict[str, Any] = {"scenario": scenario, "requests": n, "onset": onset}
        row["land"] = land_step(data_dir, scenario, n, seed=args.seed, onset=onset, interval=args.interval,
                                prefix=f"bench-{scenario}")
        row["build"] = run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT)
        count_windows = query(data_dir, "select count(*), sum(case when n_requests >= 500 then 1 else 0 end) "
                                        "from mon_drift_windows where window_kind = 'count'")[0]
        row["count_windows"], row["count_windows_tested"] = count_windows
        alerts = query(data_dir, """
            select a.check_name, a.subject, a.severity, a.window_kind, w.window_index
            from mon_alerts a
            left join mon_drift_windows w
              on w.model_version = a.model_version and w.window_kind = a.window_kind
             and w.window_start = a.window_start and w.window_end = a.window_end
            order by w.window_index nulls last, a.check_name, a.subject
        """)
        row["alerts"] = {
            "total": len(alerts),
            "warn": sum(1 for a in alerts if a[2] == "warn"),
            "critical": sum(1 for a in alerts if a[2] == "critical"),
            "by_check": {c: sum(1 for a in alerts if a[0] == c) for c in sorted({a[0] for a in alerts})},
        }
        if onset is not None:
            counted = [a for a in alerts if a[3] == "count" and a[4] is not None]
            before = [a for a in counted if (a[4] + 1) * window <= onset]
            after = [a for a in counted if (a[4] + 1) * window > onset]
            row["alerts_before_onset"] = len(before)
            if after:
                first = min(a[4] for a in after)
                row["first_alert_window"] = first
                row["requests_onset_to_alert"] = (first + 1) * window - onset
                row["fired"] = sorted({f"{a[0]}:{a[1]} ({a[2]})" for a in after if a[4] == first})
            else:
                row["first_alert_window"] = row["requests_onset_to_alert"] = None
        out.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def scale(args: argparse.Namespace, base: Path) -> list[dict[str, Any]]:
    out = []
    for n in args.rows:
        data_dir = fresh_copy(base, args.workdir / f"scale-{n}")
        row: dict[str, Any] = {"rows": n, "loadavg_start": loadavg()}
        row["land"] = land_step(data_dir, "stable", n, seed=args.seed, onset=None, interval=args.interval,
                                prefix="bench-scale")
        # --full-refresh: every incremental mart built from scratch (a first build, whatever the copy holds).
        row["build"] = run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT)
        end = float(n) * args.interval
        start = (np.datetime64("2026-01-05T08:00:00") + np.timedelta64(int(end), "s")).astype(str) + "+00:00"
        row["land_new"] = land_step(data_dir, "stable", args.new_rows, seed=args.seed + 10**9, onset=None,
                                    interval=args.interval, prefix="bench-new", start=start)
        row["new_rows"] = args.new_rows
        row["incremental"] = run_step(data_dir, "build", "--select", *MONITOR_SELECT)
        if args.full_refresh:  # the same rows rebuilt whole, for comparison with the incremental run
            row["full_refresh"] = run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT)
        row["loadavg_end"] = loadavg()
        out.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["detection", "scale"])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lendguard-bench-monitoring")
    parser.add_argument("--loans", type=int, default=30_000, help="loan book of the trained deployment")
    parser.add_argument("--scenarios", nargs="+", default=[*DRIFT_SCENARIOS, "stable"])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per drift scenario")
    parser.add_argument("--stable-requests", type=int, default=1_000_000)
    parser.add_argument("--onset", type=int, default=2000)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--new-rows", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.25, help="mean seconds between requests")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--full-refresh", action="store_true", help="scale: also time a --full-refresh run")
    parser.add_argument("--keep", action="store_true", help="keep the deployments in --workdir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    record: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(["python", *sys.argv]),
        "loadavg_start": loadavg(),
    }
    base = trained_base(args.workdir, args.loans)
    record["results"] = detection(args, base) if args.phase == "detection" else scale(args, base)
    record["loadavg_end"] = loadavg()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
