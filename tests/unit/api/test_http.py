"""The HTTP plumbing on its own: the one 503 mapping, the scoring lease, the receipt (no app built)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Request
from litestar.exceptions import ServiceUnavailableException

from api.batching import BatcherClosedError
from api.http import (
    NOT_LOADED,
    SHUTTING_DOWN,
    AppState,
    DecisionNotLoggedError,
    Serving,
    provide_scoring_call,
    receipt_of,
    scoring_failures,
    stamp_receipt,
)
from api.log_writer import LogWriteError
from warehouse.paths import Paths
from warehouse.settings import ApiSettings


def test_a_closed_scorer_is_a_503_that_says_to_retry() -> None:
    with pytest.raises(ServiceUnavailableException) as raised, scoring_failures("not logged"):
        raise BatcherClosedError("scorer is not running")
    assert raised.value.detail == SHUTTING_DOWN
    assert not isinstance(raised.value, DecisionNotLoggedError)


def test_a_log_row_not_durable_withholds_the_decision() -> None:
    with pytest.raises(DecisionNotLoggedError) as raised, scoring_failures("the decision could not be logged"):
        raise LogWriteError("disk full")
    assert raised.value.status_code == 503
    assert raised.value.detail == "the decision could not be logged"
    assert raised.value.headers == {"Retry-After": "1"}


def test_other_errors_are_not_mapped() -> None:
    with pytest.raises(ValueError, match="a bug"), scoring_failures("not logged"):
        raise ValueError("a bug")


@pytest.mark.parametrize(("reason", "detail"), [(None, NOT_LOADED), ("no model for 'x'", "no model for 'x'")])
def test_without_a_loaded_model_the_lease_is_a_503(paths: Paths, reason: str | None, detail: str) -> None:
    state = AppState(ApiSettings(), paths, Serving("champion", None, reason, {}))

    async def lease() -> None:
        async for _ in provide_scoring_call(state, Request({"type": "http", "path": "/v1/score", "headers": []})):
            pytest.fail("leased a service from an empty slot")

    with pytest.raises(ServiceUnavailableException) as raised:
        asyncio.run(lease())
    assert raised.value.detail == detail


def test_the_receipt_is_stamped_before_the_route_runs() -> None:
    seen: dict[str, Any] = {}

    async def route(scope: Any, receive: Any, send: Any) -> None:
        seen["receipt"] = receipt_of(scope)

    scope: Any = {"type": "http", "path": "/v1/score"}
    asyncio.run(stamp_receipt(route)(scope, None, None))  # type: ignore[arg-type] # no receive or send needed
    assert seen["receipt"].endpoint == "/v1/score"
    assert receipt_of(scope) is seen["receipt"], "the hook that logs a rejection finds the same receipt"
