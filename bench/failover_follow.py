"""How fast an API replica follows the failover flag set or cleared by another process.

A writer process toggles the flag (``warehouse.failover.set_failover`` / ``clear_failover``, as
monitoring or ``POST /v1/admin/failover`` on another replica would) every ``--spacing`` seconds;
this process runs the API's :class:`~api.failover.FailoverFollower` with its default poll and
records, for every change, the time from the flag file's replacement (its mtime) to the follower
applying it. Also measures what one check costs when nothing changed (one ``stat``).

    .venv/bin/python bench/failover_follow.py --changes 20 --out bench/results/failover-follow.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import emit, machine  # noqa: E402

from api.failover import FailoverFollower  # noqa: E402
from api.reload import ModelSlot  # noqa: E402
from warehouse.failover import flag_path, set_failover  # noqa: E402
from warehouse.paths import Paths  # noqa: E402
from warehouse.settings import ApiSettings  # noqa: E402

WRITER = """
import sys, time
from warehouse.failover import set_failover, clear_failover
from warehouse.paths import Paths
paths, changes, spacing = Paths.from_env(), int(sys.argv[1]), float(sys.argv[2])
for index in range(changes):
    time.sleep(spacing)
    if index % 2 == 0:
        set_failover(paths, by="bench", reason=f"change {index}")
    else:
        clear_failover(paths, by="bench", note=f"change {index}")
"""


async def follow(paths: Paths, settings: ApiSettings, changes: int, spacing: float) -> list[float]:
    follower = FailoverFollower(paths, settings, ModelSlot(), None)
    await follower.start()
    env = {**os.environ, "LENDGUARD_DATA_DIR": str(paths.data_dir), "PYTHONPATH": str(ROOT)}
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(changes), str(spacing), env=env, cwd=ROOT)
    latencies: list[float] = []
    seen = follower.noticed_at
    try:
        while len(latencies) < changes:
            await asyncio.sleep(0.005)
            if follower.noticed_at != seen and follower.noticed_at is not None:
                seen = follower.noticed_at
                latencies.append(seen - flag_path(paths).stat().st_mtime)
    finally:
        await writer.wait()
        await follower.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=1.3, help="seconds between changes")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = ApiSettings()
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths.from_env({"LENDGUARD_DATA_DIR": str(Path(tmp) / "data")})
        set_failover(paths, by="bench", reason="create the file")
        flag = flag_path(paths)
        stat_us = min(timeit.repeat(flag.stat, number=10_000, repeat=5)) / 10_000 * 1e6
        latencies = asyncio.run(follow(paths, settings, args.changes, args.spacing))
    result = {
        "poll_seconds": settings.failover_poll_seconds,
        "changes": len(latencies),
        "follow_seconds": {
            "min": round(min(latencies), 3), "median": round(statistics.median(latencies), 3),
            "max": round(max(latencies), 3), "mean": round(statistics.fmean(latencies), 3),
        },
        "stat_microseconds": round(stat_us, 2),
        "machine": machine(),
        "recorded": time.strftime("%Y-%m-%d"),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
