"""Local servers for tests: free ports, waiting for a condition, and ``lendguard serve`` processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

READY_SECONDS = 120.0
"""How long a server may take to become ready: generous, a busy machine starts Python slowly."""


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


def wait_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = READY_SECONDS,
    log_path: Path | None = None,
) -> None:
    """Wait until ``url``'s ``/readyz`` answers 200; fail at once if ``process`` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path is not None and log_path.exists() else ""
            pytest.fail(f"the server exited with {process.returncode} before it was ready\n{tail}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the server at {url} was not ready within {timeout:.0f} s")


def start_lendguard_server(env: dict[str, str], log_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """``lendguard serve`` as its own process (own session, so a kill reaches only it), once ready;
    its stderr is appended to ``log_path``. Returns its URL and the process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lendguard.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("ab"), start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path=log_path)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return url, process
