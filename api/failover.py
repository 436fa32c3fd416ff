"""The API's side of failover: follow the flag in ``warehouse.failover`` and apply its fallback.

Every replica sharing the data directory follows the one flag file: a background task stats it
every ``LENDGUARD_FAILOVER_POLL_SECONDS`` (0.5 s) and re-reads it when its inode, size or mtime
changed (the file is replaced atomically, so a read sees the old flag or the new one). A stat
costs about 2 µs on a local disk, so a per-request check would be affordable there, but on
shared network storage a stat is a round trip on the event loop; a poll bounds the cost on any
storage and still follows within ``poll + read`` (well under a second). The admin endpoints
refresh at once, so the replica that took the call follows immediately.

While the flag is set, every answer says ``mode = "failover"`` (response and log row, rejected
requests included) and carries ``Lendguard-Mode`` / ``Lendguard-Fallback`` headers (``api.http``):

* ``manual_review`` — the champion still scores (the probability is computed and logged), but
  every application goes to a person.
* ``previous_champion`` — the version behind the registry alias ``previous_champion`` (set by
  ``ml.delivery.deploy_prod.promote`` when ``champion`` moves) is loaded beside the champion and
  scores with its own thresholds. Until it is loaded, or when there is none, or its loan-book
  contract differs from the served one, ``manual_review`` applies and ``GET /v1/admin/failover``
  (and a log line) says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.reload import (
    LoadedModel,
    ModelSlot,
    RegistryUnavailableError,
    contract_change,
    registry_alias_version,
    start_model,
)
from ml.delivery import PREVIOUS_CHAMPION
from warehouse.failover import FailoverState, Fallback, flag_path, read_failover

if TYPE_CHECKING:
    from api.log_writer import PredictionLogWriter
    from warehouse.paths import Paths
    from warehouse.settings import ApiSettings

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int] | None


@dataclass(frozen=True)
class Applied:
    """What this replica does now: the flag as read, and the fallback it actually applies."""

    flag: FailoverState
    fallback: Fallback | None
    """None in normal mode; ``manual_review`` also when ``previous_champion`` cannot be applied."""
    previous_version: str | None
    note: str | None


class FailoverFollower:
    """Follows the failover flag file and holds the previous champion when that is the fallback."""

    def __init__(
        self, paths: Paths, settings: ApiSettings, served: ModelSlot, writer: PredictionLogWriter | None
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.served = served
        self.writer = writer
        self.previous = ModelSlot()
        """The previous champion's service (built with ``mode="failover"``); loaded on demand, kept."""
        self.flag = FailoverState()
        self.note: str | None = None
        self.noticed_at: float | None = None
        """Wall-clock time this replica last applied a changed flag (to measure how fast it follows)."""
        self._stamp: _Stamp = None
        self._task: asyncio.Task[None] | None = None
        self._loading: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._read_error: str | None = None
        self._synced_at = 0.0

    # ----- state ----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.flag.active

    @property
    def fallback(self) -> Fallback | None:
        """The fallback applied now (None in normal mode)."""
        if not self.flag.active:
            return None
        if self.flag.fallback == "previous_champion" and self.previous.bundle is not None:
            return "previous_champion"
        return "manual_review"

    def applied(self) -> Applied:
        previous = self.previous.bundle
        note = self.note if self.flag.active and self.fallback != self.flag.fallback else None
        return Applied(self.flag, self.fallback, None if previous is None else previous.version, note)

    # ----- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Read the flag, hook into the served slot (every scoring route leases from it), poll."""
        self.served.divert = self._divert
        self.served.in_failover = self._review_all
        if self.served.current is not None:
            self.served.current.service.in_failover = self._review_all
        await self.refresh()
        if self.settings.failover_fallback == "previous_champion":
            self.schedule_previous()  # loaded ahead, so a failover set later applies it at once
        self._task = asyncio.create_task(self._poll(), name="failover-follower")

    def _divert(self) -> LoadedModel | None:
        """The model a new request leases instead of the champion: the previous one, in that failover."""
        return self.previous.current if self.fallback == "previous_champion" else None

    def _review_all(self) -> bool:
        return self.fallback == "manual_review"

    async def stop(self) -> None:
        self.served.divert = None
        self.served.in_failover = None
        for task in (self._task, self._loading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._loading = None
        await self.previous.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.failover_poll_seconds)
            try:
                await self.refresh()
                if self._previous_due():
                    self.schedule_previous()  # the alias moves with every approval: follow it
            except Exception:  # the follower must outlive any surprise; the last flag read stays
                log.exception("failover flag check failed; keeping the last state read")

    def _previous_due(self) -> bool:
        """While previous_champion applies, re-check its alias as often as the champion's (default 10 s)."""
        every = self.settings.model_poll_seconds
        return (self.flag.active and self.flag.fallback == "previous_champion" and every > 0
                and time.monotonic() - self._synced_at >= every)

    async def refresh(self) -> FailoverState:
        """Re-read the flag if its file changed; apply it. Cheap when nothing changed (one stat)."""
        try:
            changed = await asyncio.to_thread(self._read_if_changed)
        except (OSError, ValueError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self._read_error:
                self._read_error = problem
                log.error("cannot read the failover flag %s (%s); keeping the last state read",
                          flag_path(self.paths), problem)
            return self.flag
        self._read_error = None
        if changed is not None:
            self._apply(changed)
        return self.flag

    def _read_if_changed(self) -> FailoverState | None:
        stamp = _stamp(self.paths)
        if stamp == self._stamp:
            return None
        state = read_failover(self.paths)
        self._stamp = stamp
        return state

    def _apply(self, state: FailoverState) -> None:
        before = self.flag
        self.flag = state
        self.noticed_at = time.time()
        if state.active and (not before.active or before.fallback != state.fallback or before.set_at != state.set_at):
            log.warning("FAILOVER ON (%s): set by %s at %s: %s", state.fallback, state.set_by, state.set_at,
                        state.reason)
        elif before.active and not state.active:
            log.warning("failover cleared by %s at %s: %s; back to the model's decisions",
                        state.cleared_by, state.cleared_at, state.clear_note)
        if state.active and state.fallback == "previous_champion":
            self.schedule_previous()

    # ----- the previous champion ------------------------------------------------------------------
    def schedule_previous(self) -> None:
        """Make sure the previous champion is loaded (in the background: the poll keeps following)."""
        if self._loading is None or self._loading.done():
            self._loading = asyncio.create_task(self.sync_previous(), name="load-previous-champion")

    async def settled(self) -> None:
        """Wait for a previous-champion load in progress, if any (its failure is in ``note``)."""
        loading = self._loading
        if loading is not None and not loading.done():
            await asyncio.shield(loading)

    async def sync_previous(self) -> None:
        """Load the version ``previous_champion`` points at, if it is not the one loaded already."""
        async with self._lock:
            self.note = await self._sync_previous()
            self._synced_at = time.monotonic()
            if self.note and self.flag.active and self.flag.fallback == "previous_champion":
                log.warning("failover fallback previous_champion: %s", self.note)

    async def _sync_previous(self) -> str | None:  # noqa: PLR0911 - one return per reason it cannot apply
        from ml.registry import load_version  # noqa: PLC0415 - imports mlflow

        served, loaded = self.served.bundle, self.previous.bundle
        if served is None or self.writer is None:
            return "no model is served: manual_review applied"
        try:
            version = await asyncio.to_thread(registry_alias_version, self.paths, PREVIOUS_CHAMPION)
        except RegistryUnavailableError as exc:
            if loaded is not None:
                return None  # the registry cannot say: keep the one loaded before
            return f"registry unreachable ({exc}): manual_review applied"
        if version is None:
            if loaded is not None:
                await self.previous.close()
            return f"no version has alias {PREVIOUS_CHAMPION!r}: manual_review applied"
        if loaded is not None and loaded.version == version:
            return None
        self.note = f"loading previous champion version {version}: manual_review applied meanwhile"
        try:
            bundle = await asyncio.to_thread(load_version, self.paths, version, PREVIOUS_CHAMPION)
            problem = contract_change(served, bundle)
            if problem is not None:
                return f"cannot serve previous champion ({problem}): manual_review applied"
            model = await start_model(bundle, self.writer, self.settings, self.served.proxies)
        except Exception as exc:  # whatever broke, manual_review is the safe answer
            return f"cannot load previous champion version {version} ({type(exc).__name__}): manual_review applied"
        model.service.mode = "failover"
        self.previous.install(model)
        log.info("previous champion version %s loaded for failover", version)
        return None


def _stamp(paths: Paths) -> _Stamp:
    try:
        stat = flag_path(paths).stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
