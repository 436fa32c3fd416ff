"""The idempotency store: one computation per key, conflicts refused, failures forgotten, bounded,
and rebuilt from prediction-log files."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest

from api.idempotency import KEY_PATTERN, IdempotencyConflictError, IdempotencyStore, fingerprint, logged_answers
from api.schemas import ScoreResponse, build_request_struct
from warehouse.landing import LandingWriter, ensure_seed
from warehouse.loan_book import simulated_schema
from warehouse.prediction_log import META_FIELDS, prediction_log_schema
from warehouse.simulator import simulate_traffic

BOOK = simulated_schema()
ENDPOINT = "/v1/score"


def test_concurrent_duplicates_compute_once_and_get_the_same_answer() -> None:
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return f"answer-{calls}"

    async def main() -> list[tuple[str, bool]]:
        store: IdempotencyStore[str] = IdempotencyStore()
        return await asyncio.gather(*(store.run(ENDPOINT, "k", "fp", compute) for _ in range(10)))

    results = asyncio.run(main())
    assert calls == 1
    assert {answer for answer, _ in results} == {"answer-1"}
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 9


def test_another_body_under_the_same_key_is_refused() -> None:
    async def main() -> None:
        store: IdempotencyStore[int] = IdempotencyStore()

        async def one() -> int:
            return 1

        await store.run(ENDPOINT, "k", "fp-1", one)
        with pytest.raises(IdempotencyConflictError) as refused:
            await store.run(ENDPOINT, "k", "fp-2", one)
        assert refused.value.status_code == 422
        assert await store.run("/v1/score/batch", "k", "fp-2", one) == (1, False), "keys are per endpoint"

    asyncio.run(main())


def test_a_failed_first_attempt_is_forgotten_and_a_waiting_duplicate_retries() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.02)
        if attempts == 1:
            raise RuntimeError("log not durable")
        return "ok"

    async def main() -> list[object]:
        store: IdempotencyStore[str] = IdempotencyStore()
        return await asyncio.gather(*(store.run(ENDPOINT, "k", "fp", flaky) for _ in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[0], RuntimeError), "the first caller sees its own failure"
    assert results[1:] == [("ok", False), ("ok", True)], "the next one computes, the last replays"
    assert attempts == 2


def test_keys_expire_and_the_oldest_go_first() -> None:
    async def main() -> None:
        store: IdempotencyStore[int] = IdempotencyStore(ttl_seconds=0.05, max_keys=2)

        async def value() -> int:
            return 7

        for key in ("a", "b", "c"):
            await store.run(ENDPOINT, key, "fp", value)
        assert len(store) == 2, "least recently used forgotten"
        time.sleep(0.06)
        assert await store.run(ENDPOINT, "b", "other body, but b expired", value) == (7, False)

    asyncio.run(main())


def test_the_key_pattern_and_the_fingerprint() -> None:
    assert KEY_PATTERN.fullmatch("3f2c9a1e-7b1d-4c55-9a51-0c1f8d2e4b6a")
    for bad in ("", "a b", "x" * 129, "é"):
        assert not KEY_PATTERN.fullmatch(bad)
    request = build_request_struct(BOOK)
    row = simulate_traffic("stable", 1, seed=2).select(list(BOOK.input_names)).to_pylist()[0]
    same = msgspec.json.decode(msgspec.json.encode(dict(reversed(list(row.items())))), type=request)
    assert fingerprint(ENDPOINT, request(**row)) == fingerprint(ENDPOINT, same), "field order does not matter"
    assert fingerprint(ENDPOINT, request(**row)) != fingerprint("/other", request(**row))


def _logged(request_id: str, key: str | None, **changes: object) -> dict[str, object]:
    return {"request_id": request_id, "application_id": "A-1", "received_at": datetime(2026, 1, 1),
            "endpoint": ENDPOINT, "status_code": 200, "model_name": "lendguard", "model_version": "3",
            "threshold": 0.3, "probability": 0.25, "decision": "auto_approve", "mode": "normal",
            "idempotency_key": key, "idempotency_fingerprint": None if key is None else f"fp-{key}", **changes}


def test_answers_are_rebuilt_from_recent_log_files_only(tmp_path: Path) -> None:
    schema = prediction_log_schema(BOOK)
    ensure_seed(tmp_path, "prediction_log", schema)
    writer = LandingWriter(tmp_path, "prediction_log", writer_id="api")
    writer.write(pa.Table.from_pylist([
        _logged("r1", "k1", unknown_categories="purpose"),
        _logged("r2", None),
        _logged("r3", "k3", status_code=400, decision=None),
        _logged("r4", "k4", batch_id="b1"),
    ], schema=schema))
    old = writer.write(pa.Table.from_pylist([_logged("r5", "k5")], schema=schema))
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    older_format = pa.schema([f for f in META_FIELDS if f.name not in {"idempotency_key", "idempotency_fingerprint"}])
    writer.write(pa.Table.from_pylist([_logged("r6", None)], schema=older_format))

    answers = list(logged_answers(tmp_path / "prediction_log", ttl_seconds=3600))
    assert [(a.key, a.fingerprint) for a in answers] == [("k1", "fp-k1")], "answered, single, keyed, recent"
    response = answers[0].response
    assert isinstance(response, ScoreResponse)
    assert (response.request_id, response.probability, response.unknown_categories) == ("r1", 0.25, ("purpose",))
