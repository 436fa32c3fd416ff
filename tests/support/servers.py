"""Local servers for tests: free ports and waiting for a condition (servers themselves start through
``lendguard.processes``, as lendguard starts them)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest


def free_port() -> int:
    """A local port nothing listens on (bound and released): for a server to take, or to be refused on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "the condition") -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds. A deadline, not a fixed
    sleep: the wait is as short as the machine allows, and a slow machine only makes it longer."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not hold within {timeout:.0f} s")
        time.sleep(0.02)
