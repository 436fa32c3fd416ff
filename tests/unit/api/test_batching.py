"""Micro-batching: each caller gets its own result, failures stay where they belong."""

from __future__ import annotations

import asyncio

import pytest

from api.batching import BatcherClosedError, MicroBatcher


def test_concurrent_items_are_processed_in_groups_and_answered_in_order() -> None:
    groups: list[list[int]] = []

    def square(items: list[int]) -> list[int | BaseException]:
        groups.append(items)
        return [ValueError(f"odd {i}") if i == 13 else i * i for i in items]

    async def main() -> list[int | BaseException]:
        batcher: MicroBatcher[int, int] = MicroBatcher(square, max_batch=8, max_wait_ms=5)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(40)), return_exceptions=True)
        await batcher.stop()
        with pytest.raises(BatcherClosedError):
            await batcher.submit(1)
        return results

    results = asyncio.run(main())
    assert [r for i, r in enumerate(results) if i != 13] == [i * i for i in range(40) if i != 13]
    assert isinstance(results[13], ValueError), "an item's own failure stays its own"
    assert len(groups) < 40
    assert max(len(g) for g in groups) <= 8


def test_a_failing_group_fails_each_of_its_items() -> None:
    def broken(items: list[int]) -> list[int | BaseException]:
        raise RuntimeError("model crashed")

    async def main() -> list[int | BaseException]:
        batcher: MicroBatcher[int, int] = MicroBatcher(broken, max_batch=4)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
        await batcher.stop()
        return results

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))
