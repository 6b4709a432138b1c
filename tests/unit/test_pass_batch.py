"""``PassBatch``: what is submitted in one event-loop pass is handled by one call, in order;
each submitter gets its own result or exception; a failing call fails every item of it; a
lone submission is handled at once (no timer)."""

from __future__ import annotations

import asyncio

import pytest

from creditgraph.batching import PassBatch


def test_one_pass_is_one_call_and_each_gets_its_result() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int | BaseException]:
        calls.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def main() -> list[object]:
        batch: PassBatch[int, int] = PassBatch(run)

        async def ask(i: int) -> object:
            try:
                return await batch.submit(i)
            except ValueError as e:
                return str(e)

        together = await asyncio.gather(*(ask(i) for i in range(6)))
        alone = await ask(8)
        assert (batch.batches, batch.items) == (2, 7)
        return [*together, alone]

    assert asyncio.run(main()) == [0, "odd 1", 20, "odd 3", 40, "odd 5", 80]
    assert calls == [[0, 1, 2, 3, 4, 5], [8]]


def test_a_failing_call_fails_every_item_of_its_batch() -> None:
    def run(items: list[int]) -> list[int | BaseException]:
        raise OSError("disk full")

    async def main() -> list[BaseException | int]:
        batch: PassBatch[int, int] = PassBatch(run)
        return list(
            await asyncio.gather(*(batch.submit(i) for i in range(3)), return_exceptions=True)
        )

    out = asyncio.run(main())
    assert len(out) == 3
    assert all(isinstance(e, OSError) and "disk full" in str(e) for e in out)


def test_a_wrong_number_of_results_is_an_error_for_all() -> None:
    async def main() -> None:
        batch: PassBatch[int, int] = PassBatch(lambda items: items[:-1])
        with pytest.raises(RuntimeError, match="2 results for 3 items"):
            await asyncio.gather(*(batch.submit(i) for i in range(3)))

    asyncio.run(main())


def test_a_batch_left_by_a_stopped_loop_does_not_block_the_next() -> None:
    batch: PassBatch[int, int] = PassBatch(lambda items: [i + 1 for i in items])
    dead = asyncio.new_event_loop()

    def submit_and_stop() -> None:
        batch.submit(1)
        dead.stop()  # the loop stops before the flush scheduled by that submit runs

    dead.call_soon(submit_and_stop)
    dead.run_forever()
    dead.close()
    assert batch.batches == 0

    async def main() -> int:
        return await asyncio.wait_for(batch.submit(2), 5)

    assert asyncio.run(main()) == 3
