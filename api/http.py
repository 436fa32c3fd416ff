"""HTTP plumbing shared by every route: typed application state, middleware, errors, dependencies.

A leaf of the HTTP side: it imports the services it wires (scoring, reload, failover, metrics,
the prediction log) and nothing of the routes, the plugin or the app, so every route module and
the plugin import it and it never imports them back (``pyproject.toml``'s import contracts hold
that).

* :class:`AppState` — everything one app holds, in one attribute of ``app.state`` (no string keys);
* :func:`stamp_receipt` — notes a request's arrival before its body is read (latency counts
  validation too);
* :func:`error_response` — a scoring route's errors: every field's error keyed by its field, and the
  ``request_id`` of the request's log row;
* :func:`scoring_failures` and :func:`not_loaded` — the one mapping of "not loaded / shutting down /
  log not durable" to 503;
* :func:`log_rejected` — the ``after_exception`` hook that logs a rejected scoring request;
* :func:`provide_scoring_call` and the other ``provide_*`` — what handlers receive through ``Provide``;
* :func:`count_requests` and :func:`failover_headers` — the app-wide middleware.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ServiceUnavailableException, ValidationException

from api.auth import caller_of
from api.batching import BatcherClosedError
from api.body_checks import OccurredAtBounds, OccurredAtRefusedError
from api.failover import FailoverFollower
from api.idempotency import IdempotencyStore, request_key, store_of
from api.log_writer import LogWriteError, PredictionLogWriter
from api.metrics import Metrics, ServingGauges
from api.proxies import ProxyLogging
from api.reload import ModelSlot, ModelWatcher
from api.schemas import REQUEST_ID_HEADER, Mode
from api.service import Receipt, ScoringService, rejection_row

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from ml.registry import ModelBundle
    from warehouse.paths import Paths
    from warehouse.settings import ApiSettings

log = logging.getLogger(__name__)

STATE_ATTRIBUTE = "lendguard"
"""The one ``app.state`` attribute this project uses: the :class:`AppState`."""
LOGGED_OPT = "prediction_log"
"""Route-handler ``opt`` flag: requests to this route are written to the prediction log."""
RECEIPT_KEY = "lendguard_receipt"
"""Request-scope key of the :class:`~api.service.Receipt` (set by :func:`stamp_receipt`)."""
NOT_LOADED = "the model is not loaded; see /readyz"
SHUTTING_DOWN = "the service is shutting down; retry"


# ----- typed application state --------------------------------------------------------------------
@dataclass(frozen=True)
class Serving:
    """What the app factory decided to serve: the bundle, or why there is none."""

    alias: str
    bundle: ModelBundle | None
    reason: str | None
    allowed: dict[str, tuple[Any, ...]]
    """Enumerated inputs and their values, to say what was expected when one is wrong."""
    loaded_at: datetime | None = None
    """When the registry answered the factory (the first successful registry check)."""
    proxies: ProxyLogging | None = None
    """What the log keeps of the contract's BISG proxies (None: it declares none)."""


class AppState:
    """One app's state. Built with the app; the lifespan fills in what needs a running event loop.

    A plain class, not a dataclass: Litestar hands it to handlers as a dependency, and would
    otherwise convert it field by field on every request.
    """

    def __init__(self, settings: ApiSettings, paths: Paths, serving: Serving) -> None:
        self.settings = settings
        self.paths = paths
        self.serving = serving
        self.models = ModelSlot()
        """The slot requests are scored from (see ``api.reload``)."""
        self.log_writer: PredictionLogWriter | None = None
        self.watcher: ModelWatcher | None = None
        self.failover: FailoverFollower | None = None
        self.metrics = Metrics(self.gauges)
        """This app's own Prometheus registry; its gauges read this state at scrape time."""

    @property
    def mode(self) -> Mode:
        """``failover`` while the flag is set: answers and log rows (rejections too) say so."""
        return "failover" if self.failover is not None and self.failover.active else "normal"

    def gauges(self) -> ServingGauges:
        """What ``/metrics`` reads at scrape time about the model, failover and the log."""
        writer = self.log_writer
        return ServingGauges(bundle=self.models.bundle, alias=self.serving.alias, failover=self.failover,
                             pending_rows=0 if writer is None else writer.pending)


def app_state(app: Litestar) -> AppState:
    return state_of(app.state)


def state_of(state: State) -> AppState:
    found = state.get(STATE_ATTRIBUTE)
    if not isinstance(found, AppState):
        raise TypeError(f"app.state.{STATE_ATTRIBUTE} holds no AppState: the app was not built by api.app")
    return found


# ----- dependencies -------------------------------------------------------------------------------
def provide_app_state(state: State) -> AppState:  # State imported at run time: Litestar reads this signature
    return state_of(state)


@dataclass(frozen=True)
class ScoringCall:
    """What a scoring route needs for one request, as one dependency: Litestar resolves several
    dependencies of one level in an anyio task group per request (about a fifth of the API's CPU
    per request under load, measured with py-spy), one dependency inline."""

    scoring: ScoringService
    """Leased until the handler returns (see :func:`provide_scoring_call`)."""
    receipt: Receipt
    store: IdempotencyStore[Any]
    caller: str
    """The API key's name; "" in open mode (the log's ``caller`` column, the idempotency scope)."""
    key: str | None
    """The request's ``Idempotency-Key``, if it sent one."""
    occurred_at_bounds: OccurredAtBounds
    """What the request's ``occurred_at`` may state, given its receipt and the leased version."""


async def provide_scoring_call(app_state: AppState, request: Request[Any, Any, Any]) -> AsyncIterator[ScoringCall]:
    """The service a scoring request uses, leased until the handler returns; 503 while none is loaded.

    The lease keeps the model this request started with open until its answer is logged, even if
    a new version is swapped in meanwhile (``api.reload``).
    """
    async with app_state.models.lease() as scoring:
        if scoring is None:
            raise not_loaded(app_state.serving)
        receipt = receipt_of(request.scope)
        bounds = OccurredAtBounds.at_receipt(receipt.received_at, scoring.bundle, app_state.settings)
        yield ScoringCall(scoring, receipt, store_of(request), caller_of(request.scope), request_key(request), bounds)


def provide_watcher(app_state: AppState) -> ModelWatcher | None:
    return app_state.watcher


def provide_failover(app_state: AppState) -> FailoverFollower | None:
    return app_state.failover


# ----- the one 503 mapping ------------------------------------------------------------------------
class DecisionNotLoggedError(ServiceUnavailableException):
    """The decision's log row is not durable, so the decision is withheld."""


def not_loaded(serving: Serving) -> ServiceUnavailableException:
    return ServiceUnavailableException(detail=serving.reason or NOT_LOADED)


@contextmanager
def scoring_failures(not_logged: str) -> Iterator[None]:
    """Scoring that cannot be answered is a 503: the scorer is shutting down, or ``not_logged``
    (the log row, hence the decision, is not durable; the client retries)."""
    try:
        yield
    except BatcherClosedError as exc:
        raise ServiceUnavailableException(detail=SHUTTING_DOWN) from exc
    except LogWriteError as exc:
        log.error("decision withheld, its log row is not durable: %s", exc)
        raise DecisionNotLoggedError(detail=not_logged, headers={"Retry-After": "1"}) from exc


# ----- receipt, validation errors and logging of rejected requests -------------------------------
def stamp_receipt(app: ASGIApp) -> ASGIApp:
    """Middleware: note arrival before the body is read, so latency counts validation too."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[RECEIPT_KEY] = Receipt.now(scope["path"])
        await app(scope, receive, send)

    return middleware


def receipt_of(scope: Scope) -> Receipt:
    receipt = scope.get("state", {}).get(RECEIPT_KEY)
    return receipt if isinstance(receipt, Receipt) else Receipt.now(scope.get("path", ""))


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


def error_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Exception handler of the scoring routes: Litestar's body, every field's error keyed by its field,
    and the ``request_id`` of the request's log row (also a header), so a client can quote it."""
    serving = app_state(request.app).serving
    request_id = receipt_of(request.scope).request_id
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail, "request_id": request_id}
    if isinstance(exc, ValidationException):
        body["extra"] = field_errors(exc.extra, serving.allowed)
    elif exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, headers={**(exc.headers or {}), REQUEST_ID_HEADER: request_id})


def _error_text(exc: Exception, allowed: dict[str, tuple[Any, ...]]) -> tuple[int, str]:
    if isinstance(exc, ValidationException):
        fields = "; ".join(f"{e['key']}: {e['message']}" for e in field_errors(exc.extra, allowed))
        return exc.status_code, f"{exc.detail}: {fields}" if fields else exc.detail
    if isinstance(exc, HTTPException):
        return exc.status_code, exc.detail
    return 500, f"{type(exc).__name__}: {exc}"


async def log_rejected(exc: Exception, scope: Scope) -> None:
    """``after_exception`` hook: a request to a logged route that ends in an error is logged too.

    Runs before the error response is sent, so the row is durable first, as for decisions. A
    withheld decision (log not durable) is not logged again: the log is what just failed.
    """
    handler = scope.get("route_handler")
    if handler is None or not handler.opt.get(LOGGED_OPT) or isinstance(exc, DecisionNotLoggedError):
        return
    state = app_state(scope["litestar_app"])
    writer, serving = state.log_writer, state.serving
    status_code, error = _error_text(exc, serving.allowed)
    if writer is None or not writer.running:
        log.warning("rejected request not logged (log writer not running): %s %s", status_code, error)
        return
    receipt = receipt_of(scope)
    bundle = state.models.bundle or serving.bundle  # the version serving when it was rejected
    body = await _cached_body(scope)
    row = rejection_row(receipt, status_code=status_code, error=error, raw_body=body, bundle=bundle, mode=state.mode,
                        proxies=serving.proxies)
    if isinstance(exc, OccurredAtRefusedError):  # the refused time must not place the row (raw_body keeps it)
        row["occurred_at"] = None
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


# ----- app-wide middleware ------------------------------------------------------------------------
def count_requests(app: ASGIApp) -> ASGIApp:
    """Middleware: one ``/metrics`` observation per routed HTTP request, with its status and latency."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        metrics = app_state(scope["litestar_app"]).metrics
        started = time.perf_counter()
        status = 500  # what the server sends if the app fails before starting an answer

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, observe)
        finally:
            endpoint = scope.get("path_template") or scope["path"]
            metrics.observe_request(endpoint, scope["method"], status, time.perf_counter() - started)

    return middleware


MODE_HEADER = "lendguard-mode"
FALLBACK_HEADER = "lendguard-fallback"


def failover_headers(app: ASGIApp) -> ASGIApp:
    """Middleware: while failover is on, every response says so in its headers (see ``api.failover``)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        follower = app_state(scope["litestar_app"]).failover

        async def send_with_mode(message: Message) -> None:
            if message["type"] == "http.response.start" and follower is not None and follower.active:
                headers = list(message.get("headers", []))
                headers.append((MODE_HEADER.encode(), b"failover"))
                headers.append((FALLBACK_HEADER.encode(), str(follower.fallback).encode()))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_mode)

    return middleware
