"""``GET /metrics``: the Prometheus text exposition format (0.0.4), written by hand.

A handful of counters and one histogram do not justify a dependency: they are plain dicts updated
on the event loop (one thread, no locks needed) and rendered at scrape time. Per process: each
replica is scraped on its own and Prometheus sums them.

What is exported (every name starts ``lendguard_``):

* ``http_requests_total{endpoint,method,status}`` — every routed request (``endpoint`` is the
  route template, so the label set stays small);
* ``http_errors_total{kind}`` — answers with status >= 400, by kind (validation, unauthorized,
  forbidden, too_large, client, unavailable, internal);
* ``http_request_duration_seconds`` — latency histogram per endpoint, receipt to the last byte;
* ``decisions_total{decision,mode,model_version}`` and ``positive_decisions_total{mode}`` —
  counted from prediction-log rows once they are durable, so they agree with the log;
* gauges read at scrape time: ``model_info{name,version,alias}`` (1 for the version answering),
  ``failover_active`` (0/1), ``failover_info{requested,applied}``, ``prediction_log_pending_rows``,
  ``process_start_time_seconds``;
* the garbage collector, whose full passes stop the event loop: ``gc_collections_total`` and
  ``gc_pause_seconds_total`` per generation, ``gc_pause_max_seconds`` (the longest pause seen) and
  ``gc_frozen_objects`` (the start-up heap exempted from full passes: ``api.server``).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from litestar import Response, get

from api.failover import follower_of

if TYPE_CHECKING:
    from litestar.datastructures import State
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
METRICS_STATE_KEY = "metrics"
CONTENT_TYPE = "text/plain; version=0.0.4"
"""Litestar appends ``; charset=utf-8`` to text types itself (spelled here, it came out twice)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds. Single-row scoring is a few milliseconds; the top buckets catch reloads and stalls."""
_ERROR_KINDS = {400: "validation", 401: "unauthorized", 403: "forbidden", 413: "too_large", 422: "validation",
                503: "unavailable"}


def error_kind(status: int) -> str | None:
    if status < 400:
        return None
    return _ERROR_KINDS.get(status, "client" if status < 500 else "internal")


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

    def samples(self) -> list[str]:
        lines: list[str] = []
        stats = gc.get_stats()
        _family(lines, "gc_collections_total", "counter", "Garbage collections, by generation.",
                [({"generation": str(g)}, s["collections"]) for g, s in enumerate(stats)])
        _family(lines, "gc_pause_seconds_total", "counter",
                "Time the process was stopped in garbage collections (since metrics began), by generation.",
                [({"generation": str(g)}, seconds) for g, seconds in enumerate(self.seconds)])
        _family(lines, "gc_pause_max_seconds", "gauge", "The longest garbage-collection pause seen.",
                [({}, self.longest)])
        _family(lines, "gc_frozen_objects", "gauge",
                "Objects exempt from full collections (the start-up heap, frozen once it is loaded).",
                [({}, gc.get_freeze_count())])
        return lines


def gc_pauses() -> GcPauses:
    """The process's pause recorder, installed in ``gc.callbacks`` on first use."""
    for callback in gc.callbacks:
        if isinstance(callback, GcPauses):
            return callback
    recorder = GcPauses()
    gc.callbacks.append(recorder)
    return recorder


class Metrics:
    """This process's counters and latency histogram."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.errors: Counter[str] = Counter()
        self.decisions: Counter[tuple[str, str, str]] = Counter()
        self.latency: dict[str, list[float]] = {}
        """Per endpoint: one cumulative count per bucket, then +Inf, then the sum of seconds."""
        self.started = time.time()
        self.gc = gc_pauses()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, method, str(status))] += 1
        kind = error_kind(status)
        if kind is not None:
            self.errors[kind] += 1
        series = self.latency.setdefault(endpoint, [0.0] * (len(LATENCY_BUCKETS) + 2))
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                series[index] += 1
        series[-2] += 1
        series[-1] += seconds

    def observe_row(self, row: Mapping[str, Any]) -> None:
        """Prediction-log listener: count the decision a durable row records."""
        decision = row.get("decision")
        if decision is not None:
            self.decisions[(str(decision), str(row.get("mode") or "normal"), str(row.get("model_version")))] += 1

    def render(self, state: State | None = None) -> str:
        lines: list[str] = []
        _family(lines, "http_requests_total", "counter", "Requests answered, by route, method and status.",
                [({"endpoint": e, "method": m, "status": s}, n) for (e, m, s), n in sorted(self.requests.items())])
        _family(lines, "http_errors_total", "counter", "Requests answered with status >= 400, by kind.",
                [({"kind": k}, n) for k, n in sorted(self.errors.items())])
        lines += _histogram(self.latency)
        _family(lines, "decisions_total", "counter", "Decisions made (durable in the prediction log).",
                [({"decision": d, "mode": m, "model_version": v}, n)
                 for (d, m, v), n in sorted(self.decisions.items())])
        positives: Counter[str] = Counter()
        for (decision, mode, _), count in self.decisions.items():
            if decision == "manual_review":
                positives[mode] += count
        _family(lines, "positive_decisions_total", "counter",
                "Applications sent to manual review (the positive class), by mode.",
                [({"mode": m}, n) for m, n in sorted(positives.items())])
        if state is not None:
            lines += _gauges(state)
        _family(lines, "process_start_time_seconds", "gauge", "When this API process started (Unix time).",
                [({}, self.started)])
        lines += self.gc.samples()
        return "\n".join(lines) + "\n"


def _gauges(state: State) -> list[str]:
    from api.app import MODELS_STATE_KEY  # noqa: PLC0415 - api.app imports this module

    lines: list[str] = []
    slot = state.get(MODELS_STATE_KEY)
    bundle = None if slot is None else slot.bundle
    serving = state.get("serving")
    alias = getattr(serving, "alias", "") or ""
    _family(lines, "model_info", "gauge", "The model version answering requests (value 1).",
            [] if bundle is None else [({"name": bundle.name, "version": bundle.version, "alias": alias}, 1)])
    _family(lines, "model_loaded", "gauge", "1 when a model is loaded and answering.", [({}, int(bundle is not None))])
    follower = follower_of(state)
    active = follower is not None and follower.active
    _family(lines, "failover_active", "gauge", "1 while the failover flag is set (the fallback applies).",
            [({}, int(active))])
    _family(lines, "failover_info", "gauge", "While failover is set: the fallback asked for and the one applied.",
            [({"requested": follower.flag.fallback, "applied": str(follower.fallback)}, 1)]
            if follower is not None and active else [])
    writer = state.get("log_writer")
    pending = getattr(writer, "pending", 0) if writer is not None else 0
    _family(lines, "prediction_log_pending_rows", "gauge", "Log rows handed over and not yet durable.",
            [({}, pending)])
    return lines


def _family(lines: list[str], name: str, kind: str, text: str, samples: list[tuple[dict[str, str], float]]) -> None:
    lines.append(f"# HELP lendguard_{name} {text}")
    lines.append(f"# TYPE lendguard_{name} {kind}")
    lines.extend(f"lendguard_{name}{_labels(labels)} {_number(value)}" for labels, value in samples)


def _histogram(latency: dict[str, list[float]]) -> list[str]:
    name = "lendguard_http_request_duration_seconds"
    lines = [f"# HELP {name} Time from receipt to the last byte of the answer.", f"# TYPE {name} histogram"]
    for endpoint, series in sorted(latency.items()):
        for bound, count in zip(LATENCY_BUCKETS, series, strict=False):
            lines.append(f"{name}_bucket{_labels({'endpoint': endpoint, 'le': _number(bound)})} {_number(count)}")
        lines.append(f"{name}_bucket{_labels({'endpoint': endpoint, 'le': '+Inf'})} {_number(series[-2])}")
        lines.append(f"{name}_sum{_labels({'endpoint': endpoint})} {_number(series[-1])}")
        lines.append(f"{name}_count{_labels({'endpoint': endpoint})} {_number(series[-2])}")
    return lines


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + ",".join(escaped) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ----- wiring -------------------------------------------------------------------------------------
def metrics_of(state: State) -> Metrics | None:
    metrics = state.get(METRICS_STATE_KEY)
    return metrics if isinstance(metrics, Metrics) else None


def count_requests(app: ASGIApp) -> ASGIApp:
    """Middleware: one observation per routed HTTP request, with its status and latency."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        metrics = metrics_of(scope["litestar_app"].state) if scope["type"] == "http" else None
        if metrics is None:
            await app(scope, receive, send)
            return
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


@get(METRICS_PATH, sync_to_thread=False, media_type=CONTENT_TYPE, summary="Prometheus metrics (text exposition format)",
     description="Requests, errors, decisions, latency, the model version and the failover mode of this process.")
def metrics_endpoint(state: State) -> Response[str]:
    metrics = metrics_of(state) or Metrics()
    return Response(metrics.render(state), media_type=CONTENT_TYPE)
