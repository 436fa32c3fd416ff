"""``GET /dashboard``: the monitoring dashboard, served read-only from the published snapshot.

Served by the dashboard's own process (:mod:`api.dashboard.app`), never by the scoring API. With a
keys file it needs a key with the ``read`` scope (the app's guard, :func:`api.auth.required_scope`):
it shows no application, but group-level fairness numbers, alerts and operators' notes.

Before the first build there is nothing to show: 503 with a page that names the command to run
(monitors and load balancers see "not available yet", a person sees what to do).
"""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.handlers import HTTPRouteHandler

from api.auth import DASHBOARD_PATH
from api.dashboard.model import LATEST, WINDOWS, load_dashboard
from api.dashboard.page import render_missing, render_page
from warehouse.paths import Paths
from warehouse.publish import SnapshotMissingError

_HEADERS = {"Cache-Control": "no-store"}


def dashboard_handler(paths: Paths, mlflow_ui_url: str) -> HTTPRouteHandler:
    """The route for one deployment's snapshot (``paths``), linking its run in the MLflow UI at ``mlflow_ui_url``."""

    @get(
        DASHBOARD_PATH,
        media_type=MediaType.HTML,
        sync_to_thread=True,  # DuckDB and the registry block: keep them off the event loop
        name="dashboard",
        summary="Monitoring dashboard (HTML): ops, drift and output panels, alerts, failover, deployed version",
        description="Read-only, from the published snapshot. `feature` picks the histogram shown first, "
        "`version` the model version of the drift and output panels (default: the champion), `window` "
        "`latest` (its latest count window with enough rows, the default) or `deployment`. 503 before the "
        "first `lendguard build`.",
    )
    def dashboard(feature: str | None = None, version: str | None = None, window: str = LATEST) -> Response[str]:
        try:
            view = load_dashboard(paths, mlflow_ui_url, feature=feature, version=version,
                                  window=window if window in WINDOWS else LATEST)
        except SnapshotMissingError as exc:
            return Response(render_missing(str(exc)), status_code=503, media_type=MediaType.HTML,
                            headers={**_HEADERS, "Retry-After": "60"})
        return Response(render_page(view), media_type=MediaType.HTML, headers=_HEADERS)

    return dashboard
