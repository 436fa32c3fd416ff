"""The real CLI in a process of its own, and a deployment's environment for it: what the end-to-end
tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.deployment import deployment_env
from tests.support.servers import free_port


def lendguard(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lendguard.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def ok(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    completed = lendguard(env, *args, timeout=timeout)
    assert completed.returncode == 0, f"lendguard {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


E2E_BOOK = 20_000
"""Loans in an end-to-end deployment: enough for the gate to vouch for every large group."""


def deployment_environment(data_dir: Path) -> dict[str, str]:
    """A deployment's environment. The pipeline's dev-test latency limit is out of the way: other
    tests share the cores, and the limit's enforcement has a test of its own
    (tests/integration/test_delivery.py); the speed goal lives in bench/api_load.py."""
    return {**os.environ, **deployment_env(data_dir), "COLUMNS": "200",
            "LENDGUARD_DEV_API_PORT": str(free_port()), "LENDGUARD_DEV_MAX_P99_MS": "60000"}
