"""``GET /metrics``: this app's Prometheus registry (see ``api.metrics``) in the text exposition format."""

from __future__ import annotations

from litestar import Response, get

from api.http import AppState
from api.metrics import CONTENT_TYPE

METRICS_PATH = "/metrics"


@get(METRICS_PATH, sync_to_thread=False, media_type=CONTENT_TYPE, summary="Prometheus metrics (text exposition format)",
     description="Requests, errors, decisions, latency, the model version and the failover mode of this process.")
def metrics_endpoint(app_state: AppState) -> Response[str]:
    return Response(app_state.metrics.render(), media_type=CONTENT_TYPE)


METRICS_HANDLERS = (metrics_endpoint,)
