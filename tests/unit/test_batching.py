"""Request batching (styx_actors/actors/batching.py): CallBatcher and run_batch (calls to another actor, many in
one message), and BatchLoader (reads of one loop turn in one `load_many`).

Covers: calls made within the window travel as one batch, in order; each caller gets its own result or its
own exception; a batch whose delivery fails fails every caller of it with that error; `max_batch` splits;
a call after the flush starts a new batch; a caller that gave up does not disturb the others; a failed
fire-and-forget `tell` is logged, not raised; the receiver runs a batch's calls concurrently; BatchLoader
answers each key with its own value from one `load_many`, and a failed load fails every caller.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from styx_actors.actors.batching import BatchLoader, Call, CallBatcher, Outcome, run_batch


class Target:
    """The receiving actor: sync and async methods, one that fails, two that only finish together."""

    def __init__(self) -> None:
        self.met = asyncio.Event()

    def double(self, x: int) -> int:
        return 2 * x

    async def add(self, a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    def fail(self, message: str) -> None:
        raise ValueError(message)

    async def wait_for_partner(self) -> str:
        await self.met.wait()
        return "met"

    def partner(self) -> str:
        self.met.set()
        return "arrived"


class Sender:
    """The transport: records every batch and delivers it to a Target (or fails, when told to)."""

    def __init__(self, target: Target | None = None) -> None:
        self.target = target or Target()
        self.batches: list[list[Call]] = []
        self.error: Exception | None = None

    async def __call__(self, calls: list[Call]) -> list[Outcome]:
        self.batches.append(list(calls))
        if self.error is not None:
            raise self.error
        return await run_batch(self.target, calls)


async def test_calls_within_the_window_travel_together_and_each_caller_gets_its_own_outcome() -> None:
    sender = Sender()
    batcher = CallBatcher(sender, window=0.01)

    outcomes = await asyncio.gather(
        batcher.call("double", (2,)),
        batcher.call("add", (1, 2)),
        batcher.call("fail", ("boom",)),
        batcher.call("double", (5,)),
        return_exceptions=True,
    )

    assert outcomes[0] == 4 and outcomes[1] == 3 and outcomes[3] == 10
    assert isinstance(outcomes[2], ValueError) and str(outcomes[2]) == "boom"  # only its caller sees it
    assert sender.batches == [[("double", (2,)), ("add", (1, 2)), ("fail", ("boom",)), ("double", (5,))]]


async def test_a_failed_delivery_fails_every_caller_of_the_batch() -> None:
    sender = Sender()
    sender.error = ConnectionError("no such actor")
    batcher = CallBatcher(sender, window=0)

    outcomes = await asyncio.gather(batcher.call("double", (1,)), batcher.call("double", (2,)), return_exceptions=True)

    assert outcomes == [sender.error, sender.error]
    assert len(sender.batches) == 1


async def test_max_batch_splits_and_a_call_after_the_flush_starts_a_new_batch() -> None:
    sender = Sender()
    batcher = CallBatcher(sender, max_batch=2, window=0)

    assert await asyncio.gather(*(batcher.call("double", (x,)) for x in range(5))) == [0, 2, 4, 6, 8]
    assert [len(batch) for batch in sender.batches] == [2, 2, 1]
    assert await batcher.call("double", (7,)) == 14
    assert sender.batches[-1] == [("double", (7,))]


async def test_a_caller_that_gave_up_does_not_disturb_the_others() -> None:
    sender = Sender()
    batcher = CallBatcher(sender, window=0)
    abandoned = batcher.call("double", (1,))
    kept = batcher.call("double", (2,))

    abandoned.cancel()

    assert await kept == 4
    assert abandoned.cancelled()
    assert sender.batches == [[("double", (1,)), ("double", (2,))]]  # it was still sent: nobody hears of it


async def test_a_failed_tell_is_logged_and_a_call_of_the_same_batch_still_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = Sender()
    batcher = CallBatcher(sender, window=0)

    with caplog.at_level(logging.WARNING, logger="styx_actors.actors.batching"):
        batcher.tell("fail", ("lost",))
        assert await batcher.call("double", (3,)) == 6

    assert len(sender.batches) == 1
    assert "('fail', ('lost',)) failed: ValueError('lost')" in caplog.text


async def test_the_receiver_runs_the_calls_of_a_batch_concurrently() -> None:
    target = Target()
    calls: list[Call] = [("wait_for_partner", ()), ("partner", ())]  # in order, the first would wait forever

    outcomes = await asyncio.wait_for(run_batch(target, calls), timeout=5)

    assert outcomes == [(True, "met"), (True, "arrived")]


async def test_batch_loader_answers_one_turn_of_reads_with_one_load_many() -> None:
    loads: list[list[str]] = []

    async def load_many(keys: list[str]) -> list[int]:
        loads.append(list(keys))
        return [len(key) for key in keys]

    loader: BatchLoader[str, int] = BatchLoader(load_many)

    assert await asyncio.gather(loader.load("a"), loader.load("bbb"), loader.load("cc")) == [1, 3, 2]
    assert await loader.load("dddd") == 4  # a later turn: its own round trip
    assert loads == [["a", "bbb", "cc"], ["dddd"]]


async def test_batch_loader_fails_every_caller_when_the_load_fails() -> None:
    failure = OSError("the store is away")

    async def load_many(keys: list[Any]) -> list[Any]:
        raise failure

    loader: BatchLoader[str, int] = BatchLoader(load_many)

    outcomes = await asyncio.gather(loader.load("a"), loader.load("b"), return_exceptions=True)

    assert outcomes == [failure, failure]
