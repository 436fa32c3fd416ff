"""Starting a server process: a busy port, a server that dies and one that never gets ready are
one clear error each (naming the port, showing the log's last lines), and nothing is left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lendguard.processes import PortInUseError, ServerStartError, ensure_port_free, start_server
from tests.support.servers import free_port
from warehouse.errors import LendguardError

READY_SERVER = """
import http.server, sys
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_refused_before_anything_starts(listener: int, tmp_path: Path) -> None:
    with pytest.raises(PortInUseError, match=f"^port {listener} is already in use by pid {os.getpid()} ") as refused:
        start_server([sys.executable, "-c", "pass"], port=listener, log_path=tmp_path / "server.log")
    assert isinstance(refused.value, LendguardError)
    assert refused.value.holder_pid == os.getpid()
    assert "\n" not in str(refused.value)
    assert str(refused.value).endswith(": stop it or choose another port")
    assert not (tmp_path / "server.log").exists(), "nothing was started"


HOLDER = ("import socket, time; sock = socket.socket(socket.AF_INET6); sock.bind(('::', 0)); sock.listen(); "
          "print(sock.getsockname()[1], flush=True); time.sleep(600)")
"""Holds a port on every interface, IPv4 too, as servers often bind."""


def test_a_busy_port_names_the_other_process_holding_it() -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        with pytest.raises(PortInUseError) as refused:
            ensure_port_free(port, "0.0.0.0", fix="pick another with --port")  # noqa: S104 - probed, not bound
        message = str(refused.value)
        assert message.startswith(f"port {port} is already in use by pid {holder.pid} ({sys.executable} -c import ")
        assert message.endswith("): pick another with --port")
        assert "\n" not in message
        assert refused.value.holder_pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    ensure_port_free(port)  # free again: no error


def test_a_server_that_exits_shows_its_last_log_lines(tmp_path: Path) -> None:
    port = free_port()
    crash = "import sys; print('\\n'.join(f'line {i}' for i in range(40))); sys.exit('no model to serve')"
    with pytest.raises(ServerStartError) as failed:
        start_server([sys.executable, "-c", crash], port=port, log_path=tmp_path / "server.log", name="the API")
    message = str(failed.value)
    assert message.startswith(f"the API on port {port}: it ended before it was ready")
    assert message.endswith("line 39\nno model to serve"), message
    assert "line 19\n" not in message, "only the last lines"


def test_a_server_never_ready_is_stopped(tmp_path: Path) -> None:
    port, pid_file = free_port(), tmp_path / "pid"
    never = (f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
             "print('warming up', flush=True); time.sleep(600)")
    with pytest.raises(ServerStartError, match=r"not ready within 1 s(.|\n)*warming up"):
        start_server([sys.executable, "-c", never], port=port, log_path=tmp_path / "server.log", timeout=1)
    with pytest.raises(ProcessLookupError):  # stopped (and reaped)
        os.kill(int(pid_file.read_text()), 0)


def test_a_ready_server_answers_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = start_server([sys.executable, "-c", READY_SERVER, str(port)], port=port,
                          log_path=tmp_path / "server.log")
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert "listening" in (tmp_path / "server.log").read_text()

