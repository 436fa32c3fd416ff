"""Benchmark (issue #6, items 6 and 7; issue #14, item 7): drift detection delay and false alarms;
monitoring build at scale.

* ``detection``: a trained deployment (30,000 simulated loans, ``BOOK_SEED``; train / thresholds / evaluate / gate,
  approved) is copied once per scenario of ``warehouse.simulator`` (and ``slow_drift``: income sent
  falls linearly to 80 % over SLOW_DRIFT_REQUESTS requests from the onset); N requests of the
  scenario (onset 3,000 by default: the middle of a count window) are scored by the champion's
  compiled SQL (``ml.scoring.FeatureScorer``, the API's scorer), landed as prediction-log rows
  (``warehouse.landing.LandingWriter``) and the monitoring selection is built (``lendguard build
  --select path:models/staging path:models/intermediate/monitoring path:models/monitoring``, what
  ``lendguard monitor`` builds).
  Reported: the first alerting count window after the onset and requests from onset to its end,
  per check, and which checks fired first. ``stable`` (1M requests by default,
  ``--stable-requests``) is landed in ``--monitor-runs`` parts (10), each followed by ``lendguard
  monitor``, with late rows (their own timestamps up to 6 hours before receipt), back-dated ones (a
  year before) and, from the second part on, another replica's file landed late (received before
  rows already built) mixed in: reported are alerts notified, re-notified (an alert id notified
  twice), critical and warn, and the failover sets.
* ``scale``: the same trained deployment with N logged predictions (stable traffic, simulated in
  blocks, scored by the same compiled SQL); the monitoring selection is built with
  ``--full-refresh`` in a fresh process (wall time, peak RSS of the process and its children, dbt's
  elapsed time and its slowest nodes), then 10,000 new rows are landed and the incremental run is
  timed, and with ``--full-refresh`` a rebuild of the same rows for comparison.
* ``engines`` (issue #17, item 8): that build on DuckDB and on Spark ``local[2]``, same run, same
  landed log. A copy of the trained deployment is first built whole on Spark while its log holds
  only the seed rows (``LENDGUARD_ENGINE=spark lendguard build``: the training, gate and reference
  tables the monitoring models read), then N requests are landed once. Each engine then builds the
  monitoring selection with ``--full-refresh`` in a fresh process; 10,000 new rows are landed and
  each engine's incremental run is timed (not with ``--skip-incremental``); the marts' row counts are
  compared between the engines.
  ``--prepare-only`` stops after the landing (prepare on a busy machine, time on a quiet one: the
  next run finds the prepared copy in ``--workdir`` and starts at the builds).

Each build is its own ``lendguard`` process; peak RSS is ru_maxrss of that process and its children.

    .venv/bin/python bench/monitoring.py detection --out bench/results/monitoring-detection.json
    .venv/bin/python bench/monitoring.py scale --rows 1000000 10000000 --full-refresh \
        --out bench/results/monitoring-scale.json
    .venv/bin/python bench/monitoring.py engines --rows 10000000 --keep --out bench/results/monitoring-engines.json
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

MONITOR_SELECT = ["path:models/staging", "path:models/intermediate/monitoring", "path:models/monitoring"]
BLOCK = 250_000
DRIFT_SCENARIOS = ("economic_shock", "purpose_shift", "group_mix", "income_in_thousands", "group_score_shift",
                   "slow_drift")
SLOW_DRIFT_REQUESTS = 20_000
"""slow_drift: the income sent falls linearly from 100 % at the onset to 80 % this many requests later."""
LATE_SHARE = 0.02
"""Of the stable parts' rows, this share arrive late: their own timestamps up to LATE_HOURS before receipt."""
LATE_HOURS = 6
BACK_DATED = 3
"""Rows per stable part dated a year before receipt."""
REPLICA_ROWS = 500
"""Rows of the late replica file landed with each stable part after the first, received from
REPLICA_LAG_SECONDS before the previous part's end (inside the monitoring lookback)."""
REPLICA_LAG_SECONDS = 600


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def env_for(data_dir: Path, engine: str = "duckdb") -> dict[str, str]:
    return {
        **os.environ,
        "LENDGUARD_DATA_DIR": str(data_dir),
        "LENDGUARD_ENGINE": engine,
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (/proc/stat: user to steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    return sum(int(f) for i, f in enumerate(fields) if i not in (3, 4)) / os.sysconf("SC_CLK_TCK")  # not idle, iowait


def run_step(data_dir: Path, *args: str, engine: str = "duckdb") -> dict[str, float]:
    """One ``lendguard`` command in a fresh process: wall seconds and peak RSS (it and its children).

    ``machine_cpu_seconds`` is the whole machine's CPU over the step: on a quiet machine, the step's
    own with every process it starts (Spark's JVM and its Python workers, which the process's
    rusage may not see: pyspark does not always wait for them)."""
    started, machine_cpu = time.perf_counter(), machine_cpu_seconds()
    process = subprocess.Popen([sys.executable, "-m", "lendguard.cli", *args], env=env_for(data_dir, engine),
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    machine_cpu = machine_cpu_seconds() - machine_cpu
    if os.waitstatus_to_exitcode(status) not in (0, 1, 3):  # 1: a (monitor) test failed, marts built; 3: critical
        raise SystemExit(f"lendguard {' '.join(args)} failed: {process.stderr.read().decode()[-3000:]}")
    # CPU seconds too: the machine is shared, and CPU time moves less than wall time with others' load.
    step: dict[str, Any] = {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                            "machine_cpu_seconds": round(machine_cpu, 1)}
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
land_simulated(paths, {loans}, seed={seed})
assert build(paths).ok
settings = load_settings({{**os.environ, "LENDGUARD_DEV_MAX_P99_MS": "60000"}})  # approval follows the dev stages
run = pipeline.run_pipeline(paths, settings=settings, candidates={candidates!r})
pipeline.decide(paths, str(run.version), approve=True, by="bench", note="monitoring benchmark", settings=settings)
print(run.version)
"""


BOOK_SEED = 11
BOOK_CANDIDATES = ["logreg_c0.1"]
"""The trained deployment's book and model: the tests' shared one (``tests/support/deployment.py``:
on 30,000 loans of seed 11 cross-validation selects logistic C=0.1, and it passes the gate; seed 42's
book at that size fails the gate's FPR-gap test, 0.061 against 0.05)."""


def trained_base(workdir: Path, loans: int) -> Path:
    """A deployment with an approved champion (made once per workdir, then reused)."""
    base = workdir / "base"
    if not (base / "version").exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        setup = SETUP.format(loans=loans, seed=BOOK_SEED, candidates=BOOK_CANDIDATES)
        version = run_python(base, setup).strip().splitlines()[-1]
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
land({scenario!r}, {n}, seed={seed}, onset={onset}, interval={interval}, prefix={prefix!r}, start={start!r},
     late_share={late_share}, back_dated={back_dated})
"""


def land(scenario: str, n: int, *, seed: int, onset: int | None, interval: float, prefix: str,
         start: str | None = None, late_share: float = 0.0, back_dated: int = 0) -> None:
    """Simulate ``n`` requests of ``scenario``, score them with the champion, land them (in blocks).

    Received in order, ``interval`` seconds apart on average; ``late_share`` of them carry their own
    timestamp up to LATE_HOURS earlier, and ``back_dated`` of each block one a year earlier.
    """
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
        if scenario in ("stable", "slow_drift") or (onset is not None and onset >= first + rows):
            traffic = simulate_traffic("stable", rows, seed=seed + first, mean_interval_seconds=interval,
                                       start=begin + timedelta(seconds=first * interval))
            if scenario == "slow_drift" and onset is not None:
                traffic = slow_drift(traffic, np.arange(first, first + rows), onset)
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
        received = traffic.column("occurred_at").cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        occurred = received_to_occurred(received, np.random.default_rng(seed + first), late_share, back_dated)
        columns: dict[str, Any] = {
            "request_id": pa.array([f"{prefix}-{i:09d}" for i in index]),
            "received_at": received,
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


def slow_drift(traffic: pa.Table, index: np.ndarray, onset: int) -> pa.Table:
    """The income sent falls linearly from 100 % at ``onset`` to 80 % SLOW_DRIFT_REQUESTS later, then stays."""
    progress = np.clip((index - onset) / SLOW_DRIFT_REQUESTS, 0.0, 1.0)
    income = traffic.column("annual_income").to_numpy() * (1.0 - 0.2 * progress)
    position = traffic.column_names.index("annual_income")
    return traffic.set_column(position, "annual_income", pa.array(np.round(income, 2)))


def received_to_occurred(received: pa.Array, rng: np.random.Generator, late_share: float, back_dated: int) -> pa.Array:
    """The applications' own timestamps: the receipt time, but earlier for the late and back-dated rows."""
    micros = received.cast(pa.int64()).to_numpy().copy()
    late = rng.random(len(micros)) < late_share
    micros[late] -= (rng.random(int(late.sum())) * LATE_HOURS * 3600e6).astype(np.int64)
    if back_dated:
        micros[rng.choice(len(micros), size=min(back_dated, len(micros)), replace=False)] -= 365 * 86_400_000_000
    return pa.array(micros, type=pa.int64()).cast(pa.timestamp("us"))


def land_step(data_dir: Path, scenario: str, n: int, *, seed: int, onset: int | None, interval: float,
              prefix: str, start: str | None = None, late_share: float = 0.0, back_dated: int = 0) -> dict[str, float]:
    started = time.perf_counter()
    run_python(data_dir, LAND.format(repo=str(REPO), scenario=scenario, n=n, seed=seed, onset=onset,
                                     interval=interval, prefix=prefix, start=start, late_share=late_share,
                                     back_dated=back_dated))
    return {"seconds": round(time.perf_counter() - started, 2)}


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb  # noqa: PLC0415 - only the result readers need it

    snapshot = next((data_dir / "published").glob("*.duckdb"))
    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute(sql).fetchall()


def detection(args: argparse.Namespace, base: Path) -> list[dict[str, Any]]:
    out = []
    for scenario in args.scenarios:
        data_dir = fresh_copy(base, args.workdir / f"detect-{scenario}")
        row = stable_runs(args, data_dir) if scenario == "stable" else drift_delay(args, data_dir, scenario)
        out.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def drift_delay(args: argparse.Namespace, data_dir: Path, scenario: str) -> dict[str, Any]:
    """One drifting stream, one build: the first alerting count window after the onset, per check."""
    window = 2000
    onset = args.onset
    n = max(args.requests, onset + SLOW_DRIFT_REQUESTS + 4 * window) if scenario == "slow_drift" else args.requests
    row: dict[str, Any] = {"scenario": scenario, "requests": n, "onset": onset}
    row["land"] = land_step(data_dir, scenario, n, seed=args.seed, onset=onset, interval=args.interval,
                            prefix=f"bench-{scenario}")
    row["build"] = run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT)
    count_windows = query(data_dir, "select count(*), sum(case when n_requests >= 500 then 1 else 0 end) "
                                    "from int_drift_windows where window_kind = 'count'")[0]
    row["count_windows"], row["count_windows_tested"] = count_windows
    alerts = query(data_dir, "select check_name, subject, severity, window_kind, window_key from mon_alerts "
                             "order by window_key, check_name, subject")
    row["alerts"] = alert_counts(alerts)
    counted = [a for a in alerts if a[3] == "count"]
    row["alerts_before_onset"] = sum(1 for a in counted if (a[4] + 1) * window <= onset)
    after = [a for a in counted if (a[4] + 1) * window > onset]
    first_by_check = {check: min(a[4] for a in after if a[0] == check) for check in sorted({a[0] for a in after})}
    row["requests_onset_to_alert_by_check"] = {c: (k + 1) * window - onset for c, k in first_by_check.items()}
    if after:
        first = min(first_by_check.values())
        row["first_alert_window"] = first
        row["requests_onset_to_alert"] = (first + 1) * window - onset
        row["fired"] = sorted({f"{a[0]}:{a[1]} ({a[2]})" for a in after if a[4] == first})
    else:
        row["first_alert_window"] = row["requests_onset_to_alert"] = None
    return row


def alert_counts(alerts: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Totals of (check_name, subject, severity, ...) rows: all, warn, critical, per check."""
    return {
        "total": len(alerts),
        "warn": sum(1 for a in alerts if a[2] == "warn"),
        "critical": sum(1 for a in alerts if a[2] == "critical"),
        "by_check": {c: sum(1 for a in alerts if a[0] == c) for c in sorted({a[0] for a in alerts})},
    }


def stable_runs(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Stable traffic in ``--monitor-runs`` parts, each followed by ``lendguard monitor``, with late,
    back-dated and late-replica rows mixed in: what was notified, and whether anything twice."""
    n, parts = args.stable_requests, args.monitor_runs
    begin = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    row: dict[str, Any] = {"scenario": "stable", "requests": n, "monitor_runs": parts, "late_share": LATE_SHARE,
                           "back_dated_per_part": BACK_DATED, "replica_rows_per_part": REPLICA_ROWS, "runs": []}
    size = n // parts
    for part in range(parts):
        step: dict[str, Any] = {"part": part}
        start = begin + timedelta(seconds=part * size * args.interval)
        step["land"] = land_step(data_dir, "stable", size, seed=args.seed + part * 7919, onset=None,
                                 interval=args.interval, prefix=f"bench-stable-{part:02d}", start=start.isoformat(),
                                 late_share=LATE_SHARE, back_dated=BACK_DATED)
        if part:  # another replica's file, received before the end of the part the last run built
            replica_start = start - timedelta(seconds=REPLICA_LAG_SECONDS)
            land_step(data_dir, "stable", REPLICA_ROWS, seed=args.seed + 10**6 + part, onset=None,
                      interval=REPLICA_LAG_SECONDS / REPLICA_ROWS, prefix=f"bench-replica-{part:02d}",
                      start=replica_start.isoformat())
        step["monitor"] = run_step(data_dir, "monitor")
        row["runs"].append(step)
    notified = landed(data_dir, "alert_notifications", "alert_id, check_name, subject, severity, window_kind")
    ids = [a[0] for a in notified]
    row["notified"] = alert_counts([a[1:] for a in notified])
    row["re_notified"] = len(ids) - len(set(ids))
    row["failover_sets"] = len([e for e in landed(data_dir, "failover_events", "action") if e[0] == "set"])
    row["alerts_open_at_end"] = alert_counts(query(data_dir, "select check_name, subject, severity from mon_alerts"))
    row["count_windows"] = query(data_dir, "select count(*) from int_drift_windows where window_kind = 'count'")[0][0]
    return row


def landed(data_dir: Path, dataset: str, columns: str) -> list[tuple[Any, ...]]:
    """Rows of a landing dataset (none when nothing was landed)."""
    import duckdb  # noqa: PLC0415 - only the result readers need it

    files = list((data_dir / "landing" / dataset).glob("*.parquet"))
    if not files:
        return []
    with duckdb.connect() as con:
        return con.execute(f"select {columns} from read_parquet(?, union_by_name = true)",
                           [[str(f) for f in files]]).fetchall()


def land_new_rows(args: argparse.Namespace, data_dir: Path, n: int, *, prefix: str) -> dict[str, Any]:
    """``--new-rows`` stable requests received after the ``n`` already landed (what an incremental run builds)."""
    end = float(n) * args.interval
    start = (np.datetime64("2026-01-05T08:00:00") + np.timedelta64(int(end), "s")).astype(str) + "+00:00"
    landed = land_step(data_dir, "stable", args.new_rows, seed=args.seed + 10**9, onset=None,
                       interval=args.interval, prefix=prefix, start=start)
    return {"land_new": landed, "new_rows": args.new_rows}


def scale(args: argparse.Namespace, base: Path) -> list[dict[str, Any]]:
    out = []
    for n in args.rows:
        data_dir = fresh_copy(base, args.workdir / f"scale-{n}")
        row: dict[str, Any] = {"rows": n, "loadavg_start": loadavg()}
        row["land"] = land_step(data_dir, "stable", n, seed=args.seed, onset=None, interval=args.interval,
                                prefix="bench-scale")
        # --full-refresh: every incremental mart built from scratch (a first build, whatever the copy holds).
        row["build"] = run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT)
        row |= land_new_rows(args, data_dir, n, prefix="bench-new")
        row["incremental"] = run_step(data_dir, "build", "--select", *MONITOR_SELECT)
        if args.full_refresh:  # the same rows rebuilt whole, for comparison with the incremental run
            row["full_refresh"] = run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT)
        row["loadavg_end"] = loadavg()
        out.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


ENGINES = ("duckdb", "spark")


def engines(args: argparse.Namespace, base: Path) -> list[dict[str, Any]]:
    """The monitoring build on each engine over the same landed log (the ``engines`` phase above)."""
    out = []
    for n in args.rows:
        data_dir = args.workdir / f"engines-{n}"
        prepared = data_dir / "prepared.json"
        if not prepared.exists():
            fresh_copy(base, data_dir)
            steps = {"spark_build_before_log": run_step(data_dir, "build", engine="spark"),
                     "land": land_step(data_dir, "stable", n, seed=args.seed, onset=None, interval=args.interval,
                                       prefix="bench-engines")}
            prepared.write_text(json.dumps(steps))
        row: dict[str, Any] = {"rows": n, "prepare": json.loads(prepared.read_text())}
        if args.prepare_only:
            out.append(row)
            continue
        row["loadavg_start"] = loadavg()
        row["full_refresh"] = {engine: run_step(data_dir, "build", "--full-refresh", "--select", *MONITOR_SELECT,
                                                engine=engine) for engine in ENGINES}
        if not args.skip_incremental:
            row |= land_new_rows(args, data_dir, n, prefix="bench-engines-new")
            row["incremental"] = {engine: run_step(data_dir, "build", "--select", *MONITOR_SELECT, engine=engine)
                                  for engine in ENGINES}
        row["loadavg_end"] = loadavg()
        row["mart_rows"] = mart_row_counts(data_dir)
        out.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


MART_ROWS = """
import json
from dataclasses import replace
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.settings import EngineSettings
paths = Paths.from_env()
counts = {}
for engine in ("duckdb", "spark"):
    with open_marts(replace(paths, engine=EngineSettings(engine=engine))) as marts:
        counts[engine] = {t: marts.rows(f"select count(*) as n from {t}")[0]["n"]
                          for t in marts.tables() if t.startswith("mon_")}
print(json.dumps(counts))
"""


def mart_row_counts(data_dir: Path) -> dict[str, Any]:
    """Rows of each ``mon_*`` mart on both engines, and the marts whose counts differ."""
    counts = json.loads(run_python(data_dir, MART_ROWS).strip().splitlines()[-1])
    differ = sorted(t for t in counts["duckdb"].keys() | counts["spark"].keys()
                    if counts["duckdb"].get(t) != counts["spark"].get(t))
    return {"by_engine": counts, "differ": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["detection", "scale", "engines"])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lendguard-bench-monitoring")
    parser.add_argument("--loans", type=int, default=30_000, help="loan book of the trained deployment")
    parser.add_argument("--scenarios", nargs="+", default=[*DRIFT_SCENARIOS, "stable"])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per drift scenario")
    parser.add_argument("--stable-requests", type=int, default=1_000_000,
                        help="stable requests in all (the full size is 1M; a loaded machine may want fewer)")
    parser.add_argument("--monitor-runs", type=int, default=10, help="stable: parts, each followed by a monitor run")
    parser.add_argument("--onset", type=int, default=3000, help="first drifted request (3,000: mid count window)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--new-rows", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.25, help="mean seconds between requests")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--full-refresh", action="store_true", help="scale: also time a --full-refresh run")
    parser.add_argument("--keep", action="store_true", help="keep the deployments in --workdir")
    parser.add_argument("--prepare-only", action="store_true",
                        help="engines: build on Spark and land the log, then stop (time on a later run)")
    parser.add_argument("--skip-incremental", action="store_true",
                        help="engines: time the full builds only, not the 10,000 new rows' incremental runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    record: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(["python", *sys.argv]),
        "loadavg_start": loadavg(),
    }
    base = trained_base(args.workdir, args.loans)
    record["results"] = {"detection": detection, "scale": scale, "engines": engines}[args.phase](args, base)
    record["loadavg_end"] = loadavg()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
