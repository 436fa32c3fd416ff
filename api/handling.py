"""What the scoring routes do around :meth:`ScoringService.score`: idempotency and unknown categories.

Kept out of the Litestar handlers (``api.app``, ``api.batch``) so both routes share it, and out of
the scoring service, which stays about scoring and logging one application.

Unknown categories: a categorical value outside the contract's known categories is accepted and
scored as the model was trained to (its one-hot columns all zero: ``handle_unknown="ignore"``);
the response lists such inputs in ``unknown_categories`` and the log row carries them
(comma-separated) so monitoring can count them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from api.idempotency import answer_once
from api.schemas import ScoreResponse
from api.service import Receipt, ScoringService
from warehouse.loan_book import LoanBookSchema


def unknown_categories(loan_book: LoanBookSchema, application: msgspec.Struct) -> tuple[str, ...]:
    """The categorical inputs of ``application`` whose value is not a known category (nulls are not)."""
    unknown = []
    for feature in loan_book.categorical_features:
        value = getattr(application, feature.name, None)
        if value is not None and feature.values is not None and value not in feature.values:
            unknown.append(feature.name)
    return tuple(unknown)


async def score_application(
    scoring: ScoringService,
    application: msgspec.Struct,
    receipt: Receipt,
    *,
    log_fields: dict[str, Any] | None = None,
) -> ScoreResponse:
    """Score one application; its log row and its response name its unknown categories."""
    unknown = unknown_categories(scoring.loan_book, application)
    fields = dict(log_fields or {})
    if unknown:
        fields["unknown_categories"] = ",".join(unknown)
    response = await scoring.score(application, receipt, log_fields=fields)
    return msgspec.structs.replace(response, unknown_categories=unknown) if unknown else response


async def score_one(scoring: ScoringService, data: msgspec.Struct, request: Request[Any, Any, Any]) -> ScoreResponse:
    """``POST /v1/score``: one application, answered once per ``Idempotency-Key``."""
    from api.app import receipt_of  # noqa: PLC0415 - api.app imports this module

    receipt = receipt_of(request.scope)
    return await answer_once(request, receipt.endpoint, data, ScoreResponse,
                             lambda fields: score_application(scoring, data, receipt, log_fields=fields))
