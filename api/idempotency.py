"""Idempotent retries: an ``Idempotency-Key`` header makes a retry get the first answer, not a new one.

A client that lost a response (timeout, dropped connection) retries with the same key and body and
gets the stored response (same ``request_id``); the decision is scored and logged once. The same
key with another body is refused (422): a key names one request. Concurrent duplicates share one
in-flight computation, so they cannot both score. Only answers (200) are remembered: a refusal or
a 503 is not, so a retry after one is a new attempt.

The guarantee, precisely:

* within one process, for ``LENDGUARD_IDEMPOTENCY_TTL_SECONDS`` (default 24 h) and up to
  ``LENDGUARD_IDEMPOTENCY_MAX_KEYS`` keys (least recently used forgotten first);
* across restarts, for ``POST /v1/score``: on start the store is rebuilt from the prediction log
  (rows carry ``idempotency_key`` and ``idempotency_fingerprint``; a response is durable before it
  is sent, so every answered key is there), from files modified within the TTL. Batch answers are
  remembered within the process only (a batch's rows do not record its order);
* not across replicas at the same moment: each process has its own store, so a load balancer must
  send a key's retries to one replica (hash on the header) for the guarantee to hold there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec
import pyarrow.compute as pc
import pyarrow.parquet as pq
from litestar import Litestar, Request
from litestar.exceptions import ClientException, ValidationException

from api.schemas import ScoreResponse
from warehouse.landing import PREDICTION_LOG
from warehouse.paths import Paths
from warehouse.settings import ApiSettings

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
STATE_KEY = "idempotency"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,128}")
"""1 to 128 visible ASCII characters (a UUID, a ULID, a client's own scheme)."""
_LOG_COLUMNS = ("idempotency_key", "idempotency_fingerprint", "batch_id", "endpoint", "status_code")

R = TypeVar("R")


class IdempotencyConflictError(ClientException):
    """The key was already used with another body."""

    status_code = 422


def request_key(request: Request[Any, Any, Any]) -> str | None:
    """The request's ``Idempotency-Key``, or None; a malformed one is a 400 naming the header."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not KEY_PATTERN.fullmatch(value):
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"key": HEADER, "source": "header",
                    "message": "Expected 1 to 128 visible ASCII characters (no spaces)"}],
        )
    return value


def fingerprint(endpoint: str, body: msgspec.Struct) -> str:
    """SHA-256 of the endpoint and the validated body re-encoded (key order and spacing do not matter)."""
    return hashlib.sha256(endpoint.encode() + b"\n" + msgspec.json.encode(body)).hexdigest()


@dataclass
class _Entry(Generic[R]):
    fingerprint: str
    future: asyncio.Future[R]
    created: float = field(default_factory=time.monotonic)


class IdempotencyStore(Generic[R]):
    """Answers by (endpoint, key): an in-memory LRU with a time to live, and one in-flight future per key."""

    def __init__(self, *, ttl_seconds: float = 86_400.0, max_keys: int = 100_000) -> None:
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self._entries: OrderedDict[tuple[str, str], _Entry[R]] = OrderedDict()
        self.replays = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, endpoint: str, key: str, print_: str, compute: Callable[[], Awaitable[R]]
    ) -> tuple[R, bool]:
        """``compute()``'s result for this key, computed once; ``(result, replayed)``.

        A duplicate that arrives while the first is in flight waits for it. If the first fails,
        nothing is remembered and the waiting duplicate computes in its turn.
        """
        loop = asyncio.get_running_loop()
        while True:
            self._expire()
            entry = self._entries.get((endpoint, key))
            if entry is None:
                break
            if entry.fingerprint != print_:
                raise IdempotencyConflictError(
                    detail=f"{HEADER} {key!r} was already used with a different request body; "
                    "use a new key for a new request")
            self._entries.move_to_end((endpoint, key))
            try:
                result = await asyncio.shield(entry.future)
            except Exception as exc:  # the first attempt failed and was forgotten: try again
                log.info("idempotency: first attempt with key %r failed (%s); retrying it", key, type(exc).__name__)
                continue
            self.replays += 1
            return result, True
        entry = _Entry(print_, loop.create_future())
        self._entries[(endpoint, key)] = entry
        self._trim()
        try:
            result = await compute()
        except BaseException as exc:
            if self._entries.get((endpoint, key)) is entry:
                del self._entries[(endpoint, key)]
            entry.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            entry.future.exception()  # retrieved: nobody may be waiting
            raise
        entry.future.set_result(result)
        return result, False

    def remember(self, endpoint: str, key: str, print_: str, result: R, *, age_seconds: float = 0.0) -> None:
        """Record an answer given earlier (rebuilding from the log)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.set_result(result)
        self._entries[(endpoint, key)] = _Entry(print_, future, time.monotonic() - age_seconds)
        self._entries.move_to_end((endpoint, key))
        self._trim()

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl
        stale = [k for k, e in self._entries.items() if e.created < cutoff and e.future.done()]
        for key in stale:
            del self._entries[key]

    def _trim(self) -> None:
        while len(self._entries) > self.max_keys:
            oldest = next(iter(self._entries))
            if not self._entries[oldest].future.done():
                break  # never forget a computation in flight (its duplicates wait on it)
            del self._entries[oldest]


# ----- rebuilding from the prediction log ---------------------------------------------------------
@dataclass(frozen=True)
class LoggedAnswer:
    endpoint: str
    key: str
    fingerprint: str
    response: ScoreResponse
    age_seconds: float


def logged_answers(log_dir: Path, ttl_seconds: float, *, now: float | None = None) -> Iterable[LoggedAnswer]:
    """Single-request answers given with a key, from log files modified within the TTL.

    Files being written by another process are never read: their temporary names start with a dot.
    A row whose response cannot be rebuilt (written by a version with other response fields) is
    skipped with a warning; its key then scores again on retry.
    """
    now = time.time() if now is None else now
    response_fields = ScoreResponse.__struct_fields__
    skipped = 0
    for path in sorted(log_dir.glob("*.parquet")):
        if path.name.startswith("."):
            continue
        try:
            age = now - path.stat().st_mtime
            if age > ttl_seconds:
                continue
            names = set(pq.read_schema(path).names)
            if "idempotency_key" not in names:
                continue
            columns = [c for c in (*_LOG_COLUMNS, *response_fields) if c in names]
            table = pq.read_table(path, columns=columns)
            table = table.filter(pc.is_valid(table["idempotency_key"]))
        except (OSError, ValueError) as exc:  # removed by a compaction meanwhile, or unreadable
            log.warning("idempotency: %s not read: %s", path.name, exc)
            continue
        for row in table.to_pylist():
            if row["status_code"] != 200 or row.get("batch_id") is not None or not row.get("idempotency_fingerprint"):
                continue
            values = {f: row[f] for f in response_fields if f in row}
            values["unknown_categories"] = tuple(filter(None, (row.get("unknown_categories") or "").split(",")))
            response = _response(values)
            if response is None:
                skipped += 1
                continue
            yield LoggedAnswer(row["endpoint"], row["idempotency_key"], row["idempotency_fingerprint"], response, age)
    if skipped:
        log.warning("idempotency: %d logged answers could not be rebuilt (other response fields)", skipped)


def _response(values: dict[str, Any]) -> ScoreResponse | None:
    """The response a log row records; list-valued fields are logged as JSON text (``reason_codes``),
    and a null in a field with a default (a column older rows lack) means that default."""
    optional = {f.encode_name for f in msgspec.structs.fields(ScoreResponse) if not f.required}
    values = {k: v for k, v in values.items() if not (v is None and k in optional)}
    try:
        return msgspec.convert(values, ScoreResponse)
    except msgspec.ValidationError:
        pass
    decoded = dict(values)
    for name, value in values.items():
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                decoded[name] = json.loads(value)
    try:
        return msgspec.convert(decoded, ScoreResponse)
    except msgspec.ValidationError:
        return None


def idempotency_lifespan(settings: ApiSettings, paths: Paths) -> Callable[[Litestar], Any]:
    """Put an :class:`IdempotencyStore` on ``app.state``, rebuilt from the prediction log."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store: IdempotencyStore[Any] = IdempotencyStore(
            ttl_seconds=settings.idempotency_ttl_seconds, max_keys=settings.idempotency_max_keys)
        started = time.perf_counter()
        answers = await asyncio.to_thread(
            lambda: list(logged_answers(paths.landing / PREDICTION_LOG, settings.idempotency_ttl_seconds)))
        for answer in sorted(answers, key=lambda a: -a.age_seconds):
            store.remember(answer.endpoint, answer.key, answer.fingerprint, answer.response,
                           age_seconds=answer.age_seconds)
        if answers:
            log.info("idempotency: %d keys rebuilt from the prediction log in %.0f ms",
                     len(store), (time.perf_counter() - started) * 1000)
        app.state[STATE_KEY] = store
        yield

    return lifespan


def store_of(request: Request[Any, Any, Any]) -> IdempotencyStore[Any]:
    """The app's store (a bare one if the lifespan did not run, as in unit tests of the handlers)."""
    state = request.app.state
    store = state.get(STATE_KEY)
    if store is None:
        store = state[STATE_KEY] = IdempotencyStore()
    return store
