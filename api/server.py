"""Running the API: uvicorn, started programmatically (``lendguard serve`` calls :func:`serve`).

One process, one event loop: scoring is CPU-bound and the prediction log's group commit works per
process, so scale out with more processes (each with its own ``LENDGUARD_WRITER_ID`` prefix)
behind a load balancer rather than uvicorn workers sharing an app object.
"""

from __future__ import annotations

import gc
import logging

import uvicorn
from pydantic import ValidationError

from api.app import create_app
from warehouse.paths import Paths
from warehouse.settings import REGISTRY_FAIL_FAST, ApiSettings, SettingsError, apply_tool_environment, get_settings

log = logging.getLogger(__name__)


def serve(
    host: str | None = None,
    port: int | None = None,
    alias: str | None = None,
    *,
    settings: ApiSettings | None = None,
    paths: Paths | None = None,
) -> None:
    """Serve the model ``alias`` points at until SIGINT/SIGTERM (then flush the log and exit).

    Arguments left as None come from ``settings`` (default: this process's, ``warehouse.settings``).
    This is the API process's edge: it gives MLflow its environment once (no telemetry; registry
    reads fail fast, the alias poller tries again at its next poll).
    """
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
    app = create_app(effective, paths)
    app.on_startup.append(freeze_startup_heap)  # runs after the lifespan has loaded the model
    log.info("listening on http://%s:%d", effective.host, effective.port)
    uvicorn.run(
        app,
        host=effective.host,
        port=effective.port,
        log_config=None,  # keep the process's logging configuration
        access_log=False,  # every request is in the prediction log already
        timeout_graceful_shutdown=30,
    )


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
