"""``POST /v1/score`` and ``POST /v1/score/batch``: the scoring routes.

The request body is built from the served model's loan-book contract when the app is constructed
(``api.schemas.build_request_struct``), so its type exists only then. The handlers below name it
``ScoreRequest`` / ``BatchScoreRequest``; :func:`body_types` makes those names, which the plugin
puts in the app's ``signature_namespace``, and Litestar resolves the annotations from there:
validation and the OpenAPI document get the real Struct.

Handlers stay thin: idempotency and unknown categories are ``api.handling``'s, the batch rules
``api.batch``'s, the 503 mapping and the rejection log ``api.http``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import post
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler

from api.batch import (
    APPLICATION_MAX_BYTES,
    BATCH_REQUEST_STRUCT_NAME,
    BatchScoreResponse,
    build_batch_struct,
    score_batch,
)
from api.body_checks import check_occurred_at
from api.handling import once_per_key, score_one
from api.http import LOGGED_OPT, AppState, ScoringCall, error_response, not_loaded, scoring_failures, stamp_receipt
from api.schemas import REQUEST_STRUCT_NAME, ScoreResponse, build_request_struct
from warehouse.loan_book import LoanBookSchema

if TYPE_CHECKING:
    class ScoreRequest(msgspec.Struct):
        """Stands in for the contract's Struct (see :func:`body_types`)."""

    class BatchScoreRequest(msgspec.Struct):
        applications: list[msgspec.Struct]

SCORE_PATH = "/v1/score"
BATCH_PATH = "/v1/score/batch"
SCORE_MAX_BODY_BYTES = 64 * 1024
"""One application is well under 1 KiB; anything near this is not one."""


def body_types(loan_book: LoanBookSchema, batch_max_items: int) -> dict[str, type[msgspec.Struct]]:
    """The request bodies for ``loan_book``, by the names the handlers' annotations use."""
    application = build_request_struct(loan_book)
    return {REQUEST_STRUCT_NAME: application,
            BATCH_REQUEST_STRUCT_NAME: build_batch_struct(application, batch_max_items)}


async def score(data: ScoreRequest, call: ScoringCall) -> ScoreResponse:
    check_occurred_at(data, call.occurred_at_bounds, detail=f"Validation failed for POST {SCORE_PATH}")
    with scoring_failures("the decision could not be logged; retry later"):
        return await score_one(call.scoring, data, call.receipt, caller=call.caller, key=call.key, store=call.store)


async def score_many(data: BatchScoreRequest, call: ScoringCall) -> BatchScoreResponse:
    check_occurred_at(data, call.occurred_at_bounds, detail=f"Validation failed for POST {BATCH_PATH}")
    with scoring_failures("the batch's decisions could not all be logged; retry later"):
        return await once_per_key(
            data, call.receipt, caller=call.caller, key=call.key, store=call.store, response_type=BatchScoreResponse,
            proxies=call.scoring.proxies,
            answer=lambda fields: score_batch(call.scoring, data.applications, call.receipt, log_fields=fields))


async def score_unavailable(app_state: AppState) -> ScoreResponse:
    """``/v1/score`` of an app that loaded no model: its body type needs a contract."""
    raise not_loaded(app_state.serving)


async def score_many_unavailable(app_state: AppState) -> BatchScoreResponse:
    raise not_loaded(app_state.serving)


def score_handlers(servable: bool, batch_max_items: int) -> list[HTTPRouteHandler]:
    """Both routes; without a servable model (``servable`` false) they answer 503 and take no body.

    The operation ids are the ones the first release's document had (generated clients name their
    methods after them), whichever function answers."""
    common: dict[str, Any] = {
        "status_code": 200,
        "opt": {LOGGED_OPT: True},
        "middleware": [stamp_receipt],
        "exception_handlers": {HTTPException: error_response},
    }
    single = post(
        SCORE_PATH,
        request_max_body_size=SCORE_MAX_BODY_BYTES,
        summary="Score one loan application",
        description="Returns the default probability and the decision; the request is logged durably first.",
        name="score",
        operation_id="V1ScoreScore",
        **common,
    )(score if servable else score_unavailable)
    batch = post(
        BATCH_PATH,
        request_max_body_size=APPLICATION_MAX_BYTES * batch_max_items + 1024,
        summary="Score a batch of loan applications",
        description=(f"Up to {batch_max_items} applications; each is scored and logged as for /v1/score "
                     "(its own request_id; the rows share batch_id). One invalid application refuses the batch. "
                     "Optional header Idempotency-Key: a retry with the same key and body gets the same answer."),
        name="score_batch",
        operation_id="V1ScoreBatchHandler",
        **common,
    )(score_many if servable else score_many_unavailable)
    return [single, batch]
