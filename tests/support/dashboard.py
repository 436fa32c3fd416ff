"""A small published snapshot of hand-made mart rows, so every number the dashboard shows is known
(the dashboard tests, and the Spark reader's test that reads the same marts from Parquet folders)."""

from __future__ import annotations

import duckdb

from warehouse.paths import Paths

MLFLOW_UI = "http://mlflow.example"

MARTS = """
create table mon_ops_hourly as select * from (values
    (timestamp '2026-01-01 10:00', '1', 100, 2, 1, 98, 20, 0, 3.0, 9.0, 12.0),
    (timestamp '2026-01-01 11:00', '1', 120, 0, 0, 120, 30, 0, 3.5, 8.0, 300.0)
) t(hour_start, model_version, requests, errors, errors_server, scored, positive_predictions, failover_requests,
    latency_p50_ms, latency_p95_ms, latency_p99_ms);
create table mon_ops_deployment as select * from (values
    ('1', 220, 2, 1, 0, 1, 218, 50, 0.229, 0, 'normal', 3.2, 8.5, 250.0,
     timestamp '2026-01-01 10:00', timestamp '2026-01-01 11:59')
) t(model_version, requests, errors, errors_validation, errors_auth, errors_server, scored, positive_predictions,
    positive_rate, failover_requests, mode, latency_p50_ms, latency_p95_ms, latency_p99_ms, first_event_at,
    last_event_at);
create table mon_drift_numeric as select *, timestamp '2026-01-01 10:00' as window_start,
    timestamp '2026-01-01 11:59' as window_end from (values
    ('1', 'deployment', 0, 'credit_score', 218, 5000, 0.21, 1e-9, 0.4, 'critical'),
    ('1', 'deployment', 0, 'annual_income', 218, 5000, 0.03, 0.4, 0.01, 'ok'),
    ('1', 'count', 0, 'credit_score', 218, 5000, 0.5, 1e-9, 0.4, 'critical')
) t(model_version, window_kind, window_index, feature, n_production, n_reference, ks_d, ks_p_value, psi, verdict);
create table mon_drift_categorical as select *, timestamp '2026-01-01 10:00' as window_start,
    timestamp '2026-01-01 11:59' as window_end from (values
    ('1', 'deployment', 0, 'purpose', 218, 5000, 0.02, 0.04, 0.3, 'ok')
) t(model_version, window_kind, window_index, feature, n_production, n_reference, kl_divergence, psi, chi2_p_value,
    verdict);
create table mon_feature_histograms as select * from (values
    ('1', 'deployment', 0, 'credit_score', 'numeric', 'b0', 0, null, 650.0, false, 2500, 50, 0.5, 0.23),
    ('1', 'deployment', 0, 'credit_score', 'numeric', 'b1', 1, 650.0, null, false, 2500, 168, 0.5, 0.77),
    ('1', 'deployment', 0, 'purpose', 'categorical', 'car', null, null, null, false, 4000, 200, 0.8, 0.917),
    ('1', 'deployment', 0, 'purpose', 'categorical', 'boat', null, null, null, true, 0, 18, 0.0, 0.083)
) t(model_version, window_kind, window_index, feature, feature_kind, bin, bin_index, bin_lower, bin_upper, is_unseen,
    reference_count, production_count, reference_share, production_share);
create table mon_positive_rates as select *, timestamp '2026-01-01 10:00' as window_start,
    timestamp '2026-01-01 11:59' as window_end from (values
    ('1', 'deployment', 0, 'self_reported', 'Asian', 80, 80.0, 80.0, 10, 0.125, 0.2, 0.09, 0.33, true, false),
    ('1', 'deployment', 0, 'self_reported', 'White', 138, 138.0, 138.0, 40, 0.29, 0.2, 0.12, 0.28, true, true),
    ('1', 'deployment', 0, 'bisg', 'Asian', 120, 71.5, 40.2, 9.1, 0.127, 0.2, 0.08, 0.36, true, false)
) t(model_version, window_kind, window_index, method, fairness_group, n, weight, n_eff, positives, rate,
    expected_rate, ci_low, ci_high, tested, breach);
create table mon_fairness_estimated as select * from (values
    ('1', 'deployment', 0, 'self_reported', 'Asian', 80, 0.10, 0.11, true, 0.05, 2),
    ('1', 'deployment', 0, 'self_reported', 'White', 138, 0.15, 0.12, true, 0.05, 2),
    ('1', 'deployment', 0, 'bisg', 'Asian', 120, 0.09, 0.11, true, 0.07, 2),
    ('1', 'deployment', 0, 'bisg', 'White', 218, 0.16, 0.12, true, 0.07, 2)
) t(model_version, window_kind, window_index, method, fairness_group, n, estimated_fpr, reference_fpr, in_gap,
    estimated_fpr_gap, groups_in_gap);
create table mon_alerts as select * from (values
    ('a1', 'drift_ks', 'credit_score', '1', 'deployment', timestamp '2026-01-01 10:00',
     timestamp '2026-01-01 11:59', 0.21, 0.15, 'critical', 'D=0.21')
) t(alert_id, check_name, subject, model_version, window_kind, window_start, window_end, value, threshold,
    severity, details);
"""


def publish_marts(paths: Paths, sql: str = MARTS) -> None:
    paths.snapshot.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.snapshot)) as con:
        con.execute(sql)
