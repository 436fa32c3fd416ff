"""The prediction log's columns: one row per scoring request, accepted or rejected.

The API writes these rows to the landing zone; dbt's staging model reads them. The request's
inputs are stored as columns under their loan-book names, so monitoring can compare them with the
training data column by column; a rejected request keeps its raw body and the error instead.
Timestamps are naive UTC.

A contract that declares proxies (BISG, for a book whose applicants' ethnicity is not collected)
adds proxy columns: the areas (``zcta`` or ``zip``, ``census_tract``) under their loan-book names; the
surname's Census evidence, P(group | surname) per Census group (:data:`SURNAME_EVIDENCE_COLUMNS`,
looked up by the API when the request arrives) and how the surname matched the table
(``surname_match``); and the names themselves (``surname``, ``first_name`` under their loan-book
names), which stay empty unless ``LENDGUARD_LOG_PROXY_NAMES`` is true. So dbt computes BISG per
logged request from the evidence and the area without ever reading a name.
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.datasets import CENSUS_GROUPS
from warehouse.loan_book import FIRST_NAME, PROXY_ROLES, SURNAME, LoanBookSchema

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


PROXY_NAME_ROLES = (SURNAME, FIRST_NAME)
"""Proxy roles that are a person's name: logged only when ``LENDGUARD_LOG_PROXY_NAMES`` is true; the
others (``zcta`` or ``zip``, ``census_tract``) are areas, always logged: BISG needs them, and an
area names no one."""
SURNAME_EVIDENCE_PREFIX = "surname_p_"
SURNAME_EVIDENCE_COLUMNS: tuple[str, ...] = tuple(f"{SURNAME_EVIDENCE_PREFIX}{group}" for group in CENSUS_GROUPS)
"""P(Census group | surname) of the request's surname, one column per Census group (null where the
published table has no value: the group gets no weight from that surname)."""
SURNAME_MATCH_COLUMN = "surname_match"
"""How the surname met the Census table: ``surname`` (as a whole), ``compound_first_part`` or
``compound_last_part`` (by a part of a compound name), ``all_other_names`` (not at all: the
'ALL OTHER NAMES' row), or ``missing`` (no surname sent; also that row)."""


def proxy_fields(loan_book: LoanBookSchema) -> list[pa.Field]:
    """The proxy columns of ``loan_book``'s log: names, areas, then the surname's evidence; none
    when it declares no proxies."""
    proxies = loan_book.proxies
    fields = [pa.field(proxies[role], pa.string()) for role in PROXY_ROLES if role in proxies]
    if SURNAME in proxies:
        fields.extend(pa.field(name, pa.float64()) for name in SURNAME_EVIDENCE_COLUMNS)
        fields.append(pa.field(SURNAME_MATCH_COLUMN, pa.string()))
    return fields


def prediction_log_schema(loan_book: LoanBookSchema) -> pa.Schema:
    """Meta columns, then the group column (when declared), the application's inputs and the proxy
    columns (when declared; all nullable). A contract without proxies gets the columns it always had."""
    numeric = [pa.field(f.name, pa.float64()) for f in loan_book.numeric_features]
    categorical = [pa.field(f.name, pa.string()) for f in loan_book.categorical_features]
    group = [pa.field(name, pa.string()) for name in loan_book.group_columns]
    return pa.schema([*META_FIELDS, *group, *numeric, *categorical, *proxy_fields(loan_book)])
