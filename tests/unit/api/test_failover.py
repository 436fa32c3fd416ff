"""The API follows the failover flag file: set or cleared by another process, seen within a poll."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from api.failover import FailoverFollower
from api.reload import LoadedModel, ModelSlot
from tests.support.deployment import deployment_env
from warehouse.failover import FailoverState, clear_failover, flag_path, set_failover
from warehouse.paths import Paths
from warehouse.settings import ApiSettings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]


def in_another_process(paths: Paths, code: str) -> None:
    """Run ``code`` (with ``paths`` and the failover functions in scope) as a separate process: a replica's view."""
    script = ("from warehouse.failover import set_failover, clear_failover\n"
              "from warehouse.paths import Paths\npaths = Paths.from_env()\n" + code)
    env = {**os.environ, **deployment_env(paths.data_dir), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT, timeout=120)


def seen_after_write(noticed_at: float | None, paths: Paths) -> float:
    """Seconds from the flag file's replacement (its mtime) to when the follower applied it."""
    assert noticed_at is not None
    return noticed_at - flag_path(paths).stat().st_mtime


async def wait_until(condition: Any, timeout: float = 60.0) -> float:
    """Seconds until ``condition()`` holds (checked every 10 ms)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_a_flag_set_and_cleared_by_another_process_is_followed(paths: Paths) -> None:
    """How fast is a benchmark (``bench/failover_follow.py``); here: followed both ways, with who and why."""
    settings = ApiSettings(failover_poll_seconds=0.5)

    async def scenario() -> tuple[float, float]:
        follower = FailoverFollower(paths, settings, ModelSlot(), None)
        await follower.start()
        try:
            assert not follower.active
            assert follower.fallback is None
            # In a thread, so this process's event loop (and the follower's poll) runs meanwhile.
            await asyncio.to_thread(in_another_process, paths, "set_failover(paths, by='monitoring', reason='a-1')")
            await wait_until(lambda: follower.active)
            on = seen_after_write(follower.noticed_at, paths)
            assert follower.flag.set_by == "monitoring"
            assert follower.fallback == "manual_review"
            await asyncio.to_thread(in_another_process, paths, "clear_failover(paths, by='ops', note='false alarm')")
            await wait_until(lambda: not follower.active)
            off = seen_after_write(follower.noticed_at, paths)
            assert follower.flag.cleared_by == "ops"
            return on, off
        finally:
            await follower.stop()

    on, off = asyncio.run(scenario())
    log.info("followed a flag set in another process after %.3f s, a clear after %.3f s", on, off)


def test_previous_champion_without_a_served_model_falls_back_to_manual_review(paths: Paths) -> None:
    async def scenario() -> None:
        follower = FailoverFollower(paths, ApiSettings(), ModelSlot(), None)
        await follower.start()
        try:
            set_failover(paths, by="ops", reason="drift", fallback="previous_champion")
            await follower.refresh()
            await follower.settled()
            applied = follower.applied()
            assert (applied.flag.fallback, applied.fallback) == ("previous_champion", "manual_review")
            assert applied.note is not None
            assert "manual_review applied" in applied.note
        finally:
            await follower.stop()

    asyncio.run(scenario())


def test_an_unreadable_flag_keeps_the_last_state(paths: Paths) -> None:
    async def scenario() -> None:
        follower = FailoverFollower(paths, ApiSettings(), ModelSlot(), None)
        set_failover(paths, by="ops", reason="drift")
        await follower.refresh()
        assert follower.active
        flag_path(paths).write_text("{not json")
        await follower.refresh()
        assert follower.active, "a broken file is not a clear"
        set_failover(paths, by="ops", reason="drift")  # repaired (replaced whole)
        clear_failover(paths, by="ops", note="fixed")
        await follower.refresh()
        assert not follower.active

    asyncio.run(scenario())


def _fake_model(version: str) -> LoadedModel:
    service: Any = SimpleNamespace(bundle=SimpleNamespace(version=version), in_failover=None, mode="normal")
    return LoadedModel(service, scorer=SimpleNamespace())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flag", "leased", "review_all"),
    [
        (FailoverState(), "1", False),
        (FailoverState(active=True, fallback="manual_review"), "1", True),
        (FailoverState(active=True, fallback="previous_champion"), "0", False),
    ],
)
def test_the_served_slot_leases_what_the_flag_says(
    paths: Paths, flag: FailoverState, leased: str, review_all: bool
) -> None:
    async def scenario() -> None:
        served = ModelSlot()
        served.install(_fake_model("1"))
        follower = FailoverFollower(paths, ApiSettings(), served, None)
        follower.previous.install(_fake_model("0"))
        follower.flag = flag
        served.divert, served.in_failover = follower._divert, follower._review_all  # what start() hooks in
        async with served.lease() as service:
            assert service is not None
            assert service.bundle.version == leased
        served.install(_fake_model("2"))  # a reload: the new service gets the hook too
        current = served.current
        assert current is not None
        assert current.service.in_failover is not None
        assert current.service.in_failover() is review_all

    asyncio.run(scenario())
