"""Idempotent retries: an ``Idempotency-Key`` header makes a retry get the first answer, not a new one.

A client that lost a response (timeout, dropped connection) retries with the same key and body and
gets the stored response (same ``request_id``); the decision is scored and logged once. The same
key with another body is refused (422): a key names one request. Concurrent duplicates are scored
once. Only answers (200) are remembered: a refusal or a 503 is not, so a retry after one is a new
attempt.

The guarantee, precisely:

* per caller: an answer is stored under (endpoint, API key name, Idempotency-Key), so the same key
  sent by another API key is another request (in open mode every caller is ``""``);
* for ``LENDGUARD_IDEMPOTENCY_TTL_SECONDS`` (default 24 h) and up to ``LENDGUARD_IDEMPOTENCY_MAX_KEYS``
  keys (the oldest forgotten first);
* across the worker processes of one host (``lendguard serve --workers N``): the answers live in a
  small SQLite file in WAL mode beside the landing zone, in the data directory (:class:`SharedAnswers`), and a key is
  claimed there atomically before it is scored, so a duplicate that lands on another worker waits
  for the first worker's answer (polling the file) instead of scoring again. If the claiming worker
  died (killed mid-request), the claim is taken over; if it is alive but has not answered within
  :data:`IN_PROGRESS_WAIT_SECONDS`, the duplicate gets 409 and retries later. Each process keeps an
  in-memory front (answers it has seen, and its own computations in flight), so a duplicate within
  one process never touches the file;
* across restarts, for ``POST /v1/score`` and ``POST /v1/score/batch``: the file survives a restart,
  and on start every worker also rebuilds it from the prediction log (rows carry ``caller``,
  ``idempotency_key``, ``idempotency_fingerprint``, and for a batch ``batch_id``, ``batch_index`` and
  ``batch_size``; a response is durable in the log before it is sent, so every answered key is
  there), from files modified within the TTL. That covers a worker killed between logging an
  answer and storing it, and a lost file;
* not across hosts: replicas on different hosts each have their own file, so a load balancer must
  send a key's retries to one host (hash on the header). The file must be on a local disk (SQLite's
  locking does not hold on network file systems).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

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
STORE_FILE = "idempotency.sqlite3"
"""The answers shared by the host's worker processes; beside the landing zone (by default in the data
directory), since it caches what that landing zone's prediction log holds."""
IN_PROGRESS_WAIT_SECONDS = 30.0
"""How long a duplicate waits for another live worker's answer before it gets 409 (the graceful
shutdown's length: a worker answers within it or is gone)."""
POLL_SECONDS = (0.002, 0.05)
"""A waiting duplicate polls the shared file from every 2 ms, backing off to every 50 ms."""
MAINTENANCE_SECONDS = 1.0
"""Expired and surplus answers are removed from the shared file at most this often."""
_LOG_COLUMNS = ("caller", "idempotency_key", "idempotency_fingerprint", "batch_id", "batch_index", "batch_size",
                "endpoint", "status_code", "received_at")

R = TypeVar("R")
Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); injected where TTLs are tested."""


class IdempotencyConflictError(ClientException):
    """The key was already used with another body."""

    status_code = 422


class IdempotencyInProgressError(ClientException):
    """Another worker is still computing this key's answer; retry shortly."""

    status_code = 409


class KeyScope(NamedTuple):
    """What an answer is stored under: a key names one request of one caller at one endpoint."""

    endpoint: str
    caller: str
    key: str


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


def _conflict(key: str) -> IdempotencyConflictError:
    return IdempotencyConflictError(
        detail=f"{HEADER} {key!r} was already used with a different request body; use a new key for a new request")


# ----- the host's shared store --------------------------------------------------------------------
class _Claim(NamedTuple):
    """The shared row of a key after a claim: ``mine`` (score it), or someone else's."""

    mine: bool
    fingerprint: str = ""
    done: bool = False
    payload: bytes | None = None
    owner_pid: int = 0


class SharedAnswers:
    """Answers shared by the processes of one host: a SQLite file in WAL mode (stdlib ``sqlite3``).

    One row per :class:`KeyScope`: ``pending`` while its owner (a process id) scores it, then
    ``done`` with the encoded answer. A key is claimed by one ``INSERT ... ON CONFLICT`` (atomic
    across processes), which also reclaims an answer older than the TTL. Not thread-safe: one
    instance per event loop. Commits are not fsynced (``synchronous=NORMAL``): the prediction log
    is the durable record, and every worker rebuilds this file from it on start.
    """

    def __init__(self, path: Path, *, ttl_seconds: float, max_keys: int, clock: Clock = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self.clock = clock
        self.pid = os.getpid()
        self._maintained = float("-inf")
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.execute(
            "create table if not exists answers ("
            " endpoint text not null, caller text not null, key text not null,"
            " fingerprint text not null, done integer not null, owner_pid integer not null,"
            " payload blob, created real not null,"
            " primary key (endpoint, caller, key)) without rowid")
        self._db.execute("create index if not exists answers_created on answers (done, created)")

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return int(self._db.execute("select count(*) from answers").fetchone()[0])

    def claim(self, scope: KeyScope, print_: str) -> _Claim:
        """Claim ``scope`` for this process, or say who holds it and whether it is answered."""
        now = self.clock()
        self._maintain(now)
        claimed = self._db.execute(
            "insert into answers values (?, ?, ?, ?, 0, ?, null, ?) on conflict (endpoint, caller, key) do update set"
            " fingerprint = excluded.fingerprint, done = 0, owner_pid = excluded.owner_pid, payload = null,"
            " created = excluded.created where answers.done = 1 and answers.created < ?",
            (*scope, print_, self.pid, now, now - self.ttl)).rowcount
        if claimed:
            return _Claim(mine=True)
        row = self._db.execute(
            "select fingerprint, done, payload, owner_pid from answers where endpoint = ? and caller = ? and key = ?",
            scope).fetchone()
        if row is None:  # expired and removed between the two statements: claim again
            return self.claim(scope, print_)
        return _Claim(False, row[0], bool(row[1]), row[2], row[3])

    def complete(self, scope: KeyScope, payload: bytes) -> None:
        self._db.execute(
            "update answers set done = 1, payload = ? where endpoint = ? and caller = ? and key = ? and owner_pid = ?",
            (payload, *scope, self.pid))

    def release(self, scope: KeyScope, owner_pid: int | None = None) -> None:
        """Drop an unanswered claim (ours after a failure, or a dead owner's) so the key can be scored."""
        self._db.execute(
            "delete from answers where endpoint = ? and caller = ? and key = ? and done = 0 and owner_pid = ?",
            (*scope, self.pid if owner_pid is None else owner_pid))

    def record(self, scope: KeyScope, print_: str, payload: bytes, created: float) -> None:
        """An answer found in the prediction log: stored unless the key is already answered."""
        self._db.execute(
            "insert into answers values (?, ?, ?, ?, 1, 0, ?, ?) on conflict (endpoint, caller, key) do update set"
            " fingerprint = excluded.fingerprint, done = 1, payload = excluded.payload, created = excluded.created"
            " where answers.done = 0",
            (*scope, print_, payload, created))

    def _maintain(self, now: float) -> None:
        """Forget answers past the TTL and the oldest beyond ``max_keys`` (claims in flight never)."""
        if now - self._maintained < MAINTENANCE_SECONDS:
            return
        self._maintained = now
        self._db.execute("delete from answers where done = 1 and created < ?", (now - self.ttl,))
        surplus = len(self) - self.max_keys
        if surplus > 0:
            self._db.execute(
                "delete from answers where (endpoint, caller, key) in (select endpoint, caller, key from answers"
                " where done = 1 order by created limit ?)", (surplus,))


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a claim's owner that died never answers).

    A killed worker stays a zombie until its parent reaps it (or forever, if its parent died too and
    nothing reaps orphans), and a zombie still takes signals: on Linux its state in /proc says it is dead.
    """
    proc = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            state = proc.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return False
        return state not in {"Z", "X"}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


# ----- the store a process uses -------------------------------------------------------------------
@dataclass
class _Entry(Generic[R]):
    fingerprint: str
    future: asyncio.Future[R]
    created: float


class IdempotencyStore(Generic[R]):
    """Answers by :class:`KeyScope`: an in-memory LRU front with a time to live and one in-flight
    future per key, over the host's :class:`SharedAnswers` when given one (else this process only)."""

    def __init__(self, *, ttl_seconds: float = 86_400.0, max_keys: int = 100_000,
                 shared: SharedAnswers | None = None, clock: Clock = time.time) -> None:
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self.shared = shared
        self.clock = clock
        self._entries: OrderedDict[KeyScope, _Entry[R]] = OrderedDict()
        self.replays = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, scope: KeyScope, print_: str, compute: Callable[[], Awaitable[R]], response_type: type[R] | None = None,
    ) -> tuple[R, bool]:
        """``compute()``'s result for this key, computed once; ``(result, replayed)``.

        A duplicate that arrives while the first is in flight waits for it. If the first fails,
        nothing is remembered and the waiting duplicate computes in its turn. ``response_type``
        decodes an answer another process stored (needed with a shared store).
        """
        loop = asyncio.get_running_loop()
        while True:
            self._expire()
            entry = self._entries.get(scope)
            if entry is None:
                break
            if entry.fingerprint != print_:
                raise _conflict(scope.key)
            self._entries.move_to_end(scope)
            try:
                result = await asyncio.shield(entry.future)
            except IdempotencyConflictError:
                raise
            except Exception as exc:  # the first attempt failed and was forgotten: try again
                log.info("idempotency: first attempt with key %r failed (%s); retrying it",
                         scope.key, type(exc).__name__)
                continue
            self.replays += 1
            return result, True
        entry = _Entry(print_, loop.create_future(), self.clock())
        self._entries[scope] = entry
        self._trim()
        try:
            result, replayed = await self._resolve(scope, print_, compute, response_type)
        except BaseException as exc:
            if self._entries.get(scope) is entry:
                del self._entries[scope]
            entry.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            entry.future.exception()  # retrieved: nobody may be waiting
            raise
        entry.future.set_result(result)
        self.replays += replayed
        return result, replayed

    async def _resolve(
        self, scope: KeyScope, print_: str, compute: Callable[[], Awaitable[R]], response_type: type[R] | None,
    ) -> tuple[R, bool]:
        """This process does not know the key: claim it in the shared store, or wait for its holder."""
        shared = self.shared
        if shared is None:
            return await compute(), False
        deadline = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
        pause = POLL_SECONDS[0]
        while True:
            claim = shared.claim(scope, print_)
            if claim.mine:
                try:
                    result = await compute()
                except BaseException:
                    shared.release(scope)
                    raise
                try:
                    shared.complete(scope, msgspec.json.encode(result))
                except sqlite3.Error as exc:  # the answer is logged: the log rebuild will find it
                    log.error("idempotency: answer to key %r not shared with the other workers: %s", scope.key, exc)
                return result, False
            if claim.fingerprint != print_:
                raise _conflict(scope.key)
            if claim.done and claim.payload is not None:
                if response_type is None:
                    raise TypeError("a shared store needs the response type to decode another process's answer")
                return msgspec.json.decode(claim.payload, type=response_type), True
            if not _alive(claim.owner_pid):
                log.warning("idempotency: key %r was claimed by process %d, which is gone; taking it over",
                            scope.key, claim.owner_pid)
                shared.release(scope, claim.owner_pid)
                continue
            if time.monotonic() >= deadline:
                raise IdempotencyInProgressError(
                    detail=f"a request with {HEADER} {scope.key!r} is still being answered; retry shortly",
                    headers={"Retry-After": "1"})
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_SECONDS[1])

    def _expire(self) -> None:
        cutoff = self.clock() - self.ttl
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
    """An answer the log records: one response, or a batch's responses in order under its id."""

    scope: KeyScope
    fingerprint: str
    responses: tuple[ScoreResponse, ...]
    batch_id: str | None
    age_seconds: float

    def payload(self) -> bytes:
        """The answer as the route sent it (JSON): a ``ScoreResponse``, or a ``BatchScoreResponse``."""
        if self.batch_id is None:
            return msgspec.json.encode(self.responses[0])
        return msgspec.json.encode({"batch_id": self.batch_id, "results": list(self.responses)})


def logged_answers(log_dir: Path, ttl_seconds: float, *, now: float | None = None) -> Iterable[LoggedAnswer]:
    """Answers given with a key, from log files modified within the TTL.

    Files being written by another process are never read: their temporary names start with a dot.
    A row whose response cannot be rebuilt (written by a version with other response fields) is
    skipped with a warning; its key then scores again on retry. A batch is rebuilt only when all
    its rows are there (a batch answered 503 left some rows and no answer); rows without a
    ``caller`` column were written before callers were recorded, and count as ``""``.
    """
    now = time.time() if now is None else now
    response_fields = ScoreResponse.__struct_fields__
    skipped = 0
    batches: dict[tuple[KeyScope, str, str], dict[int, tuple[int, ScoreResponse]]] = defaultdict(dict)
    batch_age: dict[tuple[KeyScope, str, str], float] = {}
    for row, age in _keyed_answer_rows(log_dir, ttl_seconds, now):
        values = {f: row[f] for f in response_fields if f in row}
        values["unknown_categories"] = tuple(filter(None, (row.get("unknown_categories") or "").split(",")))
        response = _response(values)
        if response is None:
            skipped += 1
            continue
        scope = KeyScope(row["endpoint"], row.get("caller") or "", row["idempotency_key"])
        batch_id = row.get("batch_id")
        if batch_id is None:
            yield LoggedAnswer(scope, row["idempotency_fingerprint"], (response,), None, age)
        elif row.get("batch_index") is not None and row.get("batch_size") is not None:
            group = (scope, row["idempotency_fingerprint"], batch_id)
            batches[group][row["batch_index"]] = (row["batch_size"], response)  # a compaction's copy is the same row
            batch_age[group] = min(batch_age.get(group, age), age)
    for (scope, print_, batch_id), rows in batches.items():
        size = next(iter(rows.values()))[0]
        if sorted(rows) != list(range(size)):
            continue  # incomplete: answered 503, never sent
        responses = tuple(rows[index][1] for index in range(size))
        yield LoggedAnswer(scope, print_, responses, batch_id, batch_age[(scope, print_, batch_id)])
    if skipped:
        log.warning("idempotency: %d logged answers could not be rebuilt (other response fields)", skipped)


def _keyed_answer_rows(log_dir: Path, ttl_seconds: float, now: float) -> Iterable[tuple[dict[str, Any], float]]:
    """Answered (200) log rows sent with a key, each with its file's age, from files within the TTL."""
    response_fields = ScoreResponse.__struct_fields__
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
            if row["status_code"] == 200 and row.get("idempotency_fingerprint"):
                yield row, age


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


def rebuild_from_log(shared: SharedAnswers, log_dir: Path) -> int:
    """Store every answer the log holds within the TTL in ``shared`` (oldest first); how many."""
    answers = sorted(logged_answers(log_dir, shared.ttl, now=shared.clock()), key=lambda a: -a.age_seconds)
    now = shared.clock()
    for answer in answers:
        shared.record(answer.scope, answer.fingerprint, answer.payload(), now - answer.age_seconds)
    return len(answers)


def idempotency_lifespan(settings: ApiSettings, paths: Paths) -> Callable[[Litestar], Any]:
    """Put an :class:`IdempotencyStore` on ``app.state`` over the host's shared file, rebuilt from the log."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        shared = SharedAnswers(paths.landing.parent / STORE_FILE, ttl_seconds=settings.idempotency_ttl_seconds,
                               max_keys=settings.idempotency_max_keys)
        started = time.perf_counter()
        rebuilt = await asyncio.to_thread(rebuild_from_log, shared, paths.landing / PREDICTION_LOG)
        if rebuilt:
            log.info("idempotency: %d answers rebuilt from the prediction log in %.0f ms",
                     rebuilt, (time.perf_counter() - started) * 1000)
        app.state[STATE_KEY] = IdempotencyStore(
            ttl_seconds=settings.idempotency_ttl_seconds, max_keys=settings.idempotency_max_keys, shared=shared)
        try:
            yield
        finally:
            shared.close()

    return lifespan


def store_of(request: Request[Any, Any, Any]) -> IdempotencyStore[Any]:
    """The app's store (a process-only one if the lifespan did not run, as in unit tests of the handlers)."""
    state = request.app.state
    store = state.get(STATE_KEY)
    if store is None:
        store = state[STATE_KEY] = IdempotencyStore()
    return store
