"""What the scoring routes do around :meth:`ScoringService.score`: idempotency and unknown categories.

Kept out of the Litestar handlers (``api.routes.score``) so both routes share it and they stay thin,
and out of the scoring service, which stays about scoring and logging one application.

Unknown categories: a categorical value outside the contract's known categories is accepted and
scored as the model was trained to (its one-hot columns all zero: ``handle_unknown="ignore"``);
the response lists such inputs in ``unknown_categories`` and the log row carries them
(comma-separated) so monitoring can count them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from api.idempotency import IdempotencyStore, KeyScope, fingerprint
from api.proxies import ProxyLogging
from api.schemas import ScoreResponse
from api.service import Receipt, ScoringService
from warehouse.loan_book import LoanBookSchema

R = TypeVar("R")


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


async def once_per_key(
    body: msgspec.Struct, receipt: Receipt, *, caller: str, key: str | None, store: IdempotencyStore[R],
    response_type: type[R], answer: Callable[[dict[str, Any]], Awaitable[R]], proxies: ProxyLogging | None = None,
) -> R:
    """``answer(log_fields)``, computed once per (caller, ``Idempotency-Key``), every time without a key.

    The log rows carry the caller; with a key, also the key and the body's fingerprint
    (``api.idempotency``: the answer is shared by the host's workers and rebuilt from the log); the
    fingerprint leaves the applicant's names out unless the log keeps them (``ProxyLogging.fingerprinted``)."""
    fields: dict[str, Any] = {"caller": caller}
    if key is None:
        return await answer(fields)
    print_ = fingerprint(receipt.endpoint, body if proxies is None else proxies.fingerprinted(body))
    fields.update(idempotency_key=key, idempotency_fingerprint=print_)
    result, _ = await store.run(KeyScope(receipt.endpoint, caller, key), print_, lambda: answer(fields), response_type)
    return result


async def score_one(
    scoring: ScoringService, data: msgspec.Struct, receipt: Receipt, *, caller: str, key: str | None,
    store: IdempotencyStore[Any],
) -> ScoreResponse:
    """``POST /v1/score``: one application, answered once per (caller, ``Idempotency-Key``)."""
    return await once_per_key(
        data, receipt, caller=caller, key=key, store=store, response_type=ScoreResponse, proxies=scoring.proxies,
        answer=lambda fields: score_application(scoring, data, receipt, log_fields=fields))
