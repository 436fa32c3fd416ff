"""The landing-zone datasets the model-delivery stages write and dbt reads.

Each schema here is the contract between a Python writer and a dbt staging model; ``lendguard
build`` lands a zero-row seed with it, so dbt's sources exist before the first row does.
Timestamps are naive UTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from warehouse import landing

if TYPE_CHECKING:
    import pandas as pd

    from warehouse.loan_book import LoanBookSchema
    from warehouse.paths import Paths

EVALUATIONS = "evaluations"
THRESHOLDS = "thresholds"
COST_CURVES = "cost_curves"
GATE_RESULTS = "gate_results"
APPROVALS = "approvals"
PIPELINE_RUNS = "pipeline_runs"
FAILOVER_EVENTS = "failover_events"
OUTCOMES = "outcomes"
MONITOR_RUNS = "monitor_runs"
ALERT_NOTIFICATIONS = "alert_notifications"
REFERENCE_INPUTS = "reference_inputs"
"""Training inputs per model version (drift references); columns depend on the loan book."""

OVERALL = "__overall__"
"""The ``group_name`` of a metrics row over all applicants."""
DEFAULT_GROUP = "__default__"
"""The ``group_name`` of the threshold applied to any group without its own."""

SCHEMAS: dict[str, pa.Schema] = {
    EVALUATIONS: pa.schema([
        ("candidate_version", pa.string()),   # the version under evaluation
        ("model_version", pa.string()),       # whose predictions these are (candidate, or the champion for reference)
        ("role", pa.string()),                # candidate | champion
        ("run_id", pa.string()),
        ("policy", pa.string()),              # group_thresholds | single_threshold
        ("is_deployed_policy", pa.bool_()),
        ("group_name", pa.string()),          # an ethnic group, or __overall__
        ("n", pa.int64()),
        ("defaults", pa.int64()),
        ("repaid", pa.int64()),
        ("auc", pa.float64()),
        ("fpr", pa.float64()),
        ("fpr_ci_low", pa.float64()),
        ("fpr_ci_high", pa.float64()),
        ("tpr", pa.float64()),
        ("positive_rate", pa.float64()),
        ("cost", pa.float64()),
        ("cost_per_applicant", pa.float64()),
        ("calibration_error", pa.float64()),
        ("threshold", pa.float64()),
        ("evaluated_at", pa.timestamp("us")),
    ]),
    THRESHOLDS: pa.schema([
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("policy", pa.string()),
        ("group_name", pa.string()),          # an ethnic group, or __default__
        ("threshold", pa.float64()),
        ("is_fallback", pa.bool_()),
        ("target_fpr", pa.float64()),
        ("created_at", pa.timestamp("us")),
    ]),
    COST_CURVES: pa.schema([
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("policy", pa.string()),
        ("target_fpr", pa.float64()),
        ("cost", pa.float64()),
        ("cost_per_applicant", pa.float64()),
        ("flagged_rate", pa.float64()),
        ("fpr_gap", pa.float64()),
        ("is_chosen", pa.bool_()),
    ]),
    GATE_RESULTS: pa.schema([
        ("model_version", pa.string()),
        ("pipeline_run_id", pa.string()),
        ("check_name", pa.string()),
        ("subject", pa.string()),
        ("measured_value", pa.float64()),
        ("limit_value", pa.float64()),
        ("passed", pa.bool_()),
        ("gated_at", pa.timestamp("us")),
    ]),
    APPROVALS: pa.schema([
        ("model_version", pa.string()),
        ("decision", pa.string()),            # approved | rejected
        ("decided_by", pa.string()),
        ("note", pa.string()),
        ("decided_at", pa.timestamp("us")),
        ("gate_result", pa.string()),
        ("pipeline_run_id", pa.string()),
    ]),
    PIPELINE_RUNS: pa.schema([
        ("pipeline_run_id", pa.string()),
        ("stage", pa.string()),
        ("status", pa.string()),              # running | succeeded | failed | waiting | skipped
        ("started_at", pa.timestamp("us")),
        ("ended_at", pa.timestamp("us")),
        ("actor", pa.string()),
        ("model_version", pa.string()),
        ("mlflow_run_id", pa.string()),
        ("details", pa.string()),             # JSON
    ]),
    FAILOVER_EVENTS: pa.schema([
        ("event_id", pa.string()),
        ("action", pa.string()),              # set | clear
        ("fallback", pa.string()),            # manual_review | previous_champion (set only)
        ("reason", pa.string()),
        ("actor", pa.string()),               # a person, or "lendguard monitor"
        ("note", pa.string()),
        ("alert_ids", pa.string()),           # JSON list of mon_alerts ids: that caused a set / a clear acknowledged
        ("occurred_at", pa.timestamp("us")),
    ]),
    OUTCOMES: pa.schema([                     # `lendguard outcomes FILE` (or --simulate)
        ("request_id", pa.string()),          # the prediction log's request_id the outcome belongs to
        ("defaulted", pa.int8()),             # 1 not repaid, 0 repaid
        ("outcome_at", pa.timestamp("us")),   # when the outcome became known
        ("batch_id", pa.string()),            # one per landed file
        ("landed_at", pa.timestamp("us")),
    ]),
    MONITOR_RUNS: pa.schema([                 # one row per `lendguard monitor` run
        ("monitor_run_id", pa.string()),
        ("started_at", pa.timestamp("us")),
        ("ended_at", pa.timestamp("us")),
        ("actor", pa.string()),
        ("status", pa.string()),              # ok | alerts | critical | failed
        ("dbt_failures", pa.int64()),         # nodes that errored (not the monitor tests)
        ("alerts_open", pa.int64()),          # rows in mon_alerts
        ("alerts_new", pa.int64()),           # not notified before this run
        ("critical_new", pa.int64()),
        ("failover_set", pa.bool_()),         # this run switched the API to failover
        ("details", pa.string()),             # JSON: deliveries, failing nodes, error
    ]),
    ALERT_NOTIFICATIONS: pa.schema([          # one row per alert, the first time it was notified
        ("alert_id", pa.string()),
        ("monitor_run_id", pa.string()),
        ("check_name", pa.string()),
        ("subject", pa.string()),
        ("model_version", pa.string()),
        ("window_kind", pa.string()),
        ("window_start", pa.timestamp("us")),
        ("severity", pa.string()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),
        ("delivered", pa.bool_()),            # at least one channel took it
        ("deliveries", pa.string()),          # JSON list: channel, target, ok, error
        ("notified_at", pa.timestamp("us")),
    ]),
}


def reference_inputs_schema(loan_book: LoanBookSchema) -> pa.Schema:
    """``reference_inputs``: the version, the group column, then the inputs under their loan-book names.

    The rows a model version was fitted on, as the API would log them (``warehouse.prediction_log``),
    so drift monitoring compares production with training column by column. Not in :data:`SCHEMAS`
    because the columns come from the loan-book contract; ``lendguard build`` seeds it per contract.
    """
    numeric = [pa.field(f.name, pa.float64()) for f in loan_book.numeric_features]
    categorical = [pa.field(f.name, pa.string()) for f in loan_book.categorical_features]
    return pa.schema([
        pa.field("model_version", pa.string(), nullable=False),
        pa.field(loan_book.group_column, pa.string()),
        *numeric,
        *categorical,
    ])


def land_reference_inputs(paths: Paths, loan_book: LoanBookSchema, frame: pd.DataFrame) -> None:
    """Land one version's reference rows (columns as :func:`reference_inputs_schema`), one file."""
    schema = reference_inputs_schema(loan_book)
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    landing.LandingWriter(paths.landing, REFERENCE_INPUTS, writer_id=f"ml-{landing.default_writer_id()}").write(table)


def land_rows(paths: Paths, dataset: str, rows: list[dict[str, Any]] | pd.DataFrame) -> None:
    """Append rows to a dataset of the landing zone (one immutable file)."""
    schema = SCHEMAS[dataset]
    import pandas as pd  # noqa: PLC0415 - imported here: every `lendguard build` imports this module, and pandas takes 0.7 s

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=schema.names)
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    landing.LandingWriter(paths.landing, dataset, writer_id=f"ml-{landing.default_writer_id()}").write(table)
