"""The landing-zone datasets the model-delivery stages write and dbt reads.

Each schema here is the contract between a Python writer and a dbt staging model; ``lendguard
build`` lands a zero-row seed with it, so dbt's sources exist before the first row does.
Timestamps are naive UTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
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
MONOTONE_SWEEPS = "monotone_sweeps"
"""Each declared-monotone input swept over a grid, the others at their medians (``ml.monotone``)."""
MODEL_LINEAGE = "model_lineage"
"""Where each registered version came from (git commit, training data, dbt manifest): SQL reaches it."""
REFERENCE_INPUTS = "reference_inputs"
"""Training inputs per model version (drift references); columns depend on the loan book."""
CENSUS_SURNAMES = "census_surnames"
CENSUS_ZCTAS = "census_zctas"
REFERENCE_DATA_LOADS = "reference_data_loads"
CENSUS_GROUPS: tuple[str, ...] = ("white", "black", "api", "native", "multiple", "hispanic")
"""The Census 2010 categories, in the published tables' column order: non-Hispanic White, Black,
Asian or Pacific Islander, American Indian or Alaska Native, two or more races; and Hispanic."""

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
        ("method", pa.string()),              # self_reported | bisg: how group membership is known
        ("group_name", pa.string()),          # an ethnic group, or __overall__
        ("n", pa.float64()),                  # sums of membership weights: counts when self-reported
        ("defaults", pa.float64()),
        ("repaid", pa.float64()),
        ("repaid_effective", pa.float64()),   # min(Kish (Σw)²/Σw², Σw), repaid rows; self-reported: = repaid
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
    MONOTONE_SWEEPS: pa.schema([
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("feature", pa.string()),             # a numeric input the loan-book contract declares monotone
        ("direction", pa.string()),           # increasing | decreasing (in risk)
        ("value", pa.float64()),              # the input's value at this grid point
        ("probability", pa.float64()),        # the version's probability of default there
        ("within_training_range", pa.bool_()),
        ("evaluated_at", pa.timestamp("us")),
    ]),
    GATE_RESULTS: pa.schema([
        ("model_version", pa.string()),
        ("pipeline_run_id", pa.string()),
        ("check_name", pa.string()),
        ("subject", pa.string()),
        ("measured_value", pa.float64()),
        ("limit_value", pa.float64()),
        ("comparison", pa.string()),          # how the value meets its limit: <= or >=
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
    MODEL_LINEAGE: pa.schema([                # one row per registered version (ml.delivery.lineage)
        ("model_version", pa.string()),
        ("run_id", pa.string()),              # the MLflow training run
        ("git_commit", pa.string()),          # the code that trained it
        ("training_data_rows", pa.int64()),   # the training rows' count and SHA-256 (data fingerprint)
        ("training_data_sha256", pa.string()),
        ("dbt_manifest_sha256", pa.string()), # the SQL that built the training table
        ("loan_book_snapshot", pa.string()),
        ("loan_book_contract", pa.string()),  # fingerprint of the loan-book contract
        ("registered_at", pa.timestamp("us")),
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
    # Census tables for BISG (`lendguard reference-data load`), as published: one column per Census
    # group (white, black, api, native, multiple, hispanic), a missing cell where the table has none.
    CENSUS_SURNAMES: pa.schema([
        ("load_id", pa.string()),
        ("name", pa.string()),                # upper case as published; 'ALL OTHER NAMES' is the rest
        *((group, pa.float64()) for group in CENSUS_GROUPS),
    ]),
    CENSUS_ZCTAS: pa.schema([
        ("load_id", pa.string()),
        ("zcta5", pa.string()),               # five digits, leading zeros kept
        *((group, pa.float64()) for group in CENSUS_GROUPS),
    ]),
    REFERENCE_DATA_LOADS: pa.schema([         # one row per table per `lendguard reference-data load`
        ("load_id", pa.string()),
        ("dataset", pa.string()),
        ("source", pa.string()),              # the file read
        ("sha256", pa.string()),              # of that file
        ("row_count", pa.int64()),
        ("loaded_at", pa.timestamp("us")),
        ("loaded_by", pa.string()),
    ]),
}


def reference_inputs_schema(loan_book: LoanBookSchema) -> pa.Schema:
    """``reference_inputs``: the version, the group column (if any), then the inputs under their loan-book names.

    The rows a model version was fitted on, as the API would log them (``warehouse.prediction_log``),
    so drift monitoring compares production with training column by column. Not in :data:`SCHEMAS`
    because the columns come from the loan-book contract; ``lendguard build`` seeds it per contract.
    """
    numeric = [pa.field(f.name, pa.float64()) for f in loan_book.numeric_features]
    categorical = [pa.field(f.name, pa.string()) for f in loan_book.categorical_features]
    return pa.schema([
        pa.field("model_version", pa.string(), nullable=False),
        *(pa.field(name, pa.string()) for name in loan_book.group_columns),
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


def query_landed(paths: Paths, dataset: str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` over a dataset's landed files, read straight from them (relation ``landed``):
    for checks that must not wait for a build. No file yet: no rows."""
    directory = paths.landing / dataset
    if not any(directory.glob("*.parquet")):
        return []
    pattern = str(directory / "*.parquet").replace("'", "''")
    with duckdb.connect() as con:
        con.execute(f"create view landed as select * from read_parquet('{pattern}', union_by_name = true)")
        return con.execute(sql, params or []).fetchall()
