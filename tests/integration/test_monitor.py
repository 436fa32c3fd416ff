"""`lendguard monitor` end to end on a trained deployment: a logged shift in the model's output
raises alerts, notifies the local webhook receiver once, switches the API to failover, and only
`lendguard failover clear` ends it, for good: more traffic, late and back-dated, re-raises nothing
(issue #14); a stable log raises no critical alert. The marts' intervals are checked against SciPy
on the built warehouse, and their levels against the alpha-spending closed form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from lendguard import cli
from lendguard.status import collect_status
from ml import registry
from ml.scoring import FeatureScorer
from tests.support.deployment import copy_deployment
from tests.support.monitoring import Receiver, query, use
from warehouse import datasets, landing
from warehouse.build import current_loan_book
from warehouse.failover import read_failover
from warehouse.paths import Paths, get_paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.settings import get_settings
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

REQUESTS = 4_000
SHIFT_FROM = 1_000
SHIFTED_GROUPS = ("White", "Hispanic")


def land_log(
    paths: Paths, source: Paths, *, scenario: str = "stable", shift: bool = False, seed: int = 5,
    requests: int = REQUESTS, start: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
) -> pd.DataFrame:
    """Score simulated traffic with the champion and land it as the API would log it (received now,
    with the applications' own timestamps from ``start`` on).

    With ``shift``, from request SHIFT_FROM on, half the automatic approvals of SHIFTED_GROUPS are
    sent to manual review instead: the model's output moves while its inputs do not.
    """
    bundle = registry.load_bundle(source, "champion")
    loan_book = current_loan_book(paths)
    traffic = simulate_traffic(scenario, requests, seed=seed, start=start)
    scorer = FeatureScorer(bundle, "sklearn")  # the reference scorer (the SQL one is held to it in ml tests)
    try:
        probability = scorer.probabilities(traffic)
    finally:
        scorer.close()
    group = traffic.column(loan_book.group_column).to_pylist()
    threshold = np.array([bundle.threshold_for(g) for g in group])
    flagged = probability >= threshold
    if shift:
        rng = np.random.default_rng(seed)
        moved = (np.arange(requests) >= SHIFT_FROM) & np.isin(group, SHIFTED_GROUPS) & (rng.random(requests) < 0.5)
        flagged |= moved
    occurred = pd.to_datetime(traffic.column("occurred_at").to_pandas()).dt.tz_convert(None)
    received = datetime.now(UTC).replace(tzinfo=None)
    frame = pd.DataFrame({
        "request_id": [f"{scenario}-{seed}-{i:06d}" for i in range(requests)],
        "application_id": traffic.column("loan_id").to_pylist(),
        "received_at": [received + timedelta(milliseconds=i) for i in range(requests)],
        "occurred_at": occurred,
        "endpoint": "/v1/score",
        "status_code": 200,
        "error": None,
        "raw_body": None,
        "model_name": bundle.name,
        "model_version": bundle.version,
        "threshold": threshold,
        "probability": probability,
        "decision": np.where(flagged, "manual_review", "auto_approve"),
        "mode": "normal",
        "latency_ms": 4.0 + (np.arange(requests) % 10),
        "caller": np.where(np.arange(requests) % 4 == 0, "lender-b", "lender-a"),  # two API keys
    })
    frame[loan_book.group_column] = group
    for feature in (*loan_book.numeric_features, *loan_book.categorical_features):
        frame[feature.name] = traffic.column(feature.name).to_pylist()
    schema = prediction_log_schema(loan_book)
    for name in schema.names:  # columns other features log (batch ids, reason codes, ...) stay empty
        if name not in frame.columns:
            frame[name] = None
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, writer_id="pytest-monitor").write(table)
    return frame


WITHOUT_HISTORY = ("prediction_log", "outcomes", "monitor_runs", "alert_notifications", "failover_events",
                   "failover.json", "*.duckdb", "*.duckdb.wal")
"""Left out of each test's copy of the shared deployment: it starts with no traffic or monitoring history
and without the warehouse file (whose views read the shared landing zone; the first build remakes it)."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture(autouse=True)
def _fresh_paths() -> Iterator[None]:
    yield
    get_paths.cache_clear()
    get_settings.cache_clear()


def monitored_shift(source: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Paths:
    """A copy of ``source`` with a shifted output logged and monitored once (critical: failover set)."""
    paths = copy_deployment(source, tmp_path, *WITHOUT_HISTORY)
    land_log(paths, source, shift=True)
    use(monkeypatch, paths, receiver)
    assert cli.main(["monitor"]) == cli.EXIT_CRITICAL
    return paths


def test_a_shifted_output_alerts_notifies_once_and_fails_over_until_a_person_clears_it(
    trained_deployment: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver,
) -> None:
    paths = monitored_shift(trained_deployment, tmp_path, monkeypatch, receiver)

    alerts = query(paths, "select * from mon_alerts")
    rate_alerts = alerts[alerts.check_name == "output_positive_rate"]
    assert set(rate_alerts.subject) & set(SHIFTED_GROUPS), alerts[["check_name", "subject", "window_kind"]]
    assert (rate_alerts.severity == "critical").all()
    assert alerts.alert_id.is_unique

    [message] = receiver.bodies
    assert message["kind"] == "alert"
    assert {a["alert_id"] for a in message["alerts"]} == set(alerts.alert_id)
    assert "failover clear" in message["text"]

    state = read_failover(paths)
    assert state.active
    status = collect_status(paths)
    assert status["failover"]["active"]
    assert status["failover"]["set_by"] == "lendguard monitor"
    assert status["alerts"]["open"] == len(alerts)
    assert status["alerts"]["critical"] >= len(rate_alerts)
    assert status["alerts"]["last_monitor_run"]["status"] == "critical"
    assert state.set_by == "lendguard monitor"
    assert set(state.alert_ids) == set(alerts.alert_id[alerts.severity == "critical"])

    # the same alerts are not notified again, and do not set failover again once a person cleared it
    assert cli.main(["failover", "clear", "--by", "Dana Reviewer", "--note", "shift explained: test"]) == 0
    assert not read_failover(paths).active
    assert cli.main(["monitor"]) == 0
    assert len(receiver.bodies) == 1
    assert not read_failover(paths).active

    # each run lands its record after the build it published: the landing zone has both
    runs = datasets.query_landed(paths, datasets.MONITOR_RUNS, "select status from landed order by started_at")
    assert runs == [("critical",), ("alerts",)]
    assert list(query(paths, "select status from stg_landing__monitor_runs").status) == ["critical"]
    notified = query(paths, "select * from stg_landing__alert_notifications")
    assert set(notified.alert_id) == set(alerts.alert_id)
    assert notified.delivered.all()
    events = query(paths, "select action, actor from stg_landing__failover_events order by occurred_at")
    assert list(events.itertuples(index=False, name=None)) == [("set", "lendguard monitor"), ("clear", "Dana Reviewer")]

    rates = query(paths, "select * from mon_positive_rates where tested")
    assert len(rates) > 10
    _assert_scipy_intervals_at_fixed_levels(rates)


def _assert_scipy_intervals_at_fixed_levels(rates: pd.DataFrame) -> None:
    """The intervals are SciPy's: the reference rate's Clopper–Pearson interval, then exact binomial
    quantiles at its ends, all at alpha / m (Bonferroni over the window's groups)."""
    a, x, m = rates.alpha_per_test, rates.reference_positives, rates.reference_n
    p_low = np.where(x == 0, 0.0, stats.beta.ppf(a / 2, x, m - x + 1))
    p_high = np.where(x == m, 1.0, stats.beta.ppf(1 - a / 2, x + 1, m - x))
    np.testing.assert_allclose(rates.expected_rate_low, p_low, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rates.expected_rate_high, p_high, rtol=0, atol=1e-9)
    low, high = stats.binom.ppf(a / 2, rates.n, p_low), stats.binom.ppf(1 - a / 2, rates.n, p_high)
    np.testing.assert_allclose(rates.positives_low, low, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rates.positives_high, high, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rates.ci_high, high / rates.n, rtol=0, atol=1e-9)
    # Each window's level is fixed by its index (alpha-spending over count windows, Bonferroni over the
    # window's own groups): the closed form alpha ((k + 1)^-s - (k + 2)^-s), which telescopes, so the
    # first K count windows spend alpha (1 - (K + 1)^-s) < alpha together.
    window = ["model_version", "window_kind", "window_index", "window_start"]
    assert (rates.groupby(window, dropna=False).tests_in_family.transform("size") == rates.tests_in_family).all()
    np.testing.assert_allclose(rates.alpha_per_test * rates.tests_in_family, rates.window_alpha, rtol=1e-12)
    counted = rates[rates.window_kind == "count"].groupby("window_index").window_alpha.first().sort_index()
    k = counted.index.to_numpy(dtype=float)
    np.testing.assert_allclose(counted, 0.01 * ((k + 1) ** -0.5 - (k + 2) ** -0.5), rtol=1e-12)
    windows = np.arange(counted.index.max() + 1, dtype=float)
    spent = np.cumsum(0.01 * ((windows + 1) ** -0.5 - (windows + 2) ** -0.5))
    np.testing.assert_allclose(spent, 0.01 * (1 - (windows + 2) ** -0.5), rtol=1e-12)
    assert (spent < 0.01).all()
    assert (rates[rates.window_kind == "deployment"].window_alpha == 0.01).all()


def test_a_persons_clear_stands_through_more_traffic_late_and_back_dated(
    trained_deployment: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver,
) -> None:
    paths = monitored_shift(trained_deployment, tmp_path, monkeypatch, receiver)
    raised = query(paths, "select alert_id, window_kind from mon_alerts")
    assert (raised.window_kind == "count").any()
    assert cli.main(["failover", "clear", "--by", "Dana Reviewer", "--note", "shift explained: test"]) == 0

    # More stable traffic whose own timestamps overlap the first batch's, and one request dated a year
    # before everything: received after the rows already numbered, they join the open count window.
    land_log(paths, trained_deployment, seed=31)
    land_log(paths, trained_deployment, seed=32, requests=1, start=datetime(2025, 1, 5, 8, 0, tzinfo=UTC))
    assert cli.main(["monitor"]) == 0
    assert not read_failover(paths).active

    notified_first = {a["alert_id"] for a in receiver.bodies[0]["alerts"]}
    for later in receiver.bodies[1:]:
        assert not {a["alert_id"] for a in later["alerts"]} & notified_first, "an alert was notified twice"
        assert not any(a["severity"] == "critical" for a in later["alerts"])
    notified = query(paths, "select alert_id from stg_landing__alert_notifications")
    assert notified.alert_id.is_unique
    # Every breach raised first keeps its id: still open, or resolved in a window still open, never renamed.
    history = query(paths, "select alert_id, status, window_kind from mon_alert_history")
    assert set(raised.alert_id) <= set(history.alert_id)
    closed = history[history.alert_id.isin(raised.alert_id) & (history.window_kind == "count")]
    assert (closed.status == "open").all(), "a closed count window's alert was resolved"
    # Each run lands its own record after it published the snapshot: read them where they land.
    runs = datasets.query_landed(paths, datasets.MONITOR_RUNS,
                                 "select critical_new, failover_set from landed order by started_at")
    assert [failover_set for _, failover_set in runs] == [True, False]
    assert runs[1][0] == 0
    assert set(read_failover(paths).acknowledged_alert_ids) == set(raised.alert_id), "the clear's record"


def test_outcomes_land_and_give_realised_fairness(
    trained_deployment: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver,
) -> None:
    paths = copy_deployment(trained_deployment, tmp_path, *WITHOUT_HISTORY)
    log = land_log(paths, trained_deployment, seed=9)
    use(monkeypatch, paths, receiver)
    assert cli.main(["outcomes", "--simulate", "--seed", "3"]) == 0
    assert cli.main(["monitor"]) in (0, cli.EXIT_CRITICAL)

    outcomes = query(paths, "select request_id, defaulted from stg_landing__outcomes")
    assert len(outcomes) == REQUESTS
    joined = log.merge(outcomes, on="request_id")
    joined["flagged"] = joined.decision == "manual_review"
    repaid = joined[joined.defaulted == 0]
    expected = repaid.groupby("ethnicity").flagged.mean()
    realised = query(paths, "select fairness_group, realised_fpr, cost, false_negatives, false_positives "
                            "from mon_realised_quality where window_kind = 'deployment'").set_index("fairness_group")
    np.testing.assert_allclose(realised.realised_fpr.loc[expected.index], expected, rtol=0, atol=1e-12)
    assert (realised.cost == 5 * realised.false_negatives + realised.false_positives).all()


def test_a_stable_log_raises_no_critical_alert(
    trained_deployment: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver,
) -> None:
    paths = copy_deployment(trained_deployment, tmp_path, *WITHOUT_HISTORY)
    land_log(paths, trained_deployment, seed=21)
    use(monkeypatch, paths, receiver)

    assert cli.main(["monitor"]) == 0
    alerts = query(paths, "select * from mon_alerts")
    assert not (alerts.severity == "critical").any(), alerts
    assert not read_failover(paths).active
    assert len(query(paths, "select * from mon_positive_rates where window_kind = 'count' and tested")) > 0
    callers = query(paths, "select caller, sum(requests) as requests, sum(scored) as scored"
                           " from mon_ops_callers_daily group by caller order by caller")
    assert callers.to_dict("list") == {"caller": ["lender-a", "lender-b"], "requests": [3000, 1000],
                                       "scored": [3000, 1000]}
