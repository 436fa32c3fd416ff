"""``make demo PORT=… DEV_PORT=…``: make hands the ports to the demo, and a busy one stops it before
any work with one line naming the port and its holder (no traceback)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.deployment import deployment_env
from tests.support.servers import free_port
from warehouse.settings import PROJECT_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("make") is None, reason="no make")]


def test_make_demo_takes_its_ports_and_refuses_a_busy_one(tmp_path: Path) -> None:
    env = {**os.environ, **deployment_env(tmp_path / "data")}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        ran = subprocess.run(["make", "--no-print-directory", "demo", f"PORT={free_port()}", f"DEV_PORT={busy}"],
                             cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode != 0
    ours = [line for line in ran.stderr.splitlines() if not line.startswith("make")]
    assert len(ours) == 1, ran.stderr
    assert ours[0].startswith(f"error: port {busy} is already in use by pid {os.getpid()} (")
    assert ours[0].endswith("give the demo other ports: make demo PORT=8100 DEV_PORT=8101 "
                            "(lendguard demo --port --dev-port)")
    assert "Traceback" not in ran.stderr
    assert not (tmp_path / "data").exists(), "nothing was simulated, built or trained"
