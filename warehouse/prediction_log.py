"""The prediction log's columns: one row per scoring request, accepted or rejected.

The API writes these rows to the landing zone; dbt's staging model reads them. The request's
inputs are stored as columns under their loan-book names, so monitoring can compare them with the
training data column by column; a rejected request keeps its raw body and the error instead.
Timestamps are naive UTC.
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.loan_book import LoanBookSchema

DECISIONS = ("auto_approve", "manual_review")
MODES = ("normal", "failover")

META_FIELDS: tuple[pa.Field, ...] = (
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("application_id", pa.string()),
    pa.field("received_at", pa.timestamp("us"), nullable=False),
    pa.field("occurred_at", pa.timestamp("us")),
    pa.field("endpoint", pa.string()),
    pa.field("status_code", pa.int32(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("raw_body", pa.string()),
    pa.field("model_name", pa.string()),
    pa.field("model_version", pa.string()),
    pa.field("threshold", pa.float64()),
    pa.field("probability", pa.float64()),
    pa.field("decision", pa.string()),
    pa.field("mode", pa.string()),
    pa.field("latency_ms", pa.float64()),
    pa.field("reason_codes", pa.string()),  # JSON list of {feature, impact}, largest first
    pa.field("batch_id", pa.string()),
    pa.field("batch_index", pa.int32()),  # the application's position in its batch (0-based)
    pa.field("batch_size", pa.int32()),  # how many applications its batch held
    pa.field("idempotency_key", pa.string()),
    pa.field("idempotency_fingerprint", pa.string()),
    pa.field("unknown_categories", pa.string()),
    pa.field("log_note", pa.string()),  # which values were stored escaped or cut, and why (api.log_writer)
    pa.field("caller", pa.string()),  # the API key's name; "" in open mode or when refused before auth
)


def prediction_log_schema(loan_book: LoanBookSchema) -> pa.Schema:
    """Meta columns, then the group column, then the application's inputs (all nullable)."""
    numeric = [pa.field(f.name, pa.float64()) for f in loan_book.numeric_features]
    categorical = [pa.field(f.name, pa.string()) for f in loan_book.categorical_features]
    return pa.schema([*META_FIELDS, pa.field(loan_book.group_column, pa.string()), *numeric, *categorical])
