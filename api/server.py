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
from typing import TYPE_CHECKING, Any

import uvicorn
from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from warehouse.errors import LendguardError
from warehouse.paths import Paths, get_paths
from warehouse.settings import REGISTRY_FAIL_FAST, ApiSettings, SettingsError, apply_tool_environment, get_settings

if TYPE_CHECKING:
    from litestar import Litestar

log = logging.getLogger(__name__)
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
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options: dict[str, Any] = {
        "host": effective.host,
        "port": effective.port,
        "log_config": None,  # keep the process's logging configuration
        "access_log": False,  # every request is in the prediction log already
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        log.info("listening on http://%s:%d", effective.host, effective.port)
        uvicorn.run(_app(effective, paths), **options)
        return
    # Each worker is a spawned process: it gets the settings and paths pickled, not the environment.
    config = uvicorn.Config(functools.partial(worker_app, effective, paths or get_paths()), factory=True,
                            workers=workers, timeout_worker_healthcheck=HEALTHCHECK_SECONDS, **options)
    log.info("listening on http://%s:%d with %d worker processes", effective.host, effective.port, workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app(settings: ApiSettings, paths: Paths) -> Litestar:
    """One worker's app: its own log writer prefix (the worker's process id added), same settings."""
    if not logging.getLogger().handlers:  # a spawned process starts with no logging configured
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    writer_id = None if settings.writer_id is None else f"{settings.writer_id}-{os.getpid()}"
    return _app(settings.model_copy(update={"writer_id": writer_id}), paths)


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
