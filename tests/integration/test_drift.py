"""Input drift (issue #6): the drift marts built by dbt agree with SciPy, and drift shows up.

* Parity: a small loan book's contract, a synthetic reference and a synthetic prediction log (ties,
  missing values, an unseen category, several versions and windows) built into a warehouse; every
  window's KS D and p-value equal ``scipy.stats.ks_2samp(production, reference, method='asymp')``,
  KL equals ``scipy.stats.entropy`` of the same smoothed shares, the chi-square p-value equals
  ``scipy.stats.chi2_contingency(correction=False)``, PSI equals a hand-worked example.
* Detection: the trained deployment's own reference (landed by the evaluate stage) against simulated
  traffic: a shifted input alerts in the count windows after the onset, stable traffic does not.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from tests.support.deployment import paths_for
from warehouse import datasets, landing
from warehouse.build import build, current_loan_book, dbt_vars
from warehouse.dbt import run_dbt
from warehouse.importer import land_simulated
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.project import project_vars
from warehouse.publish import connect_snapshot, publish
from warehouse.simulator import simulate_traffic

pytestmark = pytest.mark.slow

DRIFT_MODELS = ["+mon_drift_alerts", "+mon_feature_histograms"]
TOLERANCE = 1e-9
EPOCH = pd.Timestamp(0)
ALL_KINDS = ["hour", "day", "count", "deployment"]


def _log_table(loan_book: LoanBookSchema, frame: pd.DataFrame) -> pa.Table:
    """Prediction-log rows (accepted unless the frame says otherwise) from a frame of inputs."""
    schema = prediction_log_schema(loan_book)
    n = len(frame)
    base = {
        "received_at": frame["event_at"], "occurred_at": frame["event_at"],
        "status_code": frame.get("status_code", pd.Series([200] * n)), "mode": ["normal"] * n,
        "decision": ["auto_approve"] * n, "probability": [0.1] * n,
    }
    columns = {**{k: frame[k] for k in frame.columns if k in schema.names}, **base}
    return pa.table({f.name: pa.array(columns.get(f.name, [None] * n), type=f.type) for f in schema}, schema=schema)


def _traffic_frame(traffic: pa.Table, version: str, prefix: str) -> pd.DataFrame:
    frame = traffic.to_pandas()
    frame["request_id"] = [f"{prefix}-{i}" for i in frame["request_index"]]
    frame["event_at"] = frame["occurred_at"].dt.tz_localize(None)
    frame["model_version"] = version
    return frame


# ----- parity with SciPy ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parity_deployment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, pd.DataFrame, pd.DataFrame]:
    paths = paths_for(tmp_path_factory.mktemp("drift-parity") / "data")
    land_simulated(paths, 500, seed=3)  # only its contract matters here
    loan_book = current_loan_book(paths)
    rng = np.random.default_rng(20261127)
    numeric = [f.name for f in loan_book.numeric_features]
    categorical = [f.name for f in loan_book.categorical_features]
    references, logs = [], []
    for version, size, shift in (("1", 3_000, 0.0), ("2", 12_000, 0.4)):
        ref = pd.DataFrame({name: rng.normal(size=size).round(1) for name in numeric})  # rounded: ties
        ref[numeric[0]] = rng.integers(0, 5, size)  # heavy ties
        ref[numeric[1]] = rng.normal(size=size)  # no ties
        for name in categorical:
            ref[name] = rng.choice(["a", "b", "c", None], size, p=[0.5, 0.3, 0.15, 0.05])
        ref[loan_book.group_column] = rng.choice(["g1", "g2", "g3"], size, p=[0.6, 0.3, 0.1])
        ref.insert(0, "model_version", version)
        references.append(ref)
        n = 2_600
        log = pd.DataFrame({name: (rng.normal(size=n) + shift).round(1) for name in numeric})
        log[numeric[0]] = rng.integers(0, 6, n)
        log[numeric[1]] = rng.normal(size=n) * (1 + shift)
        log.loc[rng.random(n) < 0.02, numeric[2]] = np.nan  # missing numeric values are left out
        for name in categorical:
            log[name] = rng.choice(["a", "b", "c", "new", None], n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
        log[loan_book.group_column] = rng.choice(["g1", "g2", "g3"], n, p=[0.6 - shift / 2, 0.3 + shift / 2, 0.1])
        start = datetime(2026, 3, 1, 22, 0)
        log["event_at"] = [start + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 7_200, n))]
        log["request_id"] = [f"v{version}-{i:05d}" for i in range(n)]
        log["model_version"] = version
        log["status_code"] = np.where(rng.random(n) < 0.03, 422, 200)  # refused requests are not drift
        logs.append(log)
    reference = pd.concat(references, ignore_index=True)
    production = pd.concat(logs, ignore_index=True)
    datasets.land_reference_inputs(paths, loan_book, reference)
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, "parity").write(_log_table(loan_book, production))
    # Every row's KS p-value, not only the ones a verdict needs, and hourly KS rows too.
    for dataset, schema in datasets.SCHEMAS.items():
        landing.ensure_seed(paths.landing, dataset, schema)
    run = run_dbt(
        paths, ["build", "--select", *DRIFT_MODELS, "--exclude", "tag:monitor"],
        {**dbt_vars(loan_book), "drift_all_p_values": True, "drift_ks_window_kinds": ALL_KINDS},
    )
    assert run.returncode == 0, run.output
    publish(paths)
    return paths, reference, production


def _windows(production: pd.DataFrame, count_window: int) -> dict[tuple[str, str, int], pd.DataFrame]:
    """The production rows of every (version, kind, window_key), as the marts define them."""
    accepted = production[production["status_code"] == 200].sort_values(["model_version", "event_at", "request_id"])
    out: dict[tuple[str, str, int], pd.DataFrame] = {}
    for version, group in accepted.groupby("model_version"):
        rows = group.reset_index(drop=True)
        keys = {
            "hour": (rows["event_at"].dt.floor("h") - EPOCH) // pd.Timedelta(seconds=1),
            "day": (rows["event_at"].dt.floor("D") - EPOCH) // pd.Timedelta(seconds=1),
            "count": rows.index // count_window,
            "deployment": pd.Series(0, index=rows.index),
        }
        for kind, key in keys.items():
            for value, part in rows.groupby(key.to_numpy()):
                out[(version, kind, int(value))] = part
    return out


def test_ks_statistic_and_p_value_equal_scipy(parity_deployment) -> None:
    paths, reference, production = parity_deployment
    windows = _windows(production, int(project_vars()["monitor_count_window"]))
    with connect_snapshot(paths) as con:
        marts = con.execute("select * from mon_drift_numeric").df()
    assert set(marts["window_kind"]) == {"hour", "day", "count", "deployment"}
    assert len(marts) == len(windows) * marts["feature"].nunique()
    worst_d = worst_p = 0.0
    for row in marts.itertuples():
        window = windows[(row.model_version, row.window_kind, row.window_key)]
        sample = window[row.feature].dropna().to_numpy(dtype=float)
        ref = reference.loc[reference["model_version"] == row.model_version, row.feature].dropna().to_numpy(dtype=float)
        expected = stats.ks_2samp(sample, ref, method="asymp")
        assert (row.n_production, row.n_reference) == (len(sample), len(ref))
        worst_d = max(worst_d, abs(row.ks_d - expected.statistic))
        worst_p = max(worst_p, abs(row.ks_p_value - expected.pvalue))
    assert worst_d <= TOLERANCE
    assert worst_p <= TOLERANCE


def test_kl_psi_and_chi_square_equal_scipy(parity_deployment) -> None:
    paths, reference, production = parity_deployment
    loan_book = current_loan_book(paths)
    smoothing = float(project_vars()["drift_smoothing"])
    missing = project_vars()["missing_category"]
    windows = _windows(production, int(project_vars()["monitor_count_window"]))
    with connect_snapshot(paths) as con:
        marts = con.execute("select * from mon_drift_categorical").df()
    assert set(marts["feature"]) == {loan_book.group_column, *loan_book.model_categorical}
    for row in marts.itertuples():
        window = windows[(row.model_version, row.window_kind, row.window_key)]
        ref = reference[reference["model_version"] == row.model_version]
        seen = window[row.feature].fillna(missing).value_counts()
        known = ref[row.feature].fillna(missing).value_counts()
        categories = sorted(set(seen.index) | set(known.index))
        p_counts = np.array([seen.get(c, 0) for c in categories], dtype=float)
        q_counts = np.array([known.get(c, 0) for c in categories], dtype=float)
        p = (p_counts + smoothing) / (p_counts.sum() + smoothing * len(categories))
        q = (q_counts + smoothing) / (q_counts.sum() + smoothing * len(categories))
        assert row.n_categories == len(categories)
        assert row.kl_divergence == pytest.approx(stats.entropy(p, q), abs=TOLERANCE, rel=0)
        assert row.psi == pytest.approx(float(np.sum((p - q) * np.log(p / q))), abs=TOLERANCE, rel=0)
        unseen = sum(seen.get(c, 0) for c in categories if known.get(c, 0) == 0) / p_counts.sum()
        assert row.unseen_share == pytest.approx(unseen, abs=TOLERANCE)
        observed = (p_counts + q_counts) > 0
        table = np.vstack([p_counts[observed], q_counts[observed]])
        chi2 = stats.chi2_contingency(table, correction=False)
        assert row.chi2_p_value == pytest.approx(chi2.pvalue, abs=TOLERANCE, rel=0)
        assert row.chi2_dof == chi2.dof


def test_psi_of_a_hand_worked_histogram() -> None:
    """The PSI formula of the marts on a case worked by hand (the dbt unit tests check the SQL).

    Reference 6 a, 4 b; production 1 a, 2 b, 3 c (unseen); smoothing 0.5 over K = 3 categories:
    p = (1.5, 2.5, 3.5) / 7.5 = (0.2, 0.3333, 0.4667); q = (6.5, 4.5, 0.5) / 11.5 = (0.5652, 0.3913, 0.0435);
    PSI = (0.2 - 0.5652) ln(0.2 / 0.5652) + (0.3333 - 0.3913) ln(0.3333 / 0.3913)
          + (0.4667 - 0.0435) ln(0.4667 / 0.0435) = 0.3795 + 0.0093 + 1.0043 = 1.3931.
    """
    p = np.array([1.5, 2.5, 3.5]) / 7.5
    q = np.array([6.5, 4.5, 0.5]) / 11.5
    assert float(np.sum((p - q) * np.log(p / q))) == pytest.approx(1.3931, abs=5e-5)


def test_histograms_share_the_reference_bins(parity_deployment) -> None:
    paths, _, _ = parity_deployment
    with connect_snapshot(paths) as con:
        totals = con.execute("""
            select feature_kind, model_version, window_kind, window_key, feature,
                   sum(production_count) = max(n_production) as production_adds_up,
                   abs(sum(reference_share) - 1) < 1e-12 as reference_sums_to_one,
                   count(*) as bins
            from mon_feature_histograms group by all
        """).df()
        unseen = con.execute(
            "select distinct bin from mon_feature_histograms where is_unseen and production_count > 0"
        ).df()
    assert totals["production_adds_up"].all()
    assert totals["reference_sums_to_one"].all()
    assert set(unseen["bin"]) == {"new"}  # the category the references never had


# ----- detection on a trained deployment -------------------------------------------------------------
def _detection_deployment(tmp_path: Path, source: Paths) -> Paths:
    """A fresh landing zone sharing the trained deployment's loan book, reference rows and registry."""
    deployment = replace(
        source, landing=tmp_path / "landing", warehouse=tmp_path / "w.duckdb",
        snapshot=tmp_path / "published" / "w.duckdb", state_dir=tmp_path / "state",
    )
    snapshot = landing.latest_snapshot(source.landing, landing.LOANS)
    (deployment.landing / landing.LOANS).mkdir(parents=True)
    (deployment.landing / landing.LOANS / snapshot.name).symlink_to(snapshot)
    shutil.copytree(source.landing / datasets.REFERENCE_INPUTS, deployment.landing / datasets.REFERENCE_INPUTS)
    return deployment


def test_the_evaluate_stage_lands_the_versions_training_inputs(trained_deployment: Paths) -> None:
    from ml import registry

    version = registry.alias_version(trained_deployment, "champion")
    loan_book = current_loan_book(trained_deployment)
    with connect_snapshot(trained_deployment) as con:
        train_rows = con.execute("select count(*) from train_loans where split = 'train'").fetchone()[0]
    reference = pd.read_parquet(trained_deployment.landing / datasets.REFERENCE_INPUTS)
    reference = reference[reference["model_version"] == version]
    assert list(reference.columns) == datasets.reference_inputs_schema(loan_book).names
    # The rows the model was fitted on: the train split less the few outlier rows the fit left out.
    assert 0.99 * train_rows <= len(reference) <= train_rows


def test_shifted_inputs_alert_and_stable_traffic_does_not(tmp_path: Path, trained_deployment: Paths) -> None:
    from ml import registry

    version = registry.alias_version(trained_deployment, "champion")
    deployment = _detection_deployment(tmp_path, trained_deployment)
    loan_book = current_loan_book(deployment)
    count_window = int(project_vars()["monitor_count_window"])
    onset = 2 * count_window
    shocked = simulate_traffic("economic_shock", 4 * count_window, seed=9, onset=onset)
    writer = landing.LandingWriter(deployment.landing, landing.PREDICTION_LOG, "drift-test")
    writer.write(_log_table(loan_book, _traffic_frame(shocked, version, "shock")))
    result = build(deployment, select=DRIFT_MODELS)
    assert result.ok, result.run.output
    with connect_snapshot(deployment) as con:
        alerts = con.execute("select * from mon_drift_alerts where window_kind = 'count'").df()
        windows = con.execute(
            "select window_index, window_start from int_drift_windows where window_kind = 'count'"
        ).df()
    starts = dict(zip(windows["window_start"], windows["window_index"], strict=True))
    alerts["window_index"] = alerts["window_start"].map(starts)
    before = alerts[alerts["window_index"] < onset // count_window]
    after = alerts[alerts["window_index"] >= onset // count_window]
    assert before.empty, before.to_string()
    # economic_shock: incomes x0.8, debt-to-income x1.25, utilisation +10 points.
    for window in range(onset // count_window, 4):
        subjects = set(after.loc[after["window_index"] == window, "subject"])
        assert {"annual_income", "debt_to_income"} <= subjects, (window, subjects)
        assert "credit_score" not in subjects
    assert (after.loc[after["subject"] == "debt_to_income", "severity"] == "critical").all()
    assert set(after["check_name"]) == {"drift_ks"}


def test_a_changed_purpose_mix_alerts_on_purpose_only(tmp_path: Path, trained_deployment: Paths) -> None:
    from ml import registry

    version = registry.alias_version(trained_deployment, "champion")
    deployment = _detection_deployment(tmp_path, trained_deployment)
    loan_book = current_loan_book(deployment)
    count_window = int(project_vars()["monitor_count_window"])
    traffic = simulate_traffic("purpose_shift", 2 * count_window, seed=4, onset=count_window)
    writer = landing.LandingWriter(deployment.landing, landing.PREDICTION_LOG, "drift-test")
    writer.write(_log_table(loan_book, _traffic_frame(traffic, version, "mix")))
    result = build(deployment, select=DRIFT_MODELS)
    assert result.ok, result.run.output
    with connect_snapshot(deployment) as con:
        alerts = con.execute("select * from mon_drift_alerts where window_kind = 'count'").df()
        categorical = con.execute(
            "select * from mon_drift_categorical where window_kind = 'count' order by window_index, feature"
        ).df()
    assert set(alerts["subject"]) == {"purpose"}, alerts.to_string()
    assert (alerts["check_name"] == "drift_psi").all()
    assert len(alerts) == 1  # the second count window only
    purpose = categorical[categorical["feature"] == "purpose"].set_index("window_index")
    assert purpose.loc[0, "verdict"] == "ok"
    assert purpose.loc[1, "verdict"] in {"warn", "critical"}
