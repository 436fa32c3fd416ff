"""``lendguard doctor``: each prerequisite checked for real (ports held by real sockets and processes, a
data directory that cannot be one, a broken MLflow store, a tracking server that is down or up), each
problem one line with its fix, and a non-zero exit only for a failure."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lendguard import cli
from lendguard.doctor import FAIL, OK, WARN, check_java, check_mlflow, check_port
from tests.support.deployment import deployment_env
from tests.support.servers import free_port
from warehouse.paths import get_paths
from warehouse.settings import get_settings


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A deployment on free ports, for the in-process CLI; yields its data directory."""
    data_dir = tmp_path / "data"
    for name, value in {**deployment_env(data_dir), "LENDGUARD_API_PORT": str(free_port()),
                        "LENDGUARD_DEV_API_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_paths.cache_clear()
    yield data_dir
    get_settings.cache_clear()
    get_paths.cache_clear()


def test_a_ready_machine_passes(machine: Path) -> None:
    result = CliRunner().invoke(cli.cli, ["doctor"], terminal_width=300)
    assert result.exit_code == 0, result.output
    for name in ("java", "api port", "dev api port", "data directory", "disk space", "mlflow store", "chromium"):
        assert f" {name} " in result.stdout, name
    assert "fail" not in result.stdout


def test_a_busy_port_fails_naming_its_holder_and_the_fix(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        monkeypatch.setenv("LENDGUARD_API_PORT", str(port))
        get_settings.cache_clear()
        result = CliRunner().invoke(cli.cli, ["doctor", "--json"])
    assert result.exit_code == 1
    assert result.stderr == "error: 1 check(s) failed: api port\n"
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["api port"]["status"] == FAIL
    assert checks["api port"]["found"].startswith(f"port {port} is already in use by pid {os.getpid()} (")
    assert checks["api port"]["fix"] == "stop it or set LENDGUARD_API_PORT to a free port"
    assert checks["dev api port"]["status"] == OK


def test_a_port_held_by_lendguard_serve_is_fine() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
         "print(s.getsockname()[1], flush=True); time.sleep(600)", "lendguard", "serve"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        check = check_port("api port", port, "LENDGUARD_API_PORT")
    finally:
        holder.kill()
        holder.wait()
    assert (check.status, check.found) == (OK, f"port {port} is served by lendguard (pid {holder.pid})")


def test_a_data_directory_that_cannot_be_created_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory's parent should be")
    for name, value in {**deployment_env(blocker / "data"), "LENDGUARD_API_PORT": str(free_port()),
                        "LENDGUARD_DEV_API_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_paths.cache_clear()
    try:
        result = CliRunner().invoke(cli.cli, ["doctor"], terminal_width=300)
    finally:
        get_settings.cache_clear()
        get_paths.cache_clear()
    assert result.exit_code == 1
    assert f"fail data directory  {blocker} is not a directory" in result.stdout
    assert "fix: make it writable by this user (chown/chmod), or set LENDGUARD_DATA_DIR elsewhere" in result.stdout
    assert "data directory" in result.stderr


def test_java_missing_fails_with_the_package_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    check = check_java()
    assert check.status == FAIL
    assert check.found == "no java on PATH: training cannot export the model to PMML"
    assert "apt-get install -y default-jre-headless" in check.fix


def test_the_mlflow_store_is_opened_or_asked(tmp_path: Path) -> None:
    broken = tmp_path / "mlflow.db"
    broken.write_bytes(b"not a database, 100 bytes of it " * 4)
    check = check_mlflow(f"sqlite:///{broken}")
    assert check.status == FAIL
    assert check.found == f"sqlite:///{broken}: file is not a database"
    down = check_mlflow(f"http://127.0.0.1:{free_port()}")
    assert (down.status, down.fix) == (FAIL, "start the tracking server (mlflow server ...), or correct "
                                             "MLFLOW_TRACKING_URI")

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = check_mlflow(f"http://user:secret@127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert (up.status, up.found) == (OK, f"http://***@127.0.0.1:{server.server_port} answers")
    assert check_mlflow("databricks").status == WARN
