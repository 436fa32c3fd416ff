"""The dashboard's own process: a small Litestar app that serves ``GET /dashboard`` and nothing of scoring.

Rendering the page reads the snapshot with DuckDB and asks the registry for the deployed version:
hundreds of milliseconds of CPU per reload. In the scoring process that time came out of the
lending applications' latency (bench/README.md, "Dashboard in its own process"), so the page runs
here instead, beside the scoring API, reading the same published snapshot (read-only, so any
number of readers is safe) and guarded by the same keys file: a key with the ``read`` scope
(``admin`` implies it), or no key at all when no keys file is configured (the demo).

``lendguard dashboard serve --host H --port P`` runs it under uvicorn (:func:`serve_dashboard`).
"""

from __future__ import annotations

import logging

import uvicorn
from litestar import Litestar, get
from litestar.datastructures import State

from api.auth import KEYS_STATE_KEY, api_key_guard, open_keys
from api.dashboard.route import dashboard_handler
from warehouse.log_format import configure_unconfigured
from warehouse.paths import Paths, get_paths
from warehouse.settings import REGISTRY_FAIL_FAST, Settings, apply_tool_environment, get_settings

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
"""Beside the scoring API's 8000, so both run on one host with their defaults."""


@get(["/healthz", "/readyz"], sync_to_thread=False,
     summary="Liveness and readiness: the dashboard process answers (each page reads the snapshot afresh)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_dashboard_app(settings: Settings | None = None, paths: Paths | None = None) -> Litestar:
    """The dashboard app for ``paths``' snapshot, keys from ``settings.api.api_keys_file``.

    Settings left as None are this process's. Raises ``api.auth.KeyFileError`` when the keys file is
    unusable or required and missing.
    """
    settings = settings or get_settings()
    paths = paths or get_paths()
    keys = open_keys(settings.api.api_keys_file, require=settings.api.require_auth)
    return Litestar(
        route_handlers=[dashboard_handler(paths, settings.dashboard.mlflow_ui_url), healthz],
        guards=[api_key_guard],
        state=State({KEYS_STATE_KEY: keys}),
        openapi_config=None,  # a page for people; the scoring API documents the machine interface
        debug=False,
        logging_config=None,  # keep the process's logging (warehouse.log_format); Litestar's would replace it
    )


def serve_dashboard(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, settings: Settings | None = None,
                    paths: Paths | None = None) -> None:
    """Serve the dashboard until SIGINT/SIGTERM (this process's edge: registry reads fail fast)."""
    apply_tool_environment(REGISTRY_FAIL_FAST)
    configure_unconfigured()
    app = create_dashboard_app(settings, paths)
    log.info("dashboard on http://%s:%d/dashboard", host, port)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=10)
