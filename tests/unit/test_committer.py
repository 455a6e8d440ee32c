"""GroupCommitter (styx_actors/actors/committer.py): the group commit of a shard's transitions.

Covers: commits made together reach the store in one call, in order, and each waiter gets its own result;
commits made while a flush is in flight wait for the next one and travel together; `max_batch` splits a
batch; a store failure reaches every waiter of its batch (and only them), and the committer carries on; over
the real SQLite store, a refused (stale) transition answers False to its own waiter only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest

from styx_actors.actors.committer import GroupCommitter
from styx_actors.events import Dequeue, TriggerExecution, event_to_json_text
from styx_actors.model import RunState, Trigger, WorkflowInstance
from styx_actors.state_machine import new_instance_state, transition
from styx_actors.store.base import Store, StoreError, Transition
from styx_actors.store.sqlite import SqliteStore
from tests.conftest import wait_until
from tests.unit.actor_fixtures import event_log, instance

NOW = 1_457_969_400_000  # 2016-03-14T15:30:00Z


def triggered(parameter: str) -> Transition:
    """The insert that makes an instance active (NEW -> QUEUED, counter 0)."""
    wfi = instance(parameter)
    event = TriggerExecution(trigger=Trigger.adhoc("adhoc-1"))
    return Transition(transition(new_instance_state(wfi, -1, NOW), event, NOW), event_to_json_text(event, wfi), True)


def dequeued(after: Transition) -> Transition:
    """The update that follows `after` (QUEUED -> PREPARE)."""
    event = Dequeue(resource_ids=())
    state: RunState = transition(after.state, event, NOW)
    return Transition(state, event_to_json_text(event, after.instance), False)


class FakeStore:
    """`Store.commit` only: records each call, can hold a call until released, answers or fails as told."""

    def __init__(self, answer: Callable[[Transition], bool] = lambda _: True) -> None:
        self.calls: list[list[WorkflowInstance]] = []
        self.answer = answer
        self.hold = asyncio.Event()
        self.hold.set()
        self.failures: list[Exception] = []  # raised by the next calls, one each

    async def commit(self, transitions: Sequence[Transition]) -> list[bool]:
        self.calls.append([t.instance for t in transitions])
        await self.hold.wait()
        if self.failures:
            raise self.failures.pop(0)
        return [self.answer(t) for t in transitions]


def committer(store: FakeStore, max_batch: int = 2000) -> GroupCommitter:
    return GroupCommitter(cast(Store, store), max_batch=max_batch)


async def test_commits_made_together_reach_the_store_in_one_call_and_each_waiter_gets_its_own_result() -> None:
    store = FakeStore(answer=lambda t: t.instance.parameter != "refused")
    group = committer(store)
    transitions = [triggered("a"), triggered("refused"), triggered("c")]

    results = await asyncio.gather(*(group.commit(t) for t in transitions))

    assert results == [True, False, True]
    assert store.calls == [[t.instance for t in transitions]]


async def test_commits_made_during_a_flush_travel_together_in_the_next() -> None:
    store = FakeStore()
    store.hold.clear()
    group = committer(store)
    first = asyncio.create_task(group.commit(triggered("a")))
    await wait_until(lambda: store.calls, timeout=5, message="the first flush")
    later = [asyncio.create_task(group.commit(triggered(p))) for p in ("b", "c", "d")]

    store.hold.set()

    assert await asyncio.gather(first, *later) == [True] * 4
    assert store.calls == [[instance("a")], [instance("b"), instance("c"), instance("d")]]


async def test_max_batch_splits_a_batch_and_every_waiter_still_gets_its_own_result() -> None:
    store = FakeStore(answer=lambda t: t.instance.parameter in ("a", "d"))
    group = committer(store, max_batch=2)

    results = await asyncio.gather(*(group.commit(triggered(p)) for p in "abcde"))

    assert results == [True, False, False, True, False]
    assert [len(call) for call in store.calls] == [2, 2, 1]


async def test_a_store_failure_reaches_every_waiter_of_its_batch_and_only_them() -> None:
    store = FakeStore()
    store.hold.clear()
    failure = StoreError("the store is away")
    store.failures.append(failure)
    group = committer(store)
    failing = [asyncio.create_task(group.commit(triggered(p))) for p in ("a", "b")]
    await wait_until(lambda: store.calls, timeout=5, message="the first flush")
    next_batch = [asyncio.create_task(group.commit(triggered(p))) for p in ("c", "d")]

    store.hold.set()

    for task in failing:
        with pytest.raises(StoreError) as raised:
            await task
        assert raised.value is failure
    assert await asyncio.gather(*next_batch) == [True, True]  # queued during the failed flush: written next
    assert await group.commit(triggered("e")) is True  # and the committer carries on afterwards
    assert store.calls == [[instance("a"), instance("b")], [instance("c"), instance("d")], [instance("e")]]


async def test_over_sqlite_a_stale_transition_is_refused_to_its_own_waiter_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    try:
        group = GroupCommitter(store)
        a = triggered("a")
        ghost = dequeued(triggered("ghost"))  # an update of an instance that is not active

        results = await asyncio.gather(group.commit(a), group.commit(dequeued(a)), group.commit(ghost))

        assert results == [True, True, False]
        assert await event_log(store, instance("a")) == [(0, "triggerExecution"), (1, "dequeue")]
        assert await event_log(store, instance("ghost")) == []
        assert (await store.active_state(instance("a"))) == dequeued(a).state
    finally:
        await store.close()
