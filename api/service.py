"""The scoring service: validated request in, decision out, log row durable in between (no HTTP).

Kept apart from the Litestar handlers so batch scoring, failover and hot reload can reuse it, and
so the rules live in one place: the model scores the loan-book inputs with the registered
feature SQL; ``manual_review`` when the probability reaches the threshold; and no decision is
returned unless its log row is durable (the log writer raises otherwise).
Concurrent requests are scored as one group (see ``api.batching``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa

from api.batching import MicroBatcher
from api.body_checks import MAX_DEPTH, json_depth, naive_utc
from api.log_writer import PredictionLogWriter
from api.proxies import ProxyLogging
from api.schemas import TEXT_MAX_LENGTH, Decision, Mode, ReasonCode, ScoreResponse
from ml.registry import ModelBundle
from ml.scoring import FeatureScorer
from warehouse.loan_book import LoanBookSchema

log = logging.getLogger(__name__)

REASON_CODES = 3
"""How many reasons a response gives at most (adverse-action notices usually state up to four)."""
Scored = tuple[float, tuple[ReasonCode, ...]]
"""A probability and its reason codes."""
RAW_BODY_MAX_CHARS = 16_384
"""A rejected body is kept for diagnosis, but a huge one must not bloat the log."""


@dataclass(frozen=True)
class Receipt:
    """When and where a request arrived: the start of its latency and its identity in the log."""

    request_id: str
    received_at: datetime
    """Naive UTC, like every timestamp in the warehouse."""
    started: float
    """``time.perf_counter()`` at receipt."""
    endpoint: str

    @classmethod
    def now(cls, endpoint: str) -> Receipt:
        return cls(new_request_id(), utc_now(), time.perf_counter(), endpoint)


_PROCESS_TOKEN = secrets.token_hex(8)
_SEQUENCE = itertools.count()


def _draw_process_token() -> None:
    global _PROCESS_TOKEN, _SEQUENCE  # per-process state, redrawn in a forked child
    _PROCESS_TOKEN, _SEQUENCE = secrets.token_hex(8), itertools.count()


os.register_at_fork(after_in_child=_draw_process_token)  # a forked child must not repeat its parent's ids


def new_request_id() -> str:
    """32 hex digits, unique across processes and restarts: a random token drawn once per process
    (64 bits), then this process's sequence number. ``uuid4`` reads the kernel's random source
    on every call, which was a tenth of the event loop's time under load (bench/README.md)."""
    return f"{_PROCESS_TOKEN}{next(_SEQUENCE):016x}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def decide(probability: float, threshold: float) -> Decision:
    """High risk (at or above the threshold) goes to a person; the rest is approved automatically."""
    return "manual_review" if probability >= threshold else "auto_approve"


def group_value(loan_book: LoanBookSchema, request: msgspec.Struct) -> str | None:
    """The request's group, or the contract's "not provided" value when it carries none (None for
    a contract without a group column)."""
    if loan_book.group_column is None:
        return None
    value = getattr(request, loan_book.group_column, None)
    return loan_book.group_not_provided if value is None else value


def inputs_table(loan_book: LoanBookSchema, requests: Sequence[msgspec.Struct]) -> pa.Table:
    """The scorer's input: one row per request, numeric inputs as float64, categorical as string."""
    columns: dict[str, pa.Array] = {}
    for numeric in loan_book.numeric_features:
        columns[numeric.name] = pa.array([_float(getattr(r, numeric.name)) for r in requests], pa.float64())
    for categorical in loan_book.categorical_features:
        columns[categorical.name] = pa.array([getattr(r, categorical.name) for r in requests], pa.string())
    return pa.table(columns)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


class ScoringService:
    """Scores requests with one model bundle and logs each decision before it is returned.

    Concurrent requests are scored together (one feature query and one ``predict_proba`` for the
    group, in a worker thread): a row costs about as much as sixty, so this is what lets a
    two-core server keep up. ``start`` before the first request, ``stop`` after the last.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        scorer: FeatureScorer,
        log_writer: PredictionLogWriter,
        *,
        mode: Mode = "normal",
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        proxies: ProxyLogging | None = None,
    ) -> None:
        self.bundle = bundle
        self.proxies = proxies
        """What the log keeps of the contract's BISG proxies (None: the contract declares none)."""
        self.scorer = scorer
        self.log_writer = log_writer
        self.mode: Mode = mode
        self.in_failover: Callable[[], bool] | None = None
        """Set by ``api.failover``: True while failover sends every application to manual review."""
        self.loan_book = bundle.loan_book
        self._batcher: MicroBatcher[msgspec.Struct, Scored] = MicroBatcher(
            self._probabilities, max_batch=max_batch, max_wait_ms=max_wait_ms, name="scorer"
        )

    @property
    def running(self) -> bool:
        return self._batcher.running

    async def start(self) -> None:
        await self._batcher.start()

    async def stop(self) -> None:
        """Score what is queued, then stop (new requests get ``BatcherClosedError``)."""
        await self._batcher.stop()
        log.info("scorer closed: %d applications in %d model calls", self._batcher.items, self._batcher.batches)

    async def score(
        self, request: msgspec.Struct, receipt: Receipt, *, log_fields: Mapping[str, Any] | None = None
    ) -> ScoreResponse:
        """Score one validated request; raises ``LogWriteError`` if its decision could not be logged.

        ``log_fields`` adds prediction-log columns the caller knows about (batch id, idempotency
        key, unknown categories: see ``api.handling``)."""
        probability, reasons = await self._batcher.submit(request)
        review_all = self.in_failover is not None and self.in_failover()  # failover: the model still scores
        threshold = self.bundle.threshold_for(group_value(self.loan_book, request))
        response = ScoreResponse(
            request_id=receipt.request_id,
            application_id=getattr(request, "application_id", None),
            model_name=self.bundle.name,
            model_version=self.bundle.version,
            probability=probability,
            threshold=threshold,
            decision="manual_review" if review_all else decide(probability, threshold),
            mode="failover" if review_all else self.mode,
            reason_codes=reasons,
        )
        row = self.decision_row(request, receipt, response)
        if log_fields:
            row.update(log_fields)
        await self.log_writer.append(row, started=receipt.started)
        return response

    def _probabilities(self, requests: list[msgspec.Struct]) -> Sequence[Scored | BaseException]:
        """Runs in a worker thread. If a group fails, each request is retried alone, so one
        application the scoring SQL cannot handle does not fail the others."""
        try:
            return self._scored(requests)
        except Exception:
            if len(requests) == 1:
                raise
        results: list[Scored | BaseException] = []
        for request in requests:
            try:
                results.extend(self._scored([request]))
            except Exception as exc:
                results.append(exc)
        return results

    def _scored(self, requests: list[msgspec.Struct]) -> list[Scored]:
        explained = self.scorer.explain(inputs_table(self.loan_book, requests))
        return [
            (float(explained.probabilities[i]),
             tuple(ReasonCode(feature=name, impact=impact) for name, impact in explained.reasons(i, REASON_CODES)))
            for i in range(len(requests))
        ]

    def decision_row(self, request: msgspec.Struct, receipt: Receipt, response: ScoreResponse) -> dict[str, Any]:
        """The prediction-log row of an answered request (``latency_ms`` is set by the writer)."""
        row: dict[str, Any] = {
            "request_id": receipt.request_id,
            "application_id": response.application_id,
            "received_at": receipt.received_at,
            "occurred_at": naive_utc(getattr(request, "occurred_at", None)),
            "endpoint": receipt.endpoint,
            "status_code": 200,
            "model_name": response.model_name,
            "model_version": response.model_version,
            "threshold": response.threshold,
            "probability": response.probability,
            "decision": response.decision,
            "mode": response.mode,
            "reason_codes": msgspec.json.encode(response.reason_codes).decode(),
        }
        if self.loan_book.group_column is not None:
            row[self.loan_book.group_column] = group_value(self.loan_book, request)
        if self.proxies is not None:
            row.update(self.proxies.row_fields(request))
        for numeric in self.loan_book.numeric_features:
            row[numeric.name] = _float(getattr(request, numeric.name))
        for categorical in self.loan_book.categorical_features:
            row[categorical.name] = getattr(request, categorical.name)
        return row


def warm_up(scorer: FeatureScorer) -> None:
    """Score one made-up application so the first real request does not pay for cold caches.

    The first DuckDB query of a process takes about 150 ms more than the rest.
    """
    loan_book = scorer.bundle.loan_book
    row: dict[str, Any] = {}
    for numeric in loan_book.numeric_features:
        row[numeric.name] = numeric.allowed[0] if numeric.allowed else (numeric.min or 0.0)
    for categorical in loan_book.categorical_features:
        row[categorical.name] = categorical.values[0] if categorical.values else ""
    table = pa.table({
        **{f.name: pa.array([row[f.name]], pa.float64()) for f in loan_book.numeric_features},
        **{f.name: pa.array([row[f.name]], pa.string()) for f in loan_book.categorical_features},
    })
    scorer.explain(table)


def rejection_row(
    receipt: Receipt,
    *,
    status_code: int,
    error: str,
    raw_body: bytes | None,
    bundle: ModelBundle | None,
    mode: Mode = "normal",
    proxies: ProxyLogging | None = None,
) -> dict[str, Any]:
    """The prediction-log row of a request answered with an error: no inputs, its raw body instead.

    The application id and timestamp are taken from the body when they can be, so a rejected
    application can still be traced and a replay's rejections land in the right time window.
    The body is kept as received: bytes that are not UTF-8 escaped (``\\xff``, so they can be
    read back), a huge one cut; ``log_note`` says so. The writer escapes any other text it
    cannot store (``api.log_writer.storable``). With ``proxies``, the body's names are withheld
    unless the log keeps names (``ProxyLogging.redact_body``).
    """
    notes = []
    text = None
    if raw_body is not None:
        try:
            text = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            text = raw_body.decode("utf-8", errors="backslashreplace")
            notes.append("raw_body: escaped (invalid UTF-8)")
        if len(text) > RAW_BODY_MAX_CHARS:
            text = f"{text[:RAW_BODY_MAX_CHARS]}…[truncated, {len(raw_body)} bytes]"
            notes.append(f"raw_body: truncated ({len(raw_body)} bytes)")
    envelope = _envelope(raw_body)
    if proxies is not None:
        text, note = proxies.redact_body(text)
        notes.extend(filter(None, [note]))
    return {
        "request_id": receipt.request_id,
        "application_id": envelope.get("application_id"),
        "received_at": receipt.received_at,
        "occurred_at": envelope.get("occurred_at"),
        "endpoint": receipt.endpoint,
        "status_code": status_code,
        "error": error,
        "raw_body": text,
        "model_name": None if bundle is None else bundle.name,
        "model_version": None if bundle is None else bundle.version,
        "mode": mode,
        "log_note": "; ".join(notes) or None,
    }


def _envelope(raw_body: bytes | None) -> dict[str, Any]:
    """Best effort: the envelope fields of a body that failed validation for another reason.

    Not parsed at all when it nests deeper than the API accepts: every JSON parser recurses."""
    if not raw_body or json_depth(raw_body) > MAX_DEPTH:
        return {}
    try:
        body = json.loads(raw_body)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    found: dict[str, Any] = {}
    application_id = body.get("application_id")
    if isinstance(application_id, str):
        found["application_id"] = application_id[:TEXT_MAX_LENGTH]
    with contextlib.suppress(msgspec.ValidationError):
        found["occurred_at"] = naive_utc(msgspec.convert(body.get("occurred_at"), datetime | None))
    return found
