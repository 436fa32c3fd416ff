"""``POST /v1/score/batch``: up to ``LENDGUARD_BATCH_MAX_ITEMS`` applications in one request.

Each application is the same body as ``POST /v1/score`` and is scored by the same
:class:`~api.service.ScoringService` (through its micro-batcher, so the decision rules stay in one
place). Each gets its own ``request_id`` and log row; the rows share a ``batch_id``. The response
is sent only once every row is durable.

All or nothing at validation: one invalid application refuses the whole batch with 400 (its error
keyed ``applications[<index>].<field>``), nothing is scored, and the refusal is one log row with
the raw body. A batch over the limit is refused the same way, the error naming the limit. A batch
whose rows could not all be made durable gets 503 (the client retries it, ideally with an
``Idempotency-Key``); rows already durable then stay in the log as decisions not delivered.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.handlers import HTTPRouteHandler

from api.batching import BatcherClosedError
from api.handling import score_application
from api.idempotency import answer_once
from api.log_writer import LogWriteError
from api.schemas import ScoreResponse, build_request_struct
from api.service import Receipt, ScoringService, new_request_id
from api.settings import Settings

if TYPE_CHECKING:
    from api.app import Serving

BATCH_PATH = "/v1/score/batch"
BATCH_REQUEST_STRUCT_NAME = "BatchScoreRequest"
APPLICATION_MAX_BYTES = 4 * 1024
"""Generous for one application (well under 1 KiB): the batch body limit is this times the item limit."""


class BatchScoreResponse(msgspec.Struct, kw_only=True):
    """One decision per application, in the order they were sent."""

    batch_id: str
    """Shared by the applications' prediction-log rows (column ``batch_id``)."""
    results: list[ScoreResponse]


def build_batch_struct(application: type[msgspec.Struct], max_items: int) -> type[msgspec.Struct]:
    """``{"applications": [ScoreRequest, ...]}`` with 1 to ``max_items`` entries."""
    items = Annotated[
        list[application],  # type: ignore[valid-type]
        msgspec.Meta(min_length=1, max_length=max_items,
                     description=f"1 to {max_items} applications (LENDGUARD_BATCH_MAX_ITEMS), each as for /v1/score."),
    ]
    return msgspec.defstruct(BATCH_REQUEST_STRUCT_NAME, [("applications", items)], kw_only=True,
                             forbid_unknown_fields=True, module=__name__)


async def score_batch(
    scoring: ScoringService, applications: list[msgspec.Struct], batch_receipt: Receipt,
    *, log_fields: dict[str, Any] | None = None,
) -> BatchScoreResponse:
    """Score every application (each its own request id and log row); all rows durable on return."""
    batch_id = uuid.uuid4().hex
    fields = {**(log_fields or {}), "batch_id": batch_id}

    async def one(index: int, application: msgspec.Struct) -> ScoreResponse:
        receipt = Receipt(new_request_id(), batch_receipt.received_at, batch_receipt.started, batch_receipt.endpoint)
        # Position and size let a restart rebuild the answer from the log (api.idempotency).
        return await score_application(scoring, application, receipt,
                                       log_fields={**fields, "batch_index": index, "batch_size": len(applications)})

    # Every application is waited for (no task left running); then the first failure, if any, is the batch's.
    outcomes = await asyncio.gather(*(one(i, a) for i, a in enumerate(applications)), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return BatchScoreResponse(batch_id=batch_id, results=list(outcomes))  # type: ignore[arg-type]


def batch_handler(serving: Serving, settings: Settings) -> HTTPRouteHandler:
    """The batch route, typed with the contract's application Struct (shared with ``/v1/score``)."""
    from api.app import (  # noqa: PLC0415 - api.app builds this route in create_app
        LOGGED_OPT,
        MODELS_STATE_KEY,
        DecisionNotLoggedError,
        _stamp_receipt,
        _validation_response,
        receipt_of,
    )

    async def handler(data: Any, state: State, request: Request[Any, Any, Any]) -> BatchScoreResponse:
        async with state[MODELS_STATE_KEY].lease() as scoring:
            if scoring is None:
                raise ServiceUnavailableException(detail=serving.reason or "the model is not loaded; see /readyz")
            receipt = receipt_of(request.scope)
            try:
                return await answer_once(
                    request, receipt.endpoint, data, BatchScoreResponse,
                    lambda fields: score_batch(scoring, data.applications, receipt, log_fields=fields))
            except BatcherClosedError as exc:
                raise ServiceUnavailableException(detail="the service is shutting down; retry") from exc
            except LogWriteError as exc:
                raise DecisionNotLoggedError(
                    detail="the batch's decisions could not all be logged; retry later", headers={"Retry-After": "1"}
                ) from exc

    async def unavailable() -> BatchScoreResponse:
        raise ServiceUnavailableException(detail=serving.reason or "the model is not loaded; see /readyz")

    if serving.bundle is None:
        route: Any = unavailable
        route.__annotations__ = {"return": BatchScoreResponse}
    else:
        route = handler
        body = build_batch_struct(build_request_struct(serving.bundle.loan_book), settings.batch_max_items)
        route.__annotations__ = {"data": body, "state": State, "request": Request, "return": BatchScoreResponse}
    return post(
        BATCH_PATH,
        status_code=200,
        opt={LOGGED_OPT: True},
        middleware=[_stamp_receipt],
        exception_handlers={ValidationException: _validation_response},
        request_max_body_size=APPLICATION_MAX_BYTES * settings.batch_max_items + 1024,
        summary="Score a batch of loan applications",
        description=(f"Up to {settings.batch_max_items} applications; each is scored and logged as for /v1/score "
                     "(its own request_id; the rows share batch_id). One invalid application refuses the batch. "
                     "Optional header Idempotency-Key: a retry with the same key and body gets the same answer."),
        name="score_batch",
    )(route)
