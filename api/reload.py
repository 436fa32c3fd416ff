"""Hot reload: the API follows its alias in the registry without a restart or a dropped request.

Delivery step 7 moves ``champion``; every running API notices on its next poll (or at once, via
:func:`reload_model`), loads and warms the new version beside the old one, and swaps.

Why the swap is safe:

* One :class:`~api.service.ScoringService` per bundle. It computes the probability, picks the
  threshold and names the version from its own bundle, so an answer (and its log row) can never
  mix two versions.
* A request leases the service it starts with (:meth:`ModelSlot.lease`) for its whole life. The
  swap is one assignment, so a request gets the old service or the new one, never none; the old
  one is stopped and its scorer closed only once its last lease is returned.
* The request body type was fixed from the loan-book contract when the app was built, so a
  version with another contract is not served: the old one stays and an error line says a
  restart is needed.
* A registry that cannot be reached changes nothing: the loaded model keeps serving, with one
  warning per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from api.log_writer import PredictionLogWriter
from api.proxies import ProxyLogging
from api.service import ScoringService, warm_up
from ml.registry import MODEL_NAME, ModelBundle
from warehouse.errors import LendguardError
from warehouse.paths import Paths
from warehouse.settings import ApiSettings, redact_uri

if TYPE_CHECKING:
    from ml.scoring import FeatureScorer

log = logging.getLogger(__name__)

ALIAS_UNSET_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
"""MLflow error codes meaning "no such model or alias": the registry answered, the alias is unset."""


class RegistryUnavailableError(LendguardError):
    """The registry could not be asked (down, unreachable, unreadable): not the same as "no alias"."""


class ReloadOutcome(StrEnum):
    SWAPPED = "swapped"
    UNCHANGED = "unchanged"
    CONTRACT_CHANGED = "contract_changed"
    """The alias points at a version with another loan-book contract: it needs a restart."""
    LOAD_FAILED = "load_failed"
    ALIAS_UNSET = "alias_unset"
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    NOT_SERVING = "not_serving"
    """The app started without a model: its request body needs a contract, so only a restart helps."""


@dataclass(frozen=True)
class ReloadResult:
    """What one registry check found and did (what the admin endpoint will return)."""

    outcome: ReloadOutcome
    served_version: str | None
    """The version answering requests after the check."""
    alias_version: str | None
    """The version the alias pointed at, if the registry said."""
    detail: str
    checked_at: datetime


# ----- the registry question ----------------------------------------------------------------------
def registry_alias_version(paths: Paths, alias: str) -> str | None:
    """The version ``alias`` points at, None when it is unset; blocking, so call it in a thread.

    Not ``ml.registry.alias_version``: that answers None for every MLflow error, which would make
    an outage look like a removed alias. Uses its own client instead of the process-wide tracking
    URI, and refuses a missing SQLite file, which MLflow would otherwise create as an empty registry.
    """
    from mlflow import MlflowClient  # noqa: PLC0415 - importing mlflow costs about a second
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - as above

    database = _sqlite_file(paths.tracking_uri)
    if database is not None and not database.is_file():
        raise RegistryUnavailableError(f"registry database {database} does not exist")
    try:
        client = MlflowClient(tracking_uri=paths.tracking_uri, registry_uri=paths.tracking_uri)
        return str(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException as exc:
        if exc.error_code in ALIAS_UNSET_CODES:
            return None
        raise RegistryUnavailableError(f"{exc.error_code}: {exc.message}") from exc
    except Exception as exc:  # connection, database and file errors alike: the registry cannot say
        raise RegistryUnavailableError(f"{type(exc).__name__}: {exc}") from exc


def _sqlite_file(uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(uri.removeprefix(prefix).split("?", 1)[0]) if uri.startswith(prefix) else None


def contract_change(served: ModelBundle, candidate: ModelBundle) -> str | None:
    """Why ``candidate`` cannot replace ``served`` in this process, or None when it can.

    The request body type (validation, OpenAPI) and the prediction log's columns were built from
    the served contract when the app started; another contract needs a new app, i.e. a restart.
    """
    old, new = served.loan_book.fingerprint(), candidate.loan_book.fingerprint()
    if old == new:
        return None
    return (
        f"version {candidate.version} has loan-book contract {new}, the served version {served.version} has {old}"
    )


# ----- one loaded model and the slot requests take it from ---------------------------------------
@dataclass(eq=False)
class LoadedModel:
    """A bundle ready to score: its service, its scorer, and how many requests are using them now."""

    service: ScoringService
    scorer: FeatureScorer
    leases: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def bundle(self) -> ModelBundle:
        return self.service.bundle

    def acquire(self) -> None:
        self.leases += 1
        self._idle.clear()

    def release(self) -> None:
        self.leases -= 1
        if self.leases == 0:
            self._idle.set()

    async def close(self) -> None:
        """Wait for the last request using it, score anything queued, then close the scorer.

        Call only once no new request can lease it (it is no longer the slot's current model).
        """
        while self.leases:
            await self._idle.wait()
        await self.service.stop()
        self.scorer.close()


async def start_model(
    bundle: ModelBundle, writer: PredictionLogWriter, settings: ApiSettings, proxies: ProxyLogging | None = None,
) -> LoadedModel:
    """A warmed-up, running service for ``bundle``; it answers nothing until installed in a slot.
    ``proxies``: what the log keeps of the contract's BISG proxies (the same for every version of it)."""
    from ml.scoring import FeatureScorer  # noqa: PLC0415 - keeps create_app's import light

    scorer = FeatureScorer(bundle, engine=settings.scoring_engine)
    service = ScoringService(
        bundle, scorer, writer, max_batch=settings.score_max_batch, max_wait_ms=settings.score_max_wait_ms,
        proxies=proxies,
    )
    try:
        await asyncio.to_thread(warm_up, scorer)
    except Exception:
        scorer.close()
        raise
    await service.start()
    return LoadedModel(service, scorer)


class ModelSlot:
    """The model requests are scored with: replaced in one step, the old one closed once drained."""

    def __init__(self) -> None:
        self._current: LoadedModel | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self.divert: Callable[[], LoadedModel | None] | None = None
        """Set by ``api.failover``: the model to lease instead of this one (the previous champion)."""
        self.in_failover: Callable[[], bool] | None = None
        """Set by ``api.failover``: handed to every service installed here (see ``ScoringService``)."""
        self.proxies: ProxyLogging | None = None
        """Set at start-up: what the log keeps of the served contract's proxies, for every version
        started into this slot (a version of another contract is refused until a restart)."""

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def bundle(self) -> ModelBundle | None:
        return None if self._current is None else self._current.bundle

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[ScoringService | None]:
        """The current service, kept open until the block ends (None while nothing is served).

        In failover with the ``previous_champion`` fallback, ``divert`` hands out the previous
        champion's service instead (``api.failover``), so every scoring route follows the flag.

        Reading the current model and taking the lease happen without an ``await`` between them,
        so a swap cannot slip in and close the model a request has just picked.
        """
        model = self._current
        if model is None:
            yield None
            return
        diverted = None if self.divert is None else self.divert()
        model = diverted or model
        model.acquire()
        try:
            yield model.service
        finally:
            model.release()

    def install(self, model: LoadedModel) -> asyncio.Task[None] | None:
        """Serve ``model`` from now on; the previous one is closed in the background once drained."""
        model.service.in_failover = self.in_failover
        old, self._current = self._current, model
        if old is None:
            return None
        task = asyncio.create_task(self._retire(old), name=f"retire model version {old.bundle.version}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return task

    async def close(self) -> None:
        """Serve nothing more; wait for every model's requests, then close them all (shutdown)."""
        current, self._current = self._current, None
        if current is not None:
            await self._retire(current)
        if self._retiring:
            await asyncio.gather(*self._retiring)

    @staticmethod
    async def _retire(model: LoadedModel) -> None:
        version = model.bundle.version
        try:
            await model.close()
        except Exception:  # closing must not take the new model or the shutdown down with it
            log.exception("closing model version %s failed", version)
        else:
            log.info("model version %s closed after its last request", version)


# ----- following the alias ------------------------------------------------------------------------
class ModelWatcher:
    """Keeps the slot on the version the alias points at: polls, checks on demand, swaps when safe."""

    def __init__(
        self,
        slot: ModelSlot,
        writer: PredictionLogWriter,
        settings: ApiSettings,
        paths: Paths,
        *,
        checked_at: datetime | None = None,
    ) -> None:
        self.slot = slot
        self.writer = writer
        self.settings = settings
        self.paths = paths
        """Public so an operator (or a test) can point the watcher at another registry."""
        self.alias = settings.model_alias
        self.checked_at = checked_at
        """When the registry last answered (the app's own load counts)."""
        self.alias_version = None if slot.bundle is None else slot.bundle.version
        """What the alias pointed at when the registry last answered."""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._unavailable_since: datetime | None = None
        self._refused: dict[str, str] = {}
        """Versions whose contract differs, with the reason: refused without loading them again."""
        self._reported: str | None = None
        """The problem last logged, so a persisting one is logged once, not at every poll."""

    async def start(self) -> None:
        """Poll every ``model_poll_seconds`` (not at all when it is 0: reload on demand only)."""
        if self.settings.model_poll_seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._poll(), name="model-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            try:
                await self.check()
            except Exception:  # the poller must outlive any surprise; the served model is untouched
                log.exception("model check failed; still serving version %s", self._served_version())

    async def check(self) -> ReloadResult:
        """Ask the registry now and swap if the alias moved to a servable version."""
        async with self._lock:  # one check at a time: a poll and an admin reload must not both swap
            return await self._check()

    async def _check(self) -> ReloadResult:
        now = datetime.now(UTC)
        served = self.slot.bundle
        if served is None:
            return self._result(ReloadOutcome.NOT_SERVING, None, "no model is served; restart to load one", now)
        try:
            version = await asyncio.to_thread(registry_alias_version, self.paths, self.alias)
        except RegistryUnavailableError as exc:
            if self._unavailable_since is None:
                self._unavailable_since = now
                log.warning(
                    "model registry %s unreachable, still serving version %s: %s",
                    redact_uri(self.paths.tracking_uri), served.version, exc,
                )
            return self._result(ReloadOutcome.REGISTRY_UNAVAILABLE, None, str(exc), now)
        if self._unavailable_since is not None:
            log.info("model registry reachable again after %.0f s", (now - self._unavailable_since).total_seconds())
            self._unavailable_since = None
        self.checked_at, self.alias_version = now, version

        if version is None:
            detail = f"alias {self.alias!r} points at no version"
            self._report(f"unset:{self.alias}", logging.WARNING, "%s; still serving version %s", detail, served.version)
            return self._result(ReloadOutcome.ALIAS_UNSET, None, detail, now)
        if version == served.version:
            self._reported = None
            return self._result(ReloadOutcome.UNCHANGED, version, f"version {version} is served", now)
        if version in self._refused:
            return self._result(ReloadOutcome.CONTRACT_CHANGED, version, self._refused[version], now)
        return await self._swap_to(served, version, now)

    async def _swap_to(self, served: ModelBundle, version: str, now: datetime) -> ReloadResult:
        from ml.registry import load_version  # noqa: PLC0415 - imports mlflow

        try:
            bundle = await asyncio.to_thread(load_version, self.paths, version, self.alias)
        except Exception as exc:  # whatever broke, the served model stays; retried at the next check
            detail = f"cannot load version {version}: {type(exc).__name__}: {exc}"
            self._report(f"load:{version}", logging.ERROR, "%s; still serving version %s", detail, served.version)
            return self._result(ReloadOutcome.LOAD_FAILED, version, detail, now)

        problem = contract_change(served, bundle)
        if problem is not None:
            detail = f"restart needed to serve alias {self.alias!r}: {problem}"
            self._refused[version] = detail
            log.error("%s; still serving version %s", detail, served.version)
            return self._result(ReloadOutcome.CONTRACT_CHANGED, version, detail, now)

        try:
            model = await start_model(bundle, self.writer, self.settings, self.slot.proxies)
        except Exception as exc:
            detail = f"cannot start version {version}: {type(exc).__name__}: {exc}"
            self._report(f"load:{version}", logging.ERROR, "%s; still serving version %s", detail, served.version)
            return self._result(ReloadOutcome.LOAD_FAILED, version, detail, now)
        retiring = self.slot.install(model)
        self._reported = None
        log.info(
            "now serving version %s (alias %r, run %s), was %s", version, self.alias, bundle.run_id, served.version
        )
        if retiring is not None:
            # Shielded: cancelling this check (shutdown) must not cut the drain short; close() awaits it.
            await asyncio.shield(retiring)
        return self._result(ReloadOutcome.SWAPPED, version, f"swapped from version {served.version}", now)

    def _report(self, key: str, level: int, message: str, *args: object) -> None:
        if key != self._reported:
            self._reported = key
            log.log(level, message, *args)

    def _served_version(self) -> str | None:
        bundle = self.slot.bundle
        return None if bundle is None else bundle.version

    def _result(self, outcome: ReloadOutcome, alias_version: str | None, detail: str, at: datetime) -> ReloadResult:
        return ReloadResult(outcome, self._served_version(), alias_version, detail, at)


async def reload_model(watcher: ModelWatcher | None) -> ReloadResult:
    """Check the registry now instead of at the next poll (what the admin endpoint calls).

    ``watcher`` is None when no model is served or the app is not running."""
    if watcher is None:
        detail = "no model is served (or the app is not running); restart to load one"
        return ReloadResult(ReloadOutcome.NOT_SERVING, None, None, detail, datetime.now(UTC))
    return await watcher.check()
