"""Admin routes (scope ``admin``): reload the model now, set, clear and read the failover flag.

* ``POST /v1/admin/reload`` — asks the registry now (the same path as the alias poll in
  ``api.reload``), swaps if the alias moved to a servable version, and answers with the outcome.
* ``POST /v1/admin/failover`` ``{"reason": ..., "fallback": ...}`` — sets the flag in the data
  directory (``warehouse.failover.set_failover``, by the key's name), so every replica sharing it
  follows; the fallback defaults to ``LENDGUARD_FAILOVER_FALLBACK``.
* ``DELETE /v1/admin/failover`` ``{"note": ...}`` — clears it (a person's decision: the key's
  name and the note are recorded).
* ``GET /v1/admin/failover`` — the flag and what this replica applies.

Handlers stay thin: the rules live in ``warehouse.failover``, ``api.reload`` and ``api.failover``;
the watcher and the failover follower come in through ``Provide`` (``api.http``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import ClientException, ServiceUnavailableException

from api.auth import caller_name
from api.failover import FailoverFollower
from api.reload import ModelWatcher, ReloadOutcome, reload_model
from api.schemas import NOT_BLANK_TEXT_PATTERN
from warehouse.failover import FailoverError, clear_failover, set_failover

ADMIN_MAX_BODY_BYTES = 16 * 1024
"""The longest valid body fits: 1,000 characters, each escaped as a surrogate pair (12 bytes)."""
TEXT = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=NOT_BLANK_TEXT_PATTERN)]
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
"""OpenAPI: either header (see ``api.auth``)."""
RELOAD_STATUS = {
    ReloadOutcome.SWAPPED: 200,
    ReloadOutcome.UNCHANGED: 200,
    ReloadOutcome.ALIAS_UNSET: 409,
    ReloadOutcome.CONTRACT_CHANGED: 409,
    ReloadOutcome.LOAD_FAILED: 503,
    ReloadOutcome.REGISTRY_UNAVAILABLE: 503,
    ReloadOutcome.NOT_SERVING: 503,
}
"""200 when the served version is the alias's after the call; 409 when the alias points somewhere
this process will not go (restart needed or alias unset); 503 when it could not find out or load."""


class ReloadResponse(msgspec.Struct, kw_only=True):
    outcome: str
    """swapped, unchanged, contract_changed, load_failed, alias_unset, registry_unavailable, not_serving."""
    served_version: str | None
    alias: str | None
    alias_version: str | None
    detail: str
    checked_at: datetime
    previous_champion_version: str | None = None
    """The previous champion loaded for failover, if any (refreshed by the reload while it applies)."""


class FailoverSetRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: TEXT
    fallback: Literal["manual_review", "previous_champion"] | None = None
    """None: the server's ``LENDGUARD_FAILOVER_FALLBACK``."""


class FailoverClearRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    note: TEXT


class FailoverStatus(msgspec.Struct, kw_only=True):
    """The flag as this replica last read it, and what it applies."""

    active: bool
    mode: Literal["normal", "failover"]
    requested_fallback: str | None
    applied_fallback: str | None
    """Differs from ``requested_fallback`` when the previous champion cannot be applied (``note`` says why)."""
    previous_champion_version: str | None
    note: str | None
    reason: str | None
    set_by: str | None
    set_at: str | None
    cleared_by: str | None
    cleared_at: str | None
    clear_note: str | None


def _running(follower: FailoverFollower | None) -> FailoverFollower:
    if follower is None:
        raise ServiceUnavailableException(detail="the failover follower is not running")
    return follower


def status_of(follower: FailoverFollower) -> FailoverStatus:
    applied, flag = follower.applied(), follower.flag
    return FailoverStatus(
        active=flag.active, mode="failover" if flag.active else "normal",
        requested_fallback=flag.fallback if flag.active else None, applied_fallback=applied.fallback,
        previous_champion_version=applied.previous_version, note=applied.note, reason=flag.reason,
        set_by=flag.set_by, set_at=flag.set_at, cleared_by=flag.cleared_by, cleared_at=flag.cleared_at,
        clear_note=flag.clear_note,
    )


@post("/v1/admin/reload", status_code=200, request_max_body_size=ADMIN_MAX_BODY_BYTES, security=SECURITY,
      summary="Check the registry now and swap to the alias's version", tags=["admin"])
async def admin_reload(watcher: ModelWatcher | None, failover: FailoverFollower | None) -> Response[ReloadResponse]:
    result = await reload_model(watcher)
    if failover is not None and failover.active and failover.flag.fallback == "previous_champion":
        await failover.sync_previous()
    previous = None if failover is None else failover.previous.bundle
    body = ReloadResponse(
        outcome=result.outcome.value, served_version=result.served_version,
        alias=None if watcher is None else watcher.alias, alias_version=result.alias_version,
        detail=result.detail, checked_at=result.checked_at,
        previous_champion_version=None if previous is None else previous.version,
    )
    return Response(body, status_code=RELOAD_STATUS.get(result.outcome, 200))


@get("/v1/admin/failover", security=SECURITY, summary="The failover flag and what this replica applies",
     tags=["admin"])
async def admin_failover_status(failover: FailoverFollower | None) -> FailoverStatus:
    return status_of(_running(failover))


@post("/v1/admin/failover", status_code=200, request_max_body_size=ADMIN_MAX_BODY_BYTES, security=SECURITY,
      summary="Set failover for every replica sharing the data directory", tags=["admin"])
async def admin_failover_set(
    data: FailoverSetRequest, failover: FailoverFollower | None, request: Request[Any, Any, Any]
) -> FailoverStatus:
    follower = _running(failover)
    fallback = data.fallback or follower.settings.failover_fallback
    await _change_failover(follower, functools.partial(
        set_failover, follower.paths, by=caller_name(request), reason=data.reason, fallback=fallback))
    await follower.settled()  # the answer says what applies, the previous champion loaded or not
    return status_of(follower)


@delete("/v1/admin/failover", status_code=200, request_max_body_size=ADMIN_MAX_BODY_BYTES, security=SECURITY,
        summary="Clear failover: back to the model's decisions (a person's call, recorded)", tags=["admin"])
async def admin_failover_clear(
    data: FailoverClearRequest, failover: FailoverFollower | None, request: Request[Any, Any, Any]
) -> FailoverStatus:
    follower = _running(failover)
    await _change_failover(follower, functools.partial(
        clear_failover, follower.paths, by=caller_name(request), note=data.note))
    return status_of(follower)


async def _change_failover(follower: FailoverFollower, change: Callable[[], object]) -> None:
    """Write the flag off the event loop (a refusal is the caller's mistake: 400), then apply it here at once."""
    try:
        await asyncio.to_thread(change)
    except FailoverError as exc:
        raise ClientException(detail=str(exc)) from exc
    await follower.refresh()


ADMIN_HANDLERS = (admin_reload, admin_failover_status, admin_failover_set, admin_failover_clear)
