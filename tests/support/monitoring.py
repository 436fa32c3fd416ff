"""Monitoring runs in tests: a local webhook receiver, pointing the in-process CLI at a deployment,
and reading the published snapshot."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest

from tests.support.deployment import deployment_env
from warehouse.paths import Paths, get_paths
from warehouse.publish import connect_snapshot
from warehouse.settings import get_settings


class Receiver:
    """A local webhook receiver that records every JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/monitor"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def use(monkeypatch: pytest.MonkeyPatch, paths: Paths, receiver: Receiver) -> None:
    """Point the in-process CLI at ``paths`` and the notifications at the receiver."""
    for name, value in deployment_env(paths.data_dir).items():
        monkeypatch.setenv(name, value)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "LENDGUARD_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LENDGUARD_WEBHOOK_URL", receiver.url)
    get_paths.cache_clear()
    get_settings.cache_clear()


def query(paths: Paths, sql: str) -> pd.DataFrame:
    with connect_snapshot(paths) as con:
        return con.execute(sql).df()
