"""The Litestar application: ``create_app()`` builds it around one model bundle.

Why the bundle is loaded in ``create_app`` and not in the lifespan: the request body is derived
from the model's loan-book contract, and Litestar fixes a handler's body type (validation and
OpenAPI) when the app is constructed. So the factory loads the bundle for the configured alias
(a few seconds, once), builds the ``ScoreRequest`` Struct from its contract and the handlers
around it; the lifespan then opens what needs a running event loop (the scorer, the log writer,
the registry poller) and closes it on shutdown, flushing every pending log row.

While it runs, the app follows its alias (``api.reload``): when the alias moves to a version with
the same contract, the new version is loaded beside the old one and swapped in without dropping a
request; a version with another contract needs a restart (the body type is fixed) and is refused.

If no bundle can be loaded (no version carries the alias, the registry is unreachable) the app
still starts, answers /healthz, reports 503 on /readyz and /v1/score, and logs one line naming the
tracking URI and alias. It stays that way until restarted: its body type needs a contract.

Every request to the scoring endpoint, answered or rejected, is written to the prediction log;
an answer whose row could not be made durable becomes a 503 instead of a decision.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ServiceUnavailableException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from api.batch import batch_handler
from api.batching import BatcherClosedError
from api.dashboard.route import dashboard_handler
from api.failover import current_mode
from api.handling import score_one
from api.idempotency import caller_of, idempotency_lifespan
from api.log_writer import LogWriteError, PredictionLogWriter
from api.openapi import ClosedStructSchemaPlugin
from api.operations import operations
from api.reload import WATCHER_STATE_KEY, ModelSlot, ModelWatcher, start_model
from api.schemas import ReadyResponse, ScoreResponse, build_request_struct
from api.service import Receipt, rejection_row
from api.settings import Settings, get_settings, redact_uri
from ml.registry import ModelBundle
from warehouse.landing import PREDICTION_LOG
from warehouse.paths import Paths, get_paths
from warehouse.prediction_log import META_FIELDS, prediction_log_schema

log = logging.getLogger(__name__)

SCORE_PATH = "/v1/score"
MODELS_STATE_KEY = "models"
"""``app.state`` key of the :class:`~api.reload.ModelSlot` requests are scored from."""
LOGGED_OPT = "prediction_log"
"""Route-handler ``opt`` flag: requests to this route are written to the prediction log."""
RECEIPT_KEY = "lendguard_receipt"
SCORE_MAX_BODY_BYTES = 64 * 1024
"""One application is well under 1 KiB; anything near this is not one."""
API_VERSION = "1.0.0"


class DecisionNotLoggedError(ServiceUnavailableException):
    """The decision's log row is not durable, so the decision is withheld."""


@dataclass(frozen=True)
class Serving:
    """What the factory decided to serve: the bundle, or why there is none."""

    alias: str
    bundle: ModelBundle | None
    reason: str | None
    allowed: dict[str, tuple[Any, ...]]
    """Enumerated inputs and their values, to say what was expected when one is wrong."""
    loaded_at: datetime | None = None
    """When the registry answered the factory (the first successful registry check)."""


def create_app(settings: Settings | None = None, paths: Paths | None = None) -> Litestar:
    """The scoring API for the bundle ``settings.model_alias`` points at in ``paths``' registry."""
    settings = settings or get_settings()
    paths = paths or get_paths()
    serving = _load_serving(paths, settings.model_alias)
    score = _score_handler(serving)
    ops = operations(settings, paths, MODELS_STATE_KEY)  # auth, admin, metrics, failover, offline docs
    return Litestar(
        route_handlers=[score, batch_handler(serving, settings), healthz, readyz, dashboard_handler(paths),
                        *ops.route_handlers],
        lifespan=[_lifespan(settings, paths, serving), idempotency_lifespan(settings, paths), *ops.lifespan],
        after_exception=[_log_rejected],
        guards=list(ops.guards),
        middleware=list(ops.middleware),
        state=State({"serving": serving, MODELS_STATE_KEY: ModelSlot(), "log_writer": None, WATCHER_STATE_KEY: None,
                     **ops.state}),
        openapi_config=OpenAPIConfig(
            title="lendguard scoring API",
            version=API_VERSION,
            description="Scores loan applications for default risk; every decision is logged durably.",
            **ops.openapi,
        ),
        plugins=[ClosedStructSchemaPlugin()],  # bodies that refuse unknown fields say so in the document
        debug=False,
    )


# ----- model loading ------------------------------------------------------------------------------
def _load_serving(paths: Paths, alias: str) -> Serving:
    from ml.registry import load_bundle  # noqa: PLC0415 - imports mlflow (about a second)

    try:
        bundle = load_bundle(paths, alias)
        build_request_struct(bundle.loan_book)  # refuse an unservable contract here, not per request
    except Exception as exc:  # whatever the cause, the app starts and says why it is not ready
        log.error(  # one clear line, no traceback: an expected deployment state, not a bug
            "not ready: cannot load model alias %r from tracking URI %s: %s: %s",
            alias, redact_uri(paths.tracking_uri), type(exc).__name__,
            str(exc).replace(paths.tracking_uri, redact_uri(paths.tracking_uri)),
        )
        return Serving(alias, None, f"no model loaded for alias {alias!r} ({type(exc).__name__})", {})
    log.info("serving %s version %s (alias %r, run %s)", bundle.name, bundle.version, alias, bundle.run_id)
    allowed: dict[str, tuple[Any, ...]] = {
        f.name: tuple(int(v) if f.integer else v for v in f.allowed)
        for f in bundle.loan_book.numeric_features if f.allowed is not None
    }
    if bundle.loan_book.group_values is not None:
        allowed[bundle.loan_book.group_column] = bundle.loan_book.group_values
    return Serving(alias, bundle, None, allowed, loaded_at=datetime.now(UTC))


def _lifespan(settings: Settings, paths: Paths, serving: Serving) -> Callable[[Litestar], Any]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        """Open the log writer and the model, follow the alias; on shutdown close them in reverse,
        so every request in flight is answered and every log row flushed."""
        bundle = serving.bundle
        schema = pa.schema(META_FIELDS) if bundle is None else prediction_log_schema(bundle.loan_book)
        writer = PredictionLogWriter.for_landing(
            paths.landing, PREDICTION_LOG, schema, writer_id=settings.writer_id,
            max_batch=settings.log_max_batch, max_wait_ms=settings.log_max_wait_ms,
        )
        models: ModelSlot = app.state[MODELS_STATE_KEY]
        watcher: ModelWatcher | None = None
        await writer.start()
        app.state.log_writer = writer
        try:
            if bundle is not None:
                models.install(await start_model(bundle, writer, settings))
                watcher = ModelWatcher(models, writer, settings, paths, checked_at=serving.loaded_at)
                app.state[WATCHER_STATE_KEY] = watcher
                await watcher.start()
            yield
        finally:
            app.state[WATCHER_STATE_KEY] = None
            if watcher is not None:
                await watcher.stop()
            await models.close()
            await writer.stop()

    return lifespan


# ----- handlers -----------------------------------------------------------------------------------
def _score_handler(serving: Serving) -> HTTPRouteHandler:
    """``POST /v1/score``, typed with the Struct built from the served contract."""

    async def score(data: Any, state: State, request: Request) -> ScoreResponse:
        models: ModelSlot = state[MODELS_STATE_KEY]
        # The lease keeps the model this request started with open until its answer is logged,
        # even if a new version is swapped in meanwhile.
        async with models.lease() as scoring:
            if scoring is None:
                raise ServiceUnavailableException(detail=serving.reason or "the model is not loaded; see /readyz")
            try:
                return await score_one(scoring, data, request)  # idempotency, unknown categories
            except BatcherClosedError as exc:
                raise ServiceUnavailableException(detail="the service is shutting down; retry") from exc
            except LogWriteError as exc:
                log.error("decision withheld, its log row is not durable: %s", exc)
                raise DecisionNotLoggedError(
                    detail="the decision could not be logged; retry later", headers={"Retry-After": "1"}
                ) from exc

    async def unavailable() -> ScoreResponse:
        raise ServiceUnavailableException(detail=serving.reason or "the model is not loaded; see /readyz")

    if serving.bundle is None:
        handler, body = unavailable, None
    else:
        handler, body = score, build_request_struct(serving.bundle.loan_book)
    # Annotations are real objects (not strings): the body type exists only at run time.
    if body is None:
        handler.__annotations__ = {"return": ScoreResponse}
    else:
        handler.__annotations__ = {"data": body, "state": State, "request": Request, "return": ScoreResponse}
    return post(
        SCORE_PATH,
        status_code=200,
        opt={LOGGED_OPT: True},
        middleware=[_stamp_receipt],
        exception_handlers={ValidationException: _validation_response},
        request_max_body_size=SCORE_MAX_BODY_BYTES,
        summary="Score one loan application",
        description="Returns the default probability and the decision; the request is logged durably first.",
        name="score",
    )(handler)


@get("/healthz", sync_to_thread=False, summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", sync_to_thread=False, summary="Readiness: a model is loaded and the log is open")
def readyz(state: State) -> Response[ReadyResponse]:
    """Which version answers now, and how fresh the app's view of the registry is."""
    serving: Serving = state.serving
    bundle = state[MODELS_STATE_KEY].bundle
    watcher: ModelWatcher | None = state.get(WATCHER_STATE_KEY)
    if bundle is None or watcher is None:
        reason = serving.reason or "the scoring service is not running"
        return Response(ReadyResponse(status="not_ready", alias=serving.alias, reason=reason), status_code=503)
    return Response(ReadyResponse(
        status="ready", model_name=bundle.name, model_version=bundle.version, alias=serving.alias,
        alias_version=watcher.alias_version, registry_checked_at=watcher.checked_at,
    ))


# ----- receipt, validation errors and logging of rejected requests -------------------------------
def _stamp_receipt(app: ASGIApp) -> ASGIApp:
    """Middleware: note arrival before the body is read, so latency counts validation too."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[RECEIPT_KEY] = Receipt.now(scope["path"])
        await app(scope, receive, send)

    return middleware


def receipt_of(scope: Scope) -> Receipt:
    receipt = scope.get("state", {}).get(RECEIPT_KEY)
    return receipt if isinstance(receipt, Receipt) else Receipt.now(scope.get("path", SCORE_PATH))


_BACKTICKED = re.compile(r"field `([^`]+)`")


def field_errors(extra: Any, allowed: dict[str, tuple[Any, ...]]) -> list[dict[str, str]]:
    """Litestar's error list with every entry keyed by the field it is about.

    msgspec reports a missing or unknown field at the object (Litestar keys it ``data``) and
    names the field in the message; an absent body comes out as ``'data'``. Both are rewritten
    so a client can always map an error to its input, and enum errors say what was expected.
    """
    errors: list[dict[str, str]] = []
    for entry in extra if isinstance(extra, list) else []:
        if not isinstance(entry, dict):
            continue
        key, message = str(entry.get("key", "")), str(entry.get("message", ""))
        if key == "data" and (match := _BACKTICKED.search(message)):
            key = match.group(1)
        elif key == "data":
            key, message = "body", "Expected a JSON object with the application's fields"
        if message.startswith("Invalid enum value") and key in allowed:
            message = f"{message}, expected one of {list(allowed[key])}"
        errors.append({"key": key, "message": message, **({"source": entry["source"]} if "source" in entry else {})})
    return errors


def _validation_response(request: Request, exc: ValidationException) -> Response[Any]:
    serving: Serving = request.app.state.serving
    body = {"status_code": exc.status_code, "detail": exc.detail, "extra": field_errors(exc.extra, serving.allowed)}
    return Response(body, status_code=exc.status_code)


def _error_text(exc: Exception, allowed: dict[str, tuple[Any, ...]]) -> tuple[int, str]:
    if isinstance(exc, ValidationException):
        fields = "; ".join(f"{e['key']}: {e['message']}" for e in field_errors(exc.extra, allowed))
        return exc.status_code, f"{exc.detail}: {fields}" if fields else exc.detail
    if isinstance(exc, HTTPException):
        return exc.status_code, exc.detail
    return 500, f"{type(exc).__name__}: {exc}"


async def _log_rejected(exc: Exception, scope: Scope) -> None:
    """``after_exception`` hook: a request to a logged route that ends in an error is logged too.

    Runs before the error response is sent, so the row is durable first, as for decisions. A
    withheld decision (log not durable) is not logged again: the log is what just failed.
    """
    handler = scope.get("route_handler")
    if handler is None or not handler.opt.get(LOGGED_OPT) or isinstance(exc, DecisionNotLoggedError):
        return
    app: Litestar = scope["litestar_app"]
    writer: PredictionLogWriter | None = app.state.get("log_writer")
    serving: Serving = app.state.serving
    status_code, error = _error_text(exc, serving.allowed)
    if writer is None or not writer.running:
        log.warning("rejected request not logged (log writer not running): %s %s", status_code, error)
        return
    receipt = receipt_of(scope)
    bundle = app.state[MODELS_STATE_KEY].bundle or serving.bundle  # the version serving when it was rejected
    body = await _cached_body(scope)
    row = rejection_row(receipt, status_code=status_code, error=error, raw_body=body, bundle=bundle,
                        mode=current_mode(app.state))
    row["caller"] = caller_of(scope)
    try:
        await writer.append(row, started=receipt.started)
    except (LogWriteError, ValueError) as log_exc:
        log.warning("rejected request %s not logged: %s", receipt.request_id, log_exc)


async def _cached_body(scope: Scope) -> bytes | None:
    """The body Litestar already read, if it read one (this hook cannot receive more)."""
    try:
        return await Request(scope).body()
    except Exception:  # no body was read (rejected before parsing): nothing to keep
        return None

