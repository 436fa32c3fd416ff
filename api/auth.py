"""API keys: who may score and who may administer the API.

Keys live in a file named by ``LENDGUARD_API_KEYS_FILE`` (YAML, or JSON, which YAML reads too)
that holds, per key, a name, its scopes and the SHA-256 of the key, never the key itself::

    keys:
      - name: alice
        scopes: [score, admin]
        sha256: 3f1c...   # lendguard api-key create alice --scope score --scope admin

``lendguard api-key create`` mints a key, prints it once and adds its hash to the file. A running
API notices a changed file within a second (it stats it at most once a second), so a new or
revoked key needs no restart.

A client sends ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The presented key is
hashed and compared with every stored hash with ``hmac.compare_digest`` (no early exit), so the
answer time does not say how close a guess was.

Which routes need what (one guard for the whole app, decided by path so that a new ``/v1`` route
is closed by default): ``/v1/admin/...`` needs ``admin``; every other ``/v1/...`` route needs
``score``; the operator pages, ``/dashboard`` (its own process: ``api.dashboard.app``) and
``/metrics``, need ``read``, which ``admin`` implies: they show group-level fairness numbers,
alerts, operators' notes and request counts, which are not for every scoring client.
``LENDGUARD_METRICS_PUBLIC=true`` opens ``/metrics`` alone, for a Prometheus scraper on a private
network that cannot send a key. ``/healthz``, ``/readyz`` and the docs (``/schema...``) are open.

Without a keys file, scoring and the operator pages are open (the demo and the tests), a warning
says so at start-up, and the admin routes answer 403: nobody can switch failover or reload models
over an unauthenticated API. ``LENDGUARD_REQUIRE_AUTH=true`` makes a missing keys file a start-up
error (production).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope as ASGIScope

from warehouse.errors import LendguardError

log = logging.getLogger(__name__)

Scope = Literal["score", "admin", "read"]
SCOPES: tuple[Scope, ...] = ("score", "admin", "read")
IMPLIED_SCOPES: dict[str, frozenset[str]] = {"admin": frozenset({"read"})}
"""Scopes a held scope grants as well: whoever may administer the API may read its operator pages."""
KEY_PREFIX = "lg_"
API_PREFIX = "/v1/"
ADMIN_PREFIX = "/v1/admin/"
DASHBOARD_PATH = "/dashboard"
METRICS_PATH = "/metrics"
METRICS_PUBLIC_STATE_KEY = "metrics_public"
"""``app.state`` key: True when ``/metrics`` is open to anyone (``LENDGUARD_METRICS_PUBLIC``)."""
KEYS_STATE_KEY = "api_keys"
"""``app.state`` key of the :class:`KeyFile` (None: no keys configured, auth off for scoring)."""
CALLER_STATE_KEY = "lendguard_api_key"
"""Request-scope state key of the authenticated :class:`ApiKey`."""
API_KEY_HEADER = "x-api-key"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="lendguard", charset="UTF-8"'}
ANONYMOUS = "anonymous"
RELOAD_CHECK_SECONDS = 1.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class KeyFileError(LendguardError):
    """The keys file cannot be used (unreadable, malformed, a bad entry); the message says which."""


@dataclass(frozen=True)
class ApiKey:
    """One configured key: who holds it, what it may do, and the SHA-256 of the key (hex)."""

    name: str
    scopes: frozenset[str]
    sha256: str

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or any(scope in IMPLIED_SCOPES.get(held, ()) for held in self.scopes)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256, hex. Keys are 256 random bits, so no salt or KDF is needed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh key: a recognisable prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys, matched in constant time."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)
        names = [k.name for k in self.keys]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise KeyFileError(f"duplicate key name(s) {duplicates}")

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key whose hash matches ``presented``, or None. Every stored hash is compared."""
        digest = hash_key(presented).encode("ascii")
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256.encode("ascii")):
                found = key
        return found


def parse_keys(raw: Any, source: str = "keys file") -> KeyRing:
    """A key ring from the file's parsed content: ``{"keys": [...]}`` or a bare list of entries."""
    entries = raw.get("keys") if isinstance(raw, dict) else raw
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise KeyFileError(f"{source}: expected a list of keys under 'keys'")
    keys = []
    for index, entry in enumerate(entries):
        where = f"{source}: key {index + 1}"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: expected a mapping with name, scopes and sha256")
        name, scopes, digest = entry.get("name"), entry.get("scopes"), entry.get("sha256")
        if not isinstance(name, str) or not _NAME.match(name):
            raise KeyFileError(f"{where}: name must be 1-64 letters, digits or _.@- (got {name!r})")
        if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
            raise KeyFileError(f"{where} ({name}): scopes must be a non-empty list of {list(SCOPES)}, got {scopes!r}")
        if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
            raise KeyFileError(f"{where} ({name}): sha256 must be 64 hex digits (the key's hash, never the key)")
        keys.append(ApiKey(name, frozenset(scopes), digest.lower()))
    return KeyRing(keys)


def read_keys(path: Path) -> KeyRing:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read API keys file {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise KeyFileError(f"API keys file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                           f"{type(exc).__name__}") from None
    return parse_keys(raw, str(path))


class KeyFile:
    """The keys file, re-read when it changes (checked at most once a second, by its stat).

    A file that turns bad while the API runs keeps the last good keys, with one error line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ring = read_keys(path)
        self._stamp = _stamp(path)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def current(self) -> KeyRing:
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_SECONDS or not self._lock.acquire(blocking=False):
            return self.ring
        try:
            self._checked = now
            stamp = _stamp(self.path)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self.ring = read_keys(self.path)
                    log.info("API keys reloaded from %s: %d key(s)", self.path, len(self.ring.keys))
                except KeyFileError as exc:
                    log.error("%s; keeping the %d key(s) loaded before", exc, len(self.ring.keys))
        finally:
            self._lock.release()
        return self.ring


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def open_keys(path: Path | None, *, require: bool) -> KeyFile | None:
    """The keys for a new app; None (auth off for scoring, admin closed) only when allowed."""
    if path is None:
        if require:
            raise KeyFileError("LENDGUARD_REQUIRE_AUTH is set but LENDGUARD_API_KEYS_FILE is not: refusing to start")
        log.warning(
            "API AUTH IS OFF: no LENDGUARD_API_KEYS_FILE, so /v1/score is open to anyone who can reach this port "
            "and the admin routes are disabled (403). Create keys with `lendguard api-key create`."
        )
        return None
    keys = KeyFile(path)
    if not keys.ring.keys:
        log.warning("API keys file %s holds no keys: every /v1 request will get 401", path)
    return keys


# ----- the guard ----------------------------------------------------------------------------------
def required_scope(path: str, *, metrics_public: bool = False) -> Scope | None:
    """What a path needs: admin under /v1/admin/, score elsewhere under /v1/, read for the operator
    pages (``/metrics`` open when ``metrics_public``), nothing for health and docs."""
    if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
        return "admin"
    if path.startswith(API_PREFIX):
        return "score"
    if path == DASHBOARD_PATH or path.startswith(DASHBOARD_PATH + "/"):
        return "read"
    if path == METRICS_PATH:
        return None if metrics_public else "read"
    return None


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    authorization = connection.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    header = connection.headers.get(API_KEY_HEADER, "").strip()
    return header or None


async def api_key_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """App-wide guard: 401 without a known key, 403 without the route's scope (see the module doc)."""
    state = connection.app.state
    scope = required_scope(connection.scope["path"], metrics_public=bool(state.get(METRICS_PUBLIC_STATE_KEY)))
    if scope is None:
        return
    keys: KeyFile | None = state.get(KEYS_STATE_KEY)
    if keys is None:
        if scope == "admin":
            raise PermissionDeniedException(
                detail="admin routes are disabled: this API has no API keys configured (LENDGUARD_API_KEYS_FILE)"
            )
        return
    presented = presented_key(connection)
    if presented is None:
        raise NotAuthorizedException(
            detail="missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", headers=CHALLENGE
        )
    key = keys.current().authenticate(presented)
    if key is None:
        raise NotAuthorizedException(detail="unknown API key", headers=CHALLENGE)
    if not key.allows(scope):
        raise PermissionDeniedException(detail=f"API key {key.name!r} lacks the {scope!r} scope this route needs")
    connection.scope.setdefault("state", {})[CALLER_STATE_KEY] = key


def caller_of(scope: ASGIScope) -> str:
    """The name of the API key that made the request; ``""`` when none did (open mode, or refused
    before its key was checked). The prediction log's ``caller`` column, and the idempotency scope."""
    key = scope.get("state", {}).get(CALLER_STATE_KEY)
    return key.name if isinstance(key, ApiKey) else ""


def caller_name(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Who made an authenticated request, as admin records name them (``anonymous`` while auth is off)."""
    return caller_of(connection.scope) or ANONYMOUS


# ----- minting (the CLI) --------------------------------------------------------------------------
def create_key(path: Path, name: str, scopes: Sequence[str]) -> str:
    """Mint a key for ``name`` with ``scopes``, add its hash to ``path`` (atomically); return the key.

    The key itself is stored nowhere: the caller shows it once.
    """
    scopes = list(dict.fromkeys(scopes))
    ring = read_keys(path) if path.exists() else KeyRing([])
    if any(k.name == name for k in ring.keys):
        raise KeyFileError(f"a key named {name!r} already exists in {path}; remove its entry first to replace it")
    key = new_key()
    entry = {"name": name, "scopes": scopes, "sha256": hash_key(key),
             "created_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
    parse_keys([entry], "new key")  # validates name and scopes before anything is written
    existing = _raw_entries(path)
    _write_atomically(path, [*existing, entry])
    return key


def _raw_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    raw = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    entries = raw.get("keys") if isinstance(raw, dict) else raw
    return list(entries or [])


def _write_atomically(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"keys": entries}
    text = json.dumps(body, indent=2) + "\n" if path.suffix == ".json" else yaml.safe_dump(body, sort_keys=False)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
