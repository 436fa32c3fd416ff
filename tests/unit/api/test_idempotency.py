"""The idempotency store: one computation per key and caller, conflicts refused, failures forgotten,
bounded, shared through the host's SQLite file, and rebuilt from prediction-log files."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest

from api.idempotency import (
    KEY_PATTERN,
    IdempotencyConflictError,
    IdempotencyStore,
    KeyScope,
    SharedAnswers,
    fingerprint,
    logged_answers,
    rebuild_from_log,
)
from api.schemas import ScoreResponse, build_request_struct
from warehouse.landing import LandingWriter, ensure_seed
from warehouse.loan_book import simulated_schema
from warehouse.prediction_log import META_FIELDS, prediction_log_schema
from warehouse.simulator import simulate_traffic

BOOK = simulated_schema()
ENDPOINT = "/v1/score"


def scope(key: str, caller: str = "alice", endpoint: str = ENDPOINT) -> KeyScope:
    return KeyScope(endpoint, caller, key)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_duplicates_compute_once_and_get_the_same_answer() -> None:
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return f"answer-{calls}"

    async def main() -> list[tuple[str, bool]]:
        store: IdempotencyStore[str] = IdempotencyStore()
        return await asyncio.gather(*(store.run(scope("k"), "fp", compute) for _ in range(10)))

    results = asyncio.run(main())
    assert calls == 1
    assert {answer for answer, _ in results} == {"answer-1"}
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 9


def test_another_body_under_the_same_key_is_refused() -> None:
    async def main() -> None:
        store: IdempotencyStore[int] = IdempotencyStore()

        async def one() -> int:
            return 1

        await store.run(scope("k"), "fp-1", one)
        with pytest.raises(IdempotencyConflictError) as refused:
            await store.run(scope("k"), "fp-2", one)
        assert refused.value.status_code == 422
        assert await store.run(scope("k", endpoint="/v1/score/batch"), "fp-2", one) == (1, False), "per endpoint"
        assert await store.run(scope("k", caller="bob"), "fp-1", one) == (1, False), "per caller: bob's own request"
        assert await store.run(scope("k", caller="bob"), "fp-1", one) == (1, True)

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
        return await asyncio.gather(*(store.run(scope("k"), "fp", flaky) for _ in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[0], RuntimeError), "the first caller sees its own failure"
    assert results[1:] == [("ok", False), ("ok", True)], "the next one computes, the last replays"
    assert attempts == 2


def test_keys_expire_and_the_oldest_go_first() -> None:
    clock = Clock()

    async def main() -> None:
        store: IdempotencyStore[int] = IdempotencyStore(ttl_seconds=60, max_keys=2, clock=clock)

        async def value() -> int:
            return 7

        for key in ("a", "b", "c"):
            await store.run(scope(key), "fp", value)
        assert len(store) == 2, "least recently used forgotten"
        clock.now += 59
        with pytest.raises(IdempotencyConflictError):
            await store.run(scope("b"), "other body, b not yet expired", value)
        clock.now += 2
        assert await store.run(scope("b"), "other body, but b expired", value) == (7, False)

    asyncio.run(main())


def test_duplicates_in_two_processes_sharing_the_file_compute_once(tmp_path: Path) -> None:
    """Two stores over one SQLite file stand for two workers: the second waits for the first's answer."""
    calls = 0

    async def compute() -> ScoreResponse:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return _response(f"r{calls}")

    async def main() -> list[tuple[ScoreResponse, bool]]:
        workers = [IdempotencyStore[ScoreResponse](shared=_shared(tmp_path)) for _ in range(2)]
        return await asyncio.gather(*(workers[i % 2].run(scope("k"), "fp", compute, ScoreResponse)
                                      for i in range(6)))

    results = asyncio.run(main())
    assert calls == 1
    assert {r.request_id for r, _ in results} == {"r1"}
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 5
    with pytest.raises(IdempotencyConflictError):
        asyncio.run(IdempotencyStore[ScoreResponse](shared=_shared(tmp_path)).run(
            scope("k"), "another body", compute, ScoreResponse))


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path: Path, reaped: bool) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    if reaped:
        dead.wait()
    else:  # exited, not yet reaped by its parent: it still takes signals
        os.waitid(os.P_PID, dead.pid, os.WEXITED | os.WNOWAIT)
    orphan = _shared(tmp_path)
    orphan.pid = dead.pid  # claimed by a worker that was then killed before answering
    assert orphan.claim(scope("k"), "fp").mine

    async def compute() -> ScoreResponse:
        return _response("retried")

    store = IdempotencyStore[ScoreResponse](shared=_shared(tmp_path))
    assert asyncio.run(store.run(scope("k"), "fp", compute, ScoreResponse)) == (_response("retried"), False)
    dead.wait()


def test_the_shared_file_forgets_expired_answers_and_the_oldest_beyond_the_limit(tmp_path: Path) -> None:
    clock = Clock()
    shared = _shared(tmp_path, ttl_seconds=60, max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        assert shared.claim(scope(key), "fp").mine
        shared.complete(scope(key), b"1")
        clock.now += 0.1
    assert not shared.claim(scope("a"), "fp").mine, "limits are applied at most once a second"
    clock.now += 1
    shared.claim(scope("d"), "fp")
    assert len(shared) == 3, "a, the oldest answer, forgotten; d claimed (in flight, never forgotten)"
    assert shared.claim(scope("a"), "fp").mine
    clock.now += 61
    assert shared.claim(scope("c"), "other body: c expired").mine


def _shared(tmp_path: Path, **options: object) -> SharedAnswers:
    return SharedAnswers(tmp_path / "idempotency.sqlite3", **{"ttl_seconds": 3600.0, "max_keys": 100, **options})


def _response(request_id: str) -> ScoreResponse:
    return ScoreResponse(request_id=request_id, application_id=None, model_name="m", model_version="1",
                         probability=0.1, threshold=0.3, decision="auto_approve", mode="normal", reason_codes=())


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
    batch = {"endpoint": "/v1/score/batch", "batch_id": "b1", "batch_size": 2, "caller": "bob"}
    writer.write(pa.Table.from_pylist([
        _logged("r1", "k1", unknown_categories="purpose", caller="alice"),
        _logged("r2", None),
        _logged("r3", "k3", status_code=400, decision=None),
        _logged("r4b", "k4", **batch, batch_index=1),
        _logged("r4a", "k4", **batch, batch_index=0),
        _logged("r5", "k5", endpoint="/v1/score/batch", batch_id="b2", batch_size=2, batch_index=0),
    ], schema=schema))
    old = writer.write(pa.Table.from_pylist([_logged("r6", "k6")], schema=schema))
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    older_format = pa.schema([f for f in META_FIELDS if f.name not in {"idempotency_key", "idempotency_fingerprint"}])
    writer.write(pa.Table.from_pylist([_logged("r7", None)], schema=older_format))

    answers = list(logged_answers(tmp_path / "prediction_log", ttl_seconds=3600))
    assert [(a.scope, a.fingerprint, a.batch_id) for a in answers] == [
        (KeyScope(ENDPOINT, "alice", "k1"), "fp-k1", None),
        (KeyScope("/v1/score/batch", "bob", "k4"), "fp-k4", "b1"),
    ], "answered, keyed, recent; a batch only when all its rows are there (b2 lacks one)"
    single, batched = answers
    response = single.responses[0]
    assert (response.request_id, response.probability, response.unknown_categories) == ("r1", 0.25, ("purpose",))
    assert [r.request_id for r in batched.responses] == ["r4a", "r4b"], "in the batch's order"
    assert msgspec.json.decode(batched.payload())["batch_id"] == "b1"

    shared = _shared(tmp_path)
    assert rebuild_from_log(shared, tmp_path / "prediction_log") == 2
    found = shared.claim(KeyScope("/v1/score/batch", "bob", "k4"), "fp-k4")
    assert (found.mine, found.done) == (False, True)
    assert [r["request_id"] for r in msgspec.json.decode(found.payload or b"")["results"]] == ["r4a", "r4b"]
