"""A server's log off a terminal: JSON lines only (lendguard's, uvicorn's and Litestar's alike), with
one access-log line per request carrying its fields. Served without a model: no training needed."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from lendguard.processes import serve_command, start_server
from tests.support.deployment import deployment_env
from tests.support.servers import free_port

pytestmark = [pytest.mark.e2e]


def test_the_api_logs_json_lines_with_an_access_line_per_request(tmp_path: Path) -> None:
    port, log_path = free_port(), tmp_path / "api.log"
    env = {**deployment_env(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    server = start_server(serve_command(port), port=port, log_path=log_path, env=env,
                          ready_statuses=(200, 503))  # no champion here: not ready, but answering
    try:
        assert httpx.get(f"{server.url}/").json()["docs"] == "/schema"
        assert httpx.get(f"{server.url}/no-such-page").status_code == 404
    finally:
        server.stop()
    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert any(r["logger"] == "api.app" and r["message"].startswith("not ready: cannot load model alias")
               for r in records), "lendguard's own lines are there, at INFO and above"
    access = [r for r in records if r["logger"] == "api.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access if r["path"] in {"/", "/no-such-page"}] == [
        ("GET", "/", 200), ("GET", "/no-such-page", 404)]
    assert all(isinstance(r["duration_ms"], float) and r["client"].startswith("127.0.0.1:") for r in access)


def test_an_idle_connection_outlives_a_client_pools_idle_time(tmp_path: Path) -> None:
    """A client reusing a pooled connection after a pause is answered, not cut off: the server keeps an
    idle connection open longer than uvicorn's 5 s default (which loses requests sent as it closes)."""
    port = free_port()
    server = start_server(serve_command(port), port=port, log_path=tmp_path / "api.log",
                          env=deployment_env(tmp_path / "data"), ready_statuses=(200, 503))
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(request)
            assert read_response(connection).startswith(b"HTTP/1.1 200")
            time.sleep(6.5)  # idle past uvicorn's default keep-alive
            connection.sendall(request)
            assert read_response(connection).startswith(b"HTTP/1.1 200"), "the idle connection was closed"
    finally:
        server.stop()


def read_response(connection: socket.socket) -> bytes:
    """One HTTP/1.1 response off a raw connection: headers, then Content-Length bytes of body
    (``b""`` if the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += connection.recv(65536)
    return head
