"""Micro-batching: many concurrent requests, one call for all of them.

Scoring one row costs about as much as scoring sixty (DuckDB query and scikit-learn overhead
dominate), and fsyncing one log file costs the same for one row or five hundred. So both the
scorer and the log writer put their work through a :class:`MicroBatcher`: requests submit items
and wait; one background task takes everything pending (up to ``max_batch``, after waiting at
most ``max_wait_ms`` for company), processes the group in a worker thread and hands each request
its own result. With ``max_wait_ms=0`` the batching is purely opportunistic: an idle service
answers at once, and a busy one groups whatever queued while the previous group ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosedError(RuntimeError):
    """An item was submitted to a batcher that is not running."""


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    enqueued: float


class MicroBatcher(Generic[T, R]):
    """Runs ``process`` on groups of submitted items in a worker thread.

    ``process`` gets a list of items and returns one entry per item, in order: a result, or an
    exception instance for that item alone. If it raises, every item of the group gets the error.
    One instance per event loop; ``start`` before the first submit, ``stop`` to drain.
    """

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        max_batch: int,
        max_wait_ms: float = 0.0,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.process = process
        self.max_batch = max_batch
        self.max_wait = max(max_wait_ms, 0.0) / 1000.0
        self.name = name
        self._pending: list[_Pending[T, R]] = []
        # Since Python 3.10 an Event binds to the loop that first waits on it, not at creation.
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0
        self.items = 0
        self._in_process = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._stopping

    @property
    def pending(self) -> int:
        """Items submitted and not yet answered (queued, or in the group being processed)."""
        return len(self._pending) + self._in_process

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"{self.name} is already started")
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Refuse new items, process every pending one, then end the background task."""
        if self._task is None or self._stopping:
            return
        self._stopping = True
        self._wakeup.set()
        self._full.set()
        await self._task

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (or its exception)."""
        if not self.running:
            raise BatcherClosedError(f"{self.name} is not running")
        loop = asyncio.get_running_loop()
        pending: _Pending[T, R] = _Pending(item, loop.create_future(), loop.time())
        self._pending.append(pending)
        self._wakeup.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        # A cancelled request must not cancel the shared group: shield the future it waits on.
        return await asyncio.shield(pending.future)

    # ----- the background task ---------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            # Normally nothing is left; after an unexpected error no waiter may hang forever.
            self._stopping = True
            left, self._pending = self._pending, []
            for pending in left:
                _fail(pending.future, BatcherClosedError(f"{self.name} stopped"))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                continue
            wait = self._pending[0].enqueued + self.max_wait - loop.time()
            if wait > 0 and len(self._pending) < self.max_batch and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait)
            group = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            if len(self._pending) < self.max_batch and not self._stopping:
                self._full.clear()
            await self._process(group)

    async def _process(self, group: list[_Pending[T, R]]) -> None:
        self._in_process = len(group)
        try:
            results = await asyncio.to_thread(self.process, [p.item for p in group])
            if len(results) != len(group):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(group)} items")
        except Exception as exc:  # any failure is every item's failure; the waiters decide what it means
            log.exception("%s: a group of %d items failed", self.name, len(group))
            for pending in group:
                _fail(pending.future, exc)
            return
        finally:
            self._in_process = 0
        self.batches += 1
        self.items += len(group)
        for pending, result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                _fail(pending.future, result)
            elif not pending.future.done():
                pending.future.set_result(result)


def _fail(future: asyncio.Future[R], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # mark retrieved: the request that awaited it may have gone away
