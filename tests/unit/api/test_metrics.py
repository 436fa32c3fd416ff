"""/metrics text: the Prometheus exposition format, counts and a cumulative histogram."""

from __future__ import annotations

import gc
import re
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.utils import floatToGoString

from api.metrics import LATENCY_BUCKETS, Metrics, ServingGauges, error_kind

_SAMPLE = re.compile(r'^(lendguard_[a-z_]+)(\{[^}]*\})? (\S+)$')


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, every non-comment line parsed (a line that does not parse fails)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match, f"not exposition format: {line!r}"
        found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def test_requests_errors_and_latency_are_counted() -> None:
    metrics = Metrics()
    metrics.observe_request("/v1/score", "POST", 200, 0.004)
    metrics.observe_request("/v1/score", "POST", 200, 0.030)
    metrics.observe_request("/v1/score", "POST", 400, 0.002)
    metrics.observe_request("/v1/score", "POST", 401, 0.0005)
    metrics.observe_request("/v1/admin/reload", "POST", 503, 20.0)
    got = samples(metrics.render())
    assert got['lendguard_http_requests_total{endpoint="/v1/score",method="POST",status="200"}'] == 2
    assert got['lendguard_http_requests_total{endpoint="/v1/score",method="POST",status="400"}'] == 1
    assert got['lendguard_http_errors_total{kind="validation"}'] == 1
    assert got['lendguard_http_errors_total{kind="unauthorized"}'] == 1
    assert got['lendguard_http_errors_total{kind="unavailable"}'] == 1
    bucket = 'lendguard_http_request_duration_seconds_bucket{{endpoint="/v1/score",le="{}"}}'
    assert got[bucket.format("0.001")] == 1
    assert got[bucket.format("0.005")] == 3
    assert got[bucket.format("0.025")] == 3
    assert got[bucket.format("0.05")] == 4
    assert got[bucket.format("+Inf")] == 4
    assert got['lendguard_http_request_duration_seconds_count{endpoint="/v1/score"}'] == 4
    assert got['lendguard_http_request_duration_seconds_sum{endpoint="/v1/score"}'] == pytest.approx(0.0365)
    slow = 'lendguard_http_request_duration_seconds_bucket{{endpoint="/v1/admin/reload",le="{}"}}'
    assert got[slow.format(floatToGoString(LATENCY_BUCKETS[-1]))] == 0
    assert got[slow.format("+Inf")] == 1


def test_buckets_are_cumulative() -> None:
    metrics = Metrics()
    for seconds in (0.0001, 0.003, 0.003, 0.2, 3.0, 99.0):
        metrics.observe_request("/x", "GET", 200, seconds)
    got = samples(metrics.render())
    counts = [got[f'lendguard_http_request_duration_seconds_bucket{{endpoint="/x",le="{floatToGoString(b)}"}}']
              for b in LATENCY_BUCKETS]
    assert counts == sorted(counts)
    assert counts[-1] == 5
    assert got['lendguard_http_request_duration_seconds_bucket{endpoint="/x",le="+Inf"}'] == 6


def test_decisions_are_counted_from_log_rows_by_mode() -> None:
    metrics = Metrics()
    for decision, mode in (("manual_review", "normal"), ("auto_approve", "normal"), ("manual_review", "failover"),
                           ("manual_review", "failover")):
        metrics.observe_row({"decision": decision, "mode": mode, "model_version": "3", "status_code": 200})
    metrics.observe_row({"decision": None, "mode": "normal", "status_code": 400})
    got = samples(metrics.render())
    assert got['lendguard_decisions_total{decision="manual_review",mode="failover",model_version="3"}'] == 2
    assert got['lendguard_decisions_total{decision="auto_approve",mode="normal",model_version="3"}'] == 1
    assert got['lendguard_positive_decisions_total{mode="normal"}'] == 1
    assert got['lendguard_positive_decisions_total{mode="failover"}'] == 2
    assert sum(v for k, v in got.items() if k.startswith("lendguard_decisions_total")) == 4


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.observe_request('/a"b\\c\nd', "GET", 200, 0.001)
    text = metrics.render()
    assert 'endpoint="/a\\"b\\\\c\\nd"' in text
    assert len(samples(text)) > 0


def test_every_family_has_help_and_type() -> None:
    text = Metrics().render()
    names = re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE)
    assert {n for n, _ in names} >= {
        "lendguard_http_requests_total", "lendguard_http_errors_total", "lendguard_http_request_duration_seconds",
        "lendguard_decisions_total", "lendguard_positive_decisions_total", "lendguard_process_start_time_seconds"}
    assert all(f"# HELP {n} " in text for n, _ in names)


def test_garbage_collections_and_their_pauses_are_reported() -> None:
    metrics = Metrics()
    assert Metrics().gc is metrics.gc, "one recorder per process, however many apps"
    before = samples(metrics.render())
    cycles = [[] for _ in range(10_000)]
    for cycle in cycles:
        cycle.append(cycle)  # garbage only the cycle collector can free
    del cycles
    gc.collect()
    got = samples(metrics.render())
    full = {name: f'lendguard_gc_{name}{{generation="2"}}' for name in ("collections_total", "pause_seconds_total")}
    assert got[full["collections_total"]] == before[full["collections_total"]] + 1
    pause = got[full["pause_seconds_total"]] - before[full["pause_seconds_total"]]
    assert pause > 0
    assert got["lendguard_gc_pause_max_seconds"] >= pause
    assert got["lendguard_gc_frozen_objects"] == gc.get_freeze_count()


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, None), (204, None), (400, "validation"), (401, "unauthorized"), (403, "forbidden"), (404, "client"),
     (413, "too_large"), (500, "internal"), (503, "unavailable")],
)
def test_error_kinds(status: int, kind: str | None) -> None:
    assert error_kind(status) == kind


def test_each_app_counts_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("/v1/score", "POST", 200, 0.004)
    first.observe_row({"decision": "manual_review", "mode": "normal", "model_version": "3"})
    sample = 'lendguard_http_requests_total{endpoint="/v1/score",method="POST",status="200"}'
    assert samples(first.render())[sample] == 1
    assert sample not in samples(second.render())
    assert 'lendguard_decisions_total{decision="manual_review",mode="normal",model_version="3"}' not in samples(
        second.render())
    assert "lendguard_http_requests_total" not in generate_latest(REGISTRY).decode(), "never the global registry"


def test_the_serving_gauges_are_read_at_scrape_time() -> None:
    now = {"gauges": ServingGauges(bundle=None, alias="champion", failover=None, pending_rows=0)}
    metrics = Metrics(lambda: now["gauges"])
    got = samples(metrics.render())
    assert got["lendguard_model_loaded"] == 0
    assert not any(name.startswith("lendguard_model_info") for name in got)
    bundle = SimpleNamespace(name="lendguard", version="7")
    now["gauges"] = ServingGauges(bundle=bundle, alias="champion", failover=None, pending_rows=3)  # type: ignore[arg-type]
    got = samples(metrics.render())
    assert got["lendguard_model_loaded"] == 1
    assert got['lendguard_model_info{alias="champion",name="lendguard",version="7"}'] == 1
    assert got["lendguard_failover_active"] == 0
    assert got["lendguard_prediction_log_pending_rows"] == 3
    assert got["lendguard_process_start_time_seconds"] == metrics.started
