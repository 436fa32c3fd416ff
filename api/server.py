"""Running the API: uvicorn, started programmatically (``lendguard serve`` calls :func:`serve`).

One worker process is one event loop: scoring is CPU-bound, so a host uses one worker per core
(``workers``): uvicorn's supervisor binds the port once and starts that many processes sharing it,
restarting one that dies. Each worker builds its own app (:func:`worker_app`) with its own
prediction-log writer id (the configured prefix, or the default, plus its process id), so their
log files never collide; they share the host's idempotency answers (``api.idempotency``).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from litestar.enums import ScopeType
from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from api.schemas import REQUEST_ID_HEADER
from warehouse.errors import LendguardError
from warehouse.log_format import configure_unconfigured
from warehouse.paths import Paths, get_paths
from warehouse.settings import REGISTRY_FAIL_FAST, ApiSettings, SettingsError, apply_tool_environment, get_settings

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
access_log = logging.getLogger("api.access")
SERVER_LOGGERS = ("api", "ml", "warehouse")
"""lendguard's own loggers a server process reports on at INFO."""
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode("latin-1")
GRACEFUL_SHUTDOWN_SECONDS = 30
"""How long a stopping server lets requests in flight finish (a service manager's stop timeout must exceed it)."""
HEALTHCHECK_SECONDS = 60
"""How long the supervisor waits for a worker's answer to its health check before it kills and replaces
the worker: generous, as a worker on a busy host takes many seconds to start answering."""


def serve(
    host: str | None = None,
    port: int | None = None,
    alias: str | None = None,
    *,
    workers: int = 1,
    settings: ApiSettings | None = None,
    paths: Paths | None = None,
) -> None:
    """Serve the model ``alias`` points at until SIGINT/SIGTERM (then flush the log and exit).

    Arguments left as None come from ``settings`` (default: this process's, ``warehouse.settings``).
    ``workers`` > 1 runs that many processes on the one port (see the module doc). This is the API
    process's edge: it gives MLflow its environment once (no telemetry; registry reads fail fast,
    the alias poller tries again at its next poll); spawned workers inherit it.
    """
    if workers < 1:
        raise LendguardError(f"--workers must be at least 1, got {workers}", exit_code=2)
    apply_tool_environment(REGISTRY_FAIL_FAST)
    base = settings or get_settings().api
    overrides = {k: v for k, v in {"host": host, "port": port, "model_alias": alias}.items() if v is not None}
    try:  # the flags obey the same bounds as their settings
        effective = ApiSettings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}={e['input']!r}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid serve options: {problems}") from None
    configure_unconfigured()
    for name in SERVER_LOGGERS:  # a server reports its start, reloads and requests, whatever its caller's level
        if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    options: dict[str, Any] = {
        "host": effective.host,
        "port": effective.port,
        "log_config": None,  # keep the process's logging configuration
        "access_log": False,  # AccessLog writes one structured line per request instead
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        # uvicorn's default (5 s) is shorter than a typical client's idle time: a client that sends on a
        # pooled connection just as the server closes it gets no answer (seen under load as
        # RemoteProtocolError), so the server must be the side that waits longer.
        "timeout_keep_alive": effective.keep_alive_seconds,
    }
    if workers == 1:
        log.info("listening on http://%s:%d", effective.host, effective.port)
        uvicorn.run(AccessLog(_app(effective, paths)), **options)
        return
    # Each worker is a spawned process: it gets the settings and paths pickled, not the environment.
    config = uvicorn.Config(functools.partial(worker_app, effective, paths or get_paths()), factory=True,
                            workers=workers, timeout_worker_healthcheck=HEALTHCHECK_SECONDS, **options)
    log.info("listening on http://%s:%d with %d worker processes", effective.host, effective.port, workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app(settings: ApiSettings, paths: Paths) -> AccessLog:
    """One worker's app: its own log writer prefix (the worker's process id added), same settings."""
    configure_unconfigured()  # a spawned process starts with no logging configured
    writer_id = None if settings.writer_id is None else f"{settings.writer_id}-{os.getpid()}"
    return AccessLog(_app(settings.model_copy(update={"writer_id": writer_id}), paths))


class AccessLog:
    """The access log: one INFO line per HTTP request on logger ``api.access``, with its fields
    (``method``, ``path``, ``status``, ``duration_ms``, ``request_id``, ``client``) as JSON fields off a
    terminal. Outside the app, so it also sees what the app refuses before any handler runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer: dict[str, Any] = {"status": 0, "request_id": None}

        async def send_noting_the_answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["request_id"] = next((value.decode("latin-1") for key, value in message.get("headers", [])
                                             if key.lower() == REQUEST_ID_HEADER_BYTES), None)
            await send(message)

        try:
            await self.app(scope, receive, send_noting_the_answer)
        finally:
            client = scope.get("client")
            fields = {"method": scope["method"], "path": scope["path"], "status": answer["status"],
                      "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                      "request_id": answer["request_id"], "client": f"{client[0]}:{client[1]}" if client else None}
            access_log.info("%s %s %d %.1f ms", fields["method"], fields["path"], fields["status"],
                            fields["duration_ms"], extra=fields)


def _app(settings: ApiSettings, paths: Paths | None) -> Litestar:
    # Start-up cost: a spawned worker imports this module to unpickle worker_app before it can answer
    # the supervisor's health checks, and the app's imports take seconds; the supervisor never needs them.
    from api.app import create_app  # noqa: PLC0415 - start-up cost: see above

    app = create_app(settings, paths)
    app.on_startup.append(freeze_startup_heap)  # runs after the lifespan has loaded the model
    return app


def freeze_startup_heap(_app: object = None) -> None:
    """Exempt everything alive after start-up from the cycle collector's full passes.

    Start-up leaves millions of long-lived objects (MLflow, scikit-learn, pandas, the model), and
    a full (generation 2) collection scans them all: 170-280 ms with the event loop stopped,
    measured under load, which was the API's p99 at 1,000 requests/s (bench/README.md).
    Frozen, they are never scanned again; what requests allocate later is collected as before.
    A model loaded by a later reload is not frozen, so its memory can still be reclaimed when it
    is retired.
    """
    gc.collect()
    gc.freeze()
    log.info("start-up heap frozen: %d objects exempt from full collections", gc.get_freeze_count())
