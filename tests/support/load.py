"""Background clients that keep a server busy while a test kills, builds or compacts under it."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ClientLoad:
    """Threads each running :meth:`client` until stopped; the request ids answered 200 and every
    outcome counted (status code, or the transport error's name). Subclasses say what a client sends."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok_ids: list[str] = field(default_factory=list)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    """Each transport error as it happened: seconds since the start, its type and message."""
    started: float = field(default_factory=time.monotonic)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int) -> ClientLoad:
        self.threads = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(clients)]
        for thread in self.threads:
            thread.start()
        return self

    def finish(self, timeout: float = 120) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=timeout)

    def wait_for(self, answers: int, timeout: float = 180) -> None:
        """Until ``answers`` requests were answered 200 (a deadline, not a fixed wait)."""
        deadline = time.monotonic() + timeout
        while len(self.ok_ids) < answers:
            assert time.monotonic() < deadline, f"only {len(self.ok_ids)} answers: {self.statuses}"
            time.sleep(0.02)

    def record(self, outcome: str, request_id: str | None = None) -> None:
        with self.lock:
            self.statuses[outcome] += 1
            if request_id is not None:
                self.ok_ids.append(request_id)

    def record_error(self, error: Exception) -> None:
        """A transport error, counted by type and kept with its message and time for the failure report."""
        self.record(type(error).__name__)
        with self.lock:
            self.errors.append(f"{time.monotonic() - self.started:.2f}s {type(error).__name__}: {error}")

    def client(self, number: int) -> None:
        raise NotImplementedError
