"""Benchmark: the scoring API under load on loopback, 1 worker vs 2 workers, against a bare Litestar
endpoint (the ceiling) and a seed-style Flask baseline (the floor).

    .venv/bin/python bench/api_load.py --out bench/results/api-load.json

Sets up a fresh deployment (simulated loans, trained, gated, approved), then measures four servers
in the same run, one at a time (each started, measured, stopped, so none competes with another):

* ``api-1``: ``lendguard serve`` (validation, micro-batched scoring with the compiled SQL, reason
  codes, durable group-commit prediction log), one uvicorn process as in production;
* ``api-2``: ``lendguard serve --workers 2``: two such processes on one port;
* ``bare``: ``bench/bare_app.py`` (parse JSON, answer a constant), one uvicorn process;
* ``flask``: ``bench/flask_baseline.py`` under gunicorn with 2 sync workers (scikit-learn pipeline,
  one committed SQLite insert per request).

Each is measured with:

* closed loop: ``wrk`` (Debian package) at several connection counts, 10 s each, POSTing real
  applications in rotation (a Lua script); throughput and wrk's p50/p99;
* open loop (not for ``flask``: gunicorn's sync workers close every connection, and the generator
  keeps its connections alive): a fixed arrival rate (default 500 and 1,000 requests/s) from an
  asyncio generator; latency is measured from each request's *scheduled* send time, so a stalled
  server cannot hide its queueing (no coordinated omission);
* the server's CPU per request (all its processes), its peak resident memory (``VmHWM``, summed over
  its processes), and for the API the prediction log's rows (every 200 must be logged).

The load generators share the 2 cores with the servers: the numbers are what one machine does with
both, not the server alone. The goals (issue 13): api-2 ≥ 20× flask's best closed-loop throughput,
and api-2's open-loop p99 ≤ 20 ms at 1,000 requests/s; ``goals`` in the output says whether they held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop
from record import command, emit, machine

from lendguard.processes import start_server

HERE = Path(__file__).resolve().parent
PORTS = {"bare": 8412, "api-1": 8411, "api-2": 8413, "flask": 8414}
STARTUP_SECONDS = 600
"""A server loads MLflow and the model first: minutes on a machine busy with other work."""
READY_LINES = {"api-2": "start-up heap frozen", "flask": "flask baseline ready"}
"""What each of a 2-worker server's workers logs once it has loaded the model."""
GOAL_FLASK_RATIO, GOAL_P99_MS, GOAL_RATE = 20.0, 20.0, 1000.0


def commands(port: int) -> dict[str, list[str]]:
    """How each measured server is started, on ``port``."""
    serve = [sys.executable, "-m", "lendguard.cli", "serve", "--port", str(port)]
    return {
        "bare": [sys.executable, str(HERE / "bare_app.py"), str(port)],
        "api-1": serve,
        "api-2": [*serve, "--workers", "2"],
        "flask": [str(Path(sys.executable).with_name("gunicorn")), "-w", "2", "--timeout", "120",
                  "-b", f"127.0.0.1:{port}", "--chdir", str(HERE), "flask_baseline:app"],
    }


def deployment_env(folder: str) -> dict[str, str]:
    """The environment of a fresh bench deployment in ``folder``, for the servers under test; set in this
    process too, so that :func:`setup` builds the deployment there."""
    env = {**os.environ, "LENDGUARD_DATA_DIR": folder, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "LENDGUARD_MODEL_POLL_SECONDS": "0"}
    os.environ.update(env)
    return env


def setup(loans: int) -> Any:
    """A deployment with an approved champion, in the current LENDGUARD_DATA_DIR."""
    from lendguard import pipeline  # noqa: PLC0415 - after the environment points at the bench deployment
    from warehouse.build import build  # noqa: PLC0415
    from warehouse.importer import land_simulated  # noqa: PLC0415
    from warehouse.paths import Paths  # noqa: PLC0415
    from warehouse.settings import load_settings  # noqa: PLC0415

    paths = Paths.from_env()
    land_simulated(paths, loans, seed=42)
    build(paths)
    # an approval follows every stage before it: the whole pipeline, the dev API on LENDGUARD_DEV_API_PORT
    # (its p99 limit out of the way: this script measures latency itself)
    settings = load_settings({**os.environ, "LENDGUARD_DEV_MAX_P99_MS": "60000"})
    run = pipeline.run_pipeline(paths, settings=settings)
    pipeline.decide(paths, str(run.version), approve=True, by="bench", note="load benchmark", settings=settings)
    return paths


def bodies(n: int) -> list[dict[str, Any]]:
    from warehouse.loan_book import simulated_schema  # noqa: PLC0415
    from warehouse.simulator import simulate_traffic  # noqa: PLC0415

    book = simulated_schema()
    rows = simulate_traffic("stable", n, seed=7).select([*book.input_names, book.group_column]).to_pylist()
    return [{**row, "application_id": f"bench-{i}"} for i, row in enumerate(rows)]


def wait_for_line(log: Path, text: str, *, times: int, timeout: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(text) < times:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{text!r} not logged {times} times; see {log}")
        time.sleep(0.25)


def lua_script(sample: list[dict[str, Any]], folder: Path) -> Path:
    """wrk script: POST the sample's bodies in rotation."""
    encoded = ",\n".join("[[" + json.dumps(b) + "]]" for b in sample)
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{\n{encoded}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    return script


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    """Closed loop at ``connections``: requests/s, p50/p99 ms and non-2xx count, from wrk's report."""
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$",
                                                                          out, re.MULTILINE)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections, "seconds": seconds,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": round(percentiles[50], 2), "p99_ms": round(percentiles[99], 2),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "none",
    }


async def _open_loop(port: int, payloads: list[bytes], rate: float, seconds: float, connections: int) -> dict[str, Any]:
    """Each request is due at ``i / rate``; a connection sends its share in order (keep-alive)."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    latencies = np.full(total, np.nan)
    statuses = np.zeros(total, dtype=int)

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(offset, total, connections):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(payloads[i % len(payloads)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies[i] = (time.perf_counter() - due) * 1e3
            statuses[i] = int(head[9:12])
        writer.close()

    await asyncio.gather(*(connection(c) for c in range(connections)))
    elapsed = time.perf_counter() - start
    return {
        "target_rate": rate, "requests": total, "achieved_rate": round(total / elapsed, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "max_ms": round(float(np.max(latencies)), 2), "non_200": int((statuses != 200).sum()),
    }


def open_loop(port: int, sample: list[dict[str, Any]], rate: float, seconds: float) -> dict[str, Any]:
    payloads = []
    for body in sample:
        data = json.dumps(body).encode()
        payloads.append(b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    # uvloop: the generator shares the cores with the server, so it should take as little as it can
    # (0.08 ms of CPU per request against 0.10 with asyncio's own loop).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_open_loop(port, payloads, rate, seconds, connections=64))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor's workers), from /proc."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found.extend(process_tree(int(child)))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants so far (from /proc)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # exited meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def gc_pauses(port: int) -> dict[str, float]:
    """The API's full-collection count and pause seconds so far, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = dict(re.findall(r'^lendguard_gc_(collections_total|pause_seconds_total)\{generation="2"\} (\S+)$',
                            text, re.MULTILINE))
    return {name: float(value) for name, value in found.items()}


def measured(pid: int, port: int | None, run: Any) -> dict[str, Any]:
    """``run()``'s result plus the server's CPU per request and, for the 1-worker API (one process
    answers /metrics), its full GC passes."""
    cpu, pauses = cpu_seconds(pid), gc_pauses(port) if port else {}
    result = run()
    answered = result.get("requests") or round(result["requests_per_s"] * result["seconds"])
    result["server_cpu_ms_per_request"] = round((cpu_seconds(pid) - cpu) * 1000 / answered, 3)
    if port:
        after = gc_pauses(port)
        result["full_gc_passes"] = int(after["collections_total"] - pauses["collections_total"])
        result["full_gc_pause_ms"] = round((after["pause_seconds_total"] - pauses["pause_seconds_total"]) * 1000, 1)
    return result


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of ``pid`` and its descendants, summed (each process's own peak)."""
    total = 0
    for member in process_tree(pid):
        status = Path(f"/proc/{member}/status").read_text()
        total += int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return round(total / 1024, 1)


def logged_rows(landing: Path) -> int:
    import duckdb  # noqa: PLC0415

    files = str(landing / "prediction_log" / "*.parquet")
    return int(duckdb.sql(f"select count(*) from read_parquet('{files}', union_by_name=true) "
                          "where status_code = 200").fetchone()[0])  # type: ignore[index]


def goals(results: dict[str, Any], best: dict[str, float]) -> dict[str, Any]:
    """Whether api-2 reached the issue's goals (None where this run did not measure what a goal needs)."""
    ratio = best["api-2"] / best["flask"] if {"api-2", "flask"} <= best.keys() else None
    at_rate = [r for r in results["open_loop"].get("api-2", []) if r["target_rate"] == GOAL_RATE]
    p99 = at_rate[0]["p99_ms"] if at_rate else None
    return {
        "api2_over_flask_throughput": None if ratio is None else round(ratio, 1),
        "api2_over_api1_throughput": round(best["api-2"] / best["api-1"], 2) if {"api-1", "api-2"} <= best.keys()
        else None,
        "api2_share_of_bare_throughput": round(best["api-2"] / best["bare"], 3) if {"api-2", "bare"} <= best.keys()
        else None,
        f"throughput_at_least_{GOAL_FLASK_RATIO:.0f}x_flask": None if ratio is None else ratio >= GOAL_FLASK_RATIO,
        f"api2_p99_ms_at_{GOAL_RATE:.0f}_per_s": p99,
        f"p99_at_most_{GOAL_P99_MS:.0f}_ms": None if p99 is None else p99 <= GOAL_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=30_000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=float, nargs="+", default=[500.0, 1000.0])
    parser.add_argument("--api-env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra settings for the API process, e.g. LENDGUARD_LOG_MAX_WAIT_MS=0")
    parser.add_argument("--servers", nargs="+", choices=list(PORTS), default=list(PORTS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="lendguard-load-") as tmp:
        folder = Path(tmp)
        env = deployment_env(tmp)
        setup(args.loans)
        sample = bodies(2_000)
        script = lua_script(sample, folder)
        api_env = dict(setting.split("=", 1) for setting in args.api_env)
        results: dict[str, Any] = {"closed_loop": {}, "open_loop": {}, "peak_rss_mb": {}}
        for name in args.servers:
            port = PORTS[name]
            server_env = {**env, **api_env} if name.startswith("api") else env
            # Any answer means it listens: the bare and Flask apps have no /readyz.
            server = start_server(commands(port)[name], port=port, log_path=folder / f"{name}.log", env=server_env,
                                  name=name, timeout=STARTUP_SECONDS, ready_statuses={200, 404, 405})
            process = server.process
            try:
                if name in READY_LINES:  # ready once one worker is: wait for the other too
                    wait_for_line(folder / f"{name}.log", READY_LINES[name], times=2)
                url, metrics_port = f"http://127.0.0.1:{port}/v1/score", port if name == "api-1" else None
                wrk(url, 8, 2, script)  # warm-up
                results["closed_loop"][name] = [
                    measured(process.pid, metrics_port, lambda c=connections, u=url: wrk(u, c, args.seconds, script))
                    for connections in args.connections]
                if name != "flask":
                    results["open_loop"][name] = [
                        measured(process.pid, metrics_port,
                                 lambda r=rate, p=port: open_loop(p, sample, r, args.seconds))
                        for rate in args.rate]
                if process.poll() is not None:
                    log = (folder / f"{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"the {name} server exited with {process.returncode} during the runs:\n{log}")
                results["peak_rss_mb"][name] = peak_rss_mb(process.pid)
            finally:
                server.stop(90)
        results["api_logged_200_rows"] = logged_rows(folder / "landing")
    best = {name: max(r["requests_per_s"] for r in runs) for name, runs in results["closed_loop"].items()}
    record = {
        "command": command(),
        "machine": {**machine(),
                    "load_average_at_end": os.getloadavg()},
        "loans": args.loans, "api_env": api_env, **results,
        "best_closed_loop_requests_per_s": best,
        "goals": goals(results, best),
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
