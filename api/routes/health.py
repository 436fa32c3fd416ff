"""``GET /healthz`` (the process answers), ``GET /readyz`` (a model is loaded and the log is open), and
``GET /``, which says where those and the docs are (a person trying the API's address gets an answer)."""

from __future__ import annotations

import msgspec
from litestar import Response, get

from api.http import AppState
from api.routes.metrics import METRICS_PATH
from api.routes.score import BATCH_PATH, SCORE_PATH
from api.schemas import ReadyResponse

DOCS_PATH = "/schema"
"""Litestar's OpenAPI path: the offline docs page (``api.docs``), and the document beside it."""
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


class ServiceIndex(msgspec.Struct, kw_only=True):
    """What ``GET /`` answers: the routes to start from."""

    service: str = "lendguard scoring API"
    docs: str = DOCS_PATH
    openapi: str = f"{DOCS_PATH}/openapi.json"
    health: str = HEALTH_PATH
    ready: str = READY_PATH
    score: str = SCORE_PATH
    batch: str = BATCH_PATH
    metrics: str = METRICS_PATH


@get("/", sync_to_thread=False, summary="Where to start: the docs, the health routes and the scoring routes")
def index() -> ServiceIndex:
    return ServiceIndex()


@get(HEALTH_PATH, sync_to_thread=False, summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(READY_PATH, sync_to_thread=False, summary="Readiness: a model is loaded and the log is open")
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


HEALTH_HANDLERS = (index, healthz, readyz)
