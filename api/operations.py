"""Everything around scoring that ``create_app`` plugs in: auth, admin routes, metrics, failover, docs.

One function returns the pieces, so the app factory gains a few lines instead of this module's
wiring: see ``api.auth``, ``api.admin``, ``api.metrics``, ``api.failover`` and ``api.docs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.openapi.spec import Components, SecurityScheme

from api.admin import ADMIN_HANDLERS
from api.auth import KEYS_STATE_KEY, METRICS_PUBLIC_STATE_KEY, api_key_guard, open_keys
from api.docs import OfflineDocsPlugin
from api.failover import FAILOVER_STATE_KEY, failover_headers, failover_lifespan
from api.metrics import METRICS_STATE_KEY, Metrics, count_requests, metrics_endpoint, metrics_of

if TYPE_CHECKING:
    from litestar import Litestar

    from api.settings import Settings
    from warehouse.paths import Paths


@dataclass(frozen=True)
class Operations:
    route_handlers: Sequence[Any]
    lifespan: Sequence[Callable[[Litestar], Any]]
    guards: Sequence[Any]
    middleware: Sequence[Any]
    state: dict[str, Any]
    openapi: dict[str, Any]
    """Extra ``OpenAPIConfig`` arguments: the offline docs page and the security schemes."""


def operations(settings: Settings, paths: Paths, models_key: str) -> Operations:
    """The pieces for one app. Raises ``api.auth.KeyFileError`` when the keys file is unusable."""
    keys = open_keys(settings.api_keys_file, require=settings.require_auth)
    return Operations(
        route_handlers=[*ADMIN_HANDLERS, metrics_endpoint],
        lifespan=[failover_lifespan(settings, paths, models_key), _count_decisions],
        guards=[api_key_guard],
        middleware=[count_requests, failover_headers],
        state={KEYS_STATE_KEY: keys, METRICS_PUBLIC_STATE_KEY: settings.metrics_public, METRICS_STATE_KEY: Metrics(),
               FAILOVER_STATE_KEY: None},
        openapi={
            "render_plugins": [OfflineDocsPlugin()],
            "components": Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", description="Authorization: Bearer <key>"),
                "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
            }),
        },
    )


@asynccontextmanager
async def _count_decisions(app: Litestar) -> AsyncIterator[None]:
    """Decisions are counted from prediction-log rows once durable (so /metrics agrees with the log)."""
    writer, metrics = app.state.get("log_writer"), metrics_of(app.state)
    if writer is not None and metrics is not None:
        writer.on_durable.append(metrics.observe_row)
    yield
