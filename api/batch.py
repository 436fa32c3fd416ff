"""Scoring a batch (``POST /v1/score/batch``): up to ``LENDGUARD_BATCH_MAX_ITEMS`` applications at once.

Each application is the same body as ``POST /v1/score`` and is scored by the same
:class:`~api.service.ScoringService` (through its micro-batcher, so the decision rules stay in one
place). Each gets its own ``request_id`` and log row; the rows share a ``batch_id``. The response
is sent only once every row is durable.

All or nothing at validation: one invalid application refuses the whole batch with 400 (its error
keyed ``applications[<index>].<field>``), nothing is scored, and the refusal is one log row with
the raw body. A batch over the limit is refused the same way, the error naming the limit. A batch
whose rows could not all be made durable gets 503 (the client retries it, ideally with an
``Idempotency-Key``); rows already durable then stay in the log as decisions not delivered.

The route itself is ``api.routes.score``; this module is what it calls (no HTTP here).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import msgspec

from api.handling import score_application
from api.schemas import ScoreResponse
from api.service import Receipt, ScoringService, new_request_id

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
