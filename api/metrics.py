"""``/metrics``: this process's counters, latency histogram and gauges, through ``prometheus_client``.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (not the library's global one),
so several apps in one process (the tests) count independently. Per process: each replica is
scraped on its own and Prometheus sums them.

What is exported (every name starts ``lendguard_``; the names and labels dashboards read):

* ``http_requests_total{endpoint,method,status}`` — every routed request (``endpoint`` is the
  route template, so the label set stays small);
* ``http_errors_total{kind}`` — answers with status >= 400, by kind (validation, unauthorized,
  forbidden, too_large, client, unavailable, internal);
* ``http_request_duration_seconds`` — latency histogram per endpoint, receipt to the last byte;
* ``decisions_total{decision,mode,model_version}`` and ``positive_decisions_total{mode}`` —
  counted from prediction-log rows once they are durable, so they agree with the log;
* gauges read at scrape time (:class:`ServingCollector`): ``model_info{name,version,alias}`` (1 for
  the version answering), ``model_loaded``, ``failover_active`` (0/1),
  ``failover_info{requested,applied}``, ``prediction_log_pending_rows``, ``process_start_time_seconds``;
* the garbage collector, whose full passes stop the event loop: ``gc_collections_total`` and
  ``gc_pause_seconds_total`` per generation, ``gc_pause_max_seconds`` (the longest pause seen) and
  ``gc_frozen_objects`` (the start-up heap exempted from full passes: ``api.server``).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from api.failover import FailoverFollower
    from ml.registry import ModelBundle

PREFIX = "lendguard"
CONTENT_TYPE = "text/plain; version=0.0.4"
"""Litestar appends ``; charset=utf-8`` to text types itself (spelled here, it came out twice)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds. Single-row scoring is a few milliseconds; the top buckets catch reloads and stalls."""
_ERROR_KINDS = {400: "validation", 401: "unauthorized", 403: "forbidden", 413: "too_large", 422: "validation",
                503: "unavailable"}

# Our exposition never had ``*_created`` series; without this each counter and histogram would add
# one more gauge series per label set. A process-wide switch of the library: this module is its only user.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


def error_kind(status: int) -> str | None:
    if status < 400:
        return None
    return _ERROR_KINDS.get(status, "client" if status < 500 else "internal")


# ----- the garbage collector ----------------------------------------------------------------------
class GcPauses:
    """Time spent in each generation's collections, from ``gc.callbacks`` (one per process)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.seconds[info["generation"]] += pause
        self.longest = max(self.longest, pause)

    def collect(self) -> Iterator[Metric]:
        collections = CounterMetricFamily(f"{PREFIX}_gc_collections", "Garbage collections, by generation.",
                                          labels=["generation"])
        for generation, stats in enumerate(gc.get_stats()):
            collections.add_metric([str(generation)], stats["collections"])
        yield collections
        pauses = CounterMetricFamily(
            f"{PREFIX}_gc_pause_seconds",
            "Time the process was stopped in garbage collections (since metrics began), by generation.",
            labels=["generation"])
        for generation, seconds in enumerate(self.seconds):
            pauses.add_metric([str(generation)], seconds)
        yield pauses
        yield GaugeMetricFamily(f"{PREFIX}_gc_pause_max_seconds", "The longest garbage-collection pause seen.",
                                value=self.longest)
        yield GaugeMetricFamily(
            f"{PREFIX}_gc_frozen_objects",
            "Objects exempt from full collections (the start-up heap, frozen once it is loaded).",
            value=gc.get_freeze_count())


def gc_pauses() -> GcPauses:
    """The process's pause recorder, installed in ``gc.callbacks`` on first use."""
    for callback in gc.callbacks:
        if isinstance(callback, GcPauses):
            return callback
    recorder = GcPauses()
    gc.callbacks.append(recorder)
    return recorder


# ----- gauges read at scrape time -----------------------------------------------------------------
@dataclass(frozen=True)
class ServingGauges:
    """What the app serves now (see ``api.http.AppState.gauges``)."""

    bundle: ModelBundle | None
    alias: str
    failover: FailoverFollower | None
    pending_rows: int


class ServingCollector:
    """The custom collector: model, failover and log gauges, the start time and the GC, read per scrape."""

    def __init__(self, gauges: Callable[[], ServingGauges] | None, started: float, pauses: GcPauses) -> None:
        self.gauges = gauges
        self.started = started
        self.pauses = pauses

    def collect(self) -> Iterator[Metric]:
        if self.gauges is not None:
            yield from _serving(self.gauges())
        yield GaugeMetricFamily(f"{PREFIX}_process_start_time_seconds", "When this API process started (Unix time).",
                                value=self.started)
        yield from self.pauses.collect()


def _serving(now: ServingGauges) -> Iterator[Metric]:
    info = GaugeMetricFamily(f"{PREFIX}_model_info", "The model version answering requests (value 1).",
                             labels=["name", "version", "alias"])
    if now.bundle is not None:
        info.add_metric([now.bundle.name, now.bundle.version, now.alias], 1)
    yield info
    yield GaugeMetricFamily(f"{PREFIX}_model_loaded", "1 when a model is loaded and answering.",
                            value=int(now.bundle is not None))
    follower = now.failover
    active = follower is not None and follower.active
    yield GaugeMetricFamily(f"{PREFIX}_failover_active", "1 while the failover flag is set (the fallback applies).",
                            value=int(active))
    failover = GaugeMetricFamily(f"{PREFIX}_failover_info",
                                 "While failover is set: the fallback asked for and the one applied.",
                                 labels=["requested", "applied"])
    if follower is not None and active:
        failover.add_metric([str(follower.flag.fallback), str(follower.fallback)], 1)
    yield failover
    yield GaugeMetricFamily(f"{PREFIX}_prediction_log_pending_rows", "Log rows handed over and not yet durable.",
                            value=now.pending_rows)


# ----- one app's metrics --------------------------------------------------------------------------
class Metrics:
    """One app's registry: request counters and latency (``api.http.count_requests``), decisions
    (prediction-log listener) and the :class:`ServingCollector`."""

    def __init__(self, gauges: Callable[[], ServingGauges] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.started = time.time()
        self.gc = gc_pauses()
        self.requests = Counter(f"{PREFIX}_http_requests", "Requests answered, by route, method and status.",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.errors = Counter(f"{PREFIX}_http_errors", "Requests answered with status >= 400, by kind.",
                              ["kind"], registry=self.registry)
        self.latency = Histogram(f"{PREFIX}_http_request_duration_seconds",
                                 "Time from receipt to the last byte of the answer.", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.decisions = Counter(f"{PREFIX}_decisions", "Decisions made (durable in the prediction log).",
                                 ["decision", "mode", "model_version"], registry=self.registry)
        self.positives = Counter(f"{PREFIX}_positive_decisions",
                                 "Applications sent to manual review (the positive class), by mode.",
                                 ["mode"], registry=self.registry)
        self.registry.register(ServingCollector(gauges, self.started, self.gc))

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        kind = error_kind(status)
        if kind is not None:
            self.errors.labels(kind).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_row(self, row: Mapping[str, Any]) -> None:
        """Prediction-log listener: count the decision a durable row records."""
        decision = row.get("decision")
        if decision is None:
            return
        mode = str(row.get("mode") or "normal")
        self.decisions.labels(str(decision), mode, str(row.get("model_version"))).inc()
        if decision == "manual_review":
            self.positives.labels(mode).inc()

    def render(self) -> str:
        """The text exposition format (0.0.4)."""
        return generate_latest(self.registry).decode("utf-8")
