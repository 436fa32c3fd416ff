"""The Litestar plugin that assembles the scoring API around one :class:`~api.http.Serving`.

``on_app_init`` adds, in one place: the routes (``api.routes.*`` and the dashboard), the
dependencies handlers receive (``api.http.provide_*``), the request body types of the served
contract (``signature_namespace``), the middleware (metrics, failover headers), the API-key guard
(``api.auth``), the lifespan, the typed state, the rejection hook and the OpenAPI document.

The lifespan opens what needs a running event loop and closes it in reverse on shutdown, so every
request in flight is answered and every log row flushed: the prediction-log writer (its durable
rows counted by ``/metrics``), the model and the registry watcher (``api.reload``), the failover
follower (``api.failover``); the idempotency store has its own (``api.idempotency``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pyarrow as pa
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPluginProtocol

from api.auth import KEYS_STATE_KEY, METRICS_PUBLIC_STATE_KEY, api_key_guard, open_keys
from api.docs import OfflineDocsPlugin
from api.failover import FailoverFollower
from api.http import (
    STATE_ATTRIBUTE,
    AppState,
    Serving,
    count_requests,
    failover_headers,
    log_rejected,
    provide_app_state,
    provide_failover,
    provide_scoring_call,
    provide_watcher,
)
from api.idempotency import idempotency_lifespan
from api.log_writer import PredictionLogWriter
from api.reload import ModelWatcher, start_model
from api.routes.admin import ADMIN_HANDLERS
from api.routes.health import HEALTH_HANDLERS
from api.routes.metrics import METRICS_HANDLERS
from api.routes.score import body_types, score_handlers
from warehouse.landing import PREDICTION_LOG
from warehouse.prediction_log import META_FIELDS, prediction_log_schema

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig

    from warehouse.paths import Paths
    from warehouse.settings import ApiSettings

API_VERSION = "1.0.0"


class LendguardPlugin(InitPluginProtocol):
    """Everything one scoring app is made of. Raises ``api.auth.KeyFileError`` when the keys file is unusable."""

    def __init__(self, settings: ApiSettings, paths: Paths, serving: Serving) -> None:
        self.settings = settings
        self.paths = paths
        self.serving = serving

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings, paths, serving = self.settings, self.paths, self.serving
        keys = open_keys(settings.api_keys_file, require=settings.require_auth)
        app_config.state[STATE_ATTRIBUTE] = AppState(settings, paths, serving)
        app_config.state[KEYS_STATE_KEY] = keys  # where api.auth's guard looks its keys up
        app_config.state[METRICS_PUBLIC_STATE_KEY] = settings.metrics_public  # /metrics open to a scraper
        app_config.route_handlers.extend([
            *score_handlers(serving.bundle is not None, settings.batch_max_items),
            *HEALTH_HANDLERS, *ADMIN_HANDLERS, *METRICS_HANDLERS,
        ])
        if serving.bundle is not None:
            app_config.signature_namespace.update(body_types(serving.bundle.loan_book, settings.batch_max_items))
        app_config.dependencies.update({
            "app_state": Provide(provide_app_state, sync_to_thread=False),
            "call": Provide(provide_scoring_call),
            "watcher": Provide(provide_watcher, sync_to_thread=False),
            "failover": Provide(provide_failover, sync_to_thread=False),
        })
        app_config.middleware.extend([count_requests, failover_headers])
        app_config.guards.append(api_key_guard)
        app_config.lifespan.extend([self._lifespan, idempotency_lifespan(settings, paths)])
        app_config.after_exception.append(log_rejected)
        app_config.openapi_config = OpenAPIConfig(
            title="lendguard scoring API",
            version=API_VERSION,
            description="Scores loan applications for default risk; every decision is logged durably.",
            render_plugins=[OfflineDocsPlugin()],  # the docs page works offline
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", description="Authorization: Bearer <key>"),
                "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
            }),
        )
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Open the log writer, the model, the watcher and the failover follower; close them in reverse."""
        settings, paths, bundle = self.settings, self.paths, self.serving.bundle
        state: AppState = app.state[STATE_ATTRIBUTE]
        schema = pa.schema(META_FIELDS) if bundle is None else prediction_log_schema(bundle.loan_book)
        writer = PredictionLogWriter.for_landing(
            paths.landing, PREDICTION_LOG, schema, writer_id=settings.writer_id,
            max_batch=settings.log_max_batch, max_wait_ms=settings.log_max_wait_ms,
        )
        writer.on_durable.append(state.metrics.observe_row)  # decisions counted once durable: /metrics agrees
        await writer.start()
        state.log_writer = writer
        follower = FailoverFollower(paths, settings, state.models, writer)
        try:
            if bundle is not None:
                state.models.proxies = self.serving.proxies
                state.models.install(await start_model(bundle, writer, settings, state.models.proxies))
                state.watcher = ModelWatcher(state.models, writer, settings, paths, checked_at=self.serving.loaded_at)
                await state.watcher.start()
            await follower.start()
            state.failover = follower
            yield
        finally:
            state.failover = None
            await follower.stop()
            watcher, state.watcher = state.watcher, None
            if watcher is not None:
                await watcher.stop()
            await state.models.close()
            await writer.stop()
