"""``GET /healthz`` (the process answers) and ``GET /readyz`` (a model is loaded and the log is open)."""

from __future__ import annotations

from litestar import Response, get

from api.http import AppState
from api.schemas import ReadyResponse


@get("/healthz", sync_to_thread=False, summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", sync_to_thread=False, summary="Readiness: a model is loaded and the log is open")
def readyz(app_state: AppState) -> Response[ReadyResponse]:
    """Which version answers now, and how fresh the app's view of the registry is."""
    serving, bundle, watcher = app_state.serving, app_state.models.bundle, app_state.watcher
    if bundle is None or watcher is None:
        reason = serving.reason or "the scoring service is not running"
        return Response(ReadyResponse(status="not_ready", alias=serving.alias, reason=reason), status_code=503)
    return Response(ReadyResponse(
        status="ready", model_name=bundle.name, model_version=bundle.version, alias=serving.alias,
        alias_version=watcher.alias_version, registry_checked_at=watcher.checked_at,
    ))


HEALTH_HANDLERS = (healthz, readyz)
