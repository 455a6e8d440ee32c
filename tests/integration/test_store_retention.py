"""The Store contract for the retention of finished instances' history (`delete_expired_history`), run against
both real backends with the fixtures of the store suite (tests/integration/test_store.py).

A finished instance is indexed by the time of its terminal transition; its history (event log and entry in the
instances index) goes once that time is before the cutoff, unless it was triggered again. Afterwards it reads
as an instance never seen.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis

from styx_actors.model import State, WorkflowId, WorkflowInstance
from styx_actors.store.base import Store, Transition
from styx_actors.store.redis import RedisStore
from styx_actors.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.integration.test_store import (  # noqa: F401 - backend, connect, store: the suite's fixtures
    ODD_INSTANCES,
    as_event,
    backend,
    connect,
    instance,
    step,
    store,
)

T = 1_457_969_400_000  # the cutoff of most tests (epoch milliseconds)
DAY = 86_400_000
WORKFLOW = WorkflowId(component_id="c", id="w")


def at(transition: Transition, millis: int) -> Transition:
    """`transition` with its new state's timestamp (and so its event's) at `millis`."""
    state = transition.state.model_copy(update={"timestamp": millis})
    return Transition(state=state, event_json=transition.event_json, insert=transition.insert)


def run(wfi: WorkflowInstance, finished_at: int, first_counter: int = 0, end: State = State.DONE) -> list[Transition]:
    """A run of `wfi` from its trigger to its terminal transition at `finished_at`."""
    return [
        at(step(wfi, first_counter, insert=True), finished_at - 2_000),
        at(step(wfi, first_counter + 1, State.RUNNING), finished_at - 1_000),
        at(step(wfi, first_counter + 2, end), finished_at),
    ]


async def reads_as_unknown(store: Store, wfi: WorkflowInstance) -> bool:
    """Every read of `wfi` answers what it answers for an instance never triggered."""
    unknown = instance(f"never-{uuid.uuid4().hex}", wfi.component_id, wfi.workflow_id.id)
    return (
        await store.events(wfi) == await store.events(unknown) == []
        and await store.latest_event_counter(wfi) == await store.latest_event_counter(unknown) == -1
        and await store.latest_event_counters([wfi, unknown]) == [-1, -1]
        and wfi.parameter not in await store.instance_parameters(wfi.workflow_id)
        and await store.active_state(wfi) is None
    )


async def test_history_finished_before_the_cutoff_goes_and_the_rest_stays(store: Store) -> None:
    older, old, young = instance("older"), instance("old"), instance("young")
    halted = instance("old", workflow="w2")  # ERROR ends a run too, in another workflow
    active = instance("active")  # triggered long before the cutoff, never finished
    running = [at(step(active, 0, insert=True), T - 10 * DAY), at(step(active, 1, State.RUNNING), T - 9 * DAY)]
    transitions = [*run(older, T - 2 * DAY), *run(old, T - 1), *run(young, T), *run(halted, T - DAY, end=State.ERROR)]
    assert await store.commit([*transitions, *running]) == [True] * (len(transitions) + len(running))
    assert await store.instance_parameters(WORKFLOW) == ["active", "old", "older", "young"]

    assert await store.delete_expired_history(T, 100) == 3

    for deleted in (older, old, halted):
        assert await reads_as_unknown(store, deleted)
    assert await store.instance_parameters(WORKFLOW) == ["active", "young"]  # exactly the deleted ones left it
    assert await store.instance_parameters(halted.workflow_id) == []
    assert await store.events(young) == [as_event(t) for t in run(young, T)]  # finished at the cutoff: kept
    assert await store.events(active) == [as_event(t) for t in running]
    assert await store.active_state(active) == running[-1].state
    assert await store.delete_expired_history(T, 100) == 0


async def test_each_call_deletes_at_most_limit_instances_oldest_first(store: Store) -> None:
    parameters = [f"p{number}" for number in range(5)]  # p0 finished first
    # Committed in another order than they finished in: the index orders them by finish time.
    transitions = [t for number in (3, 0, 4, 1, 2) for t in run(instance(parameters[number]), T - 10 + number)]
    assert all(await store.commit(transitions))

    assert await store.delete_expired_history(T, 0) == 0
    assert await store.delete_expired_history(T, 2) == 2
    assert await store.instance_parameters(WORKFLOW) == parameters[2:]
    assert [await store.delete_expired_history(T, 2) for _ in range(3)] == [2, 1, 0]
    assert await store.instance_parameters(WORKFLOW) == []
    with pytest.raises(ValueError, match="limit must not be negative"):
        await store.delete_expired_history(T, -1)


async def test_a_retriggered_instance_is_not_deleted_until_it_finishes_again(store: Store) -> None:
    wfi = instance()
    first_run = run(wfi, T - DAY)
    retriggered = at(step(wfi, 3, insert=True, note="second run"), T)
    assert await store.commit([*first_run, retriggered]) == [True] * 4

    assert await store.delete_expired_history(T + DAY, 100) == 0  # active: its first run's end does not count
    assert await store.events(wfi) == [as_event(t) for t in [*first_run, retriggered]]
    assert await store.active_state(wfi) == retriggered.state

    finished = at(step(wfi, 4, State.DONE), T + 1)
    assert await store.commit([finished]) == [True]
    assert await store.delete_expired_history(T + 1, 100) == 0  # it finished at T + 1 now, not before
    assert await store.delete_expired_history(T + 2, 100) == 1
    assert await reads_as_unknown(store, wfi)  # both runs' history went


async def test_an_instance_triggered_after_its_history_went_counts_again_from_zero(store: Store) -> None:
    wfi = instance()
    assert all(await store.commit(run(wfi, T - 1)))
    assert await store.delete_expired_history(T, 100) == 1
    assert await store.latest_event_counter(wfi) == -1  # what a trigger numbers its first transition after

    second_run = run(wfi, T + DAY)
    assert await store.commit(second_run[:1]) == [True]
    assert await store.commit([at(step(wfi, 0, insert=True, note="stale"), T + DAY)]) == [False]  # still guarded
    assert await store.commit(second_run[1:]) == [True, True]
    assert await store.events(wfi) == [as_event(t) for t in second_run]
    assert await store.instance_parameters(WORKFLOW) == [wfi.parameter]
    assert await store.delete_expired_history(T + DAY, 100) == 0
    assert await store.delete_expired_history(T + DAY + 1, 100) == 1


async def test_history_of_odd_ids_goes_without_touching_their_neighbours(store: Store) -> None:
    """Ids that a concatenated key would confuse: every other one expires."""
    instances = [instance(p, c, w) for c, w, p in ODD_INSTANCES]
    runs = [run(wfi, T - 1 if number % 2 == 0 else T) for number, wfi in enumerate(instances)]
    assert all(await store.commit([t for transitions in runs for t in transitions]))

    assert await store.delete_expired_history(T, 100) == len(range(0, len(instances), 2))
    for number, (wfi, transitions) in enumerate(zip(instances, runs, strict=True)):
        if number % 2 == 0:
            assert await reads_as_unknown(store, wfi), wfi
        else:
            assert await store.events(wfi) == [as_event(t) for t in transitions]
            assert wfi.parameter in await store.instance_parameters(wfi.workflow_id)


async def test_triggers_racing_the_deletion_keep_their_instances_whole(
    store: Store, connect: Callable[[], Awaitable[Store]]
) -> None:
    """Triggers on another connection among concurrent deletions: whichever comes first (both do, on SQLite
    about half and half), the triggered instance keeps its snapshot, its insert event and its place in the
    instances index."""
    trigger_store = await connect()
    instances = [instance(f"p{number:03d}") for number in range(120)]
    assert all(await store.commit([t for wfi in instances for t in run(wfi, T - 1)]))
    retriggered = instances[::2]
    inserts: list[Transition] = []

    async def trigger(wfi: WorkflowInstance) -> None:
        latest = await trigger_store.latest_event_counter(wfi)  # what a shard reads before it inserts
        insert = at(step(wfi, latest + 1, insert=True, note="again"), T + 1)
        assert await trigger_store.commit([insert]) == [True]
        inserts.append(insert)

    calls = [store.delete_expired_history(T, 2) for _ in range(60)] + [trigger(wfi) for wfi in retriggered]
    random.Random(5).shuffle(calls)
    await asyncio.gather(*calls)
    while await store.delete_expired_history(T, 7) > 0:  # what the concurrent calls left
        pass

    assert await store.instance_parameters(WORKFLOW) == [wfi.parameter for wfi in retriggered]
    for insert in inserts:
        assert await store.active_state(insert.instance) == insert.state
        assert (await store.events(insert.instance))[-1] == as_event(insert)
    for wfi in instances[1::2]:
        assert await reads_as_unknown(store, wfi)


async def test_a_version_2_sqlite_file_keeps_the_history_it_had_until_its_instance_runs_again(
    tmp_path: Path,
) -> None:
    """Instances that finished before the finished index existed are not in it: their history stays."""
    path = tmp_path / "styx.db"
    before, after = instance("before"), instance("after")
    store = SqliteStore(path)
    await store.open()
    assert all(await store.commit(run(before, T - DAY)))
    await store.close()
    with sqlite3.connect(path) as db:  # what version 2 left: no finished_at column, no index
        db.executescript(
            "DROP INDEX instances_by_finished; ALTER TABLE instances DROP COLUMN finished_at; PRAGMA user_version = 2;"
        )

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert all(await reopened.commit(run(after, T - DAY)))
        assert await reopened.delete_expired_history(T, 100) == 1
        assert await reads_as_unknown(reopened, after)
        assert len(await reopened.events(before)) == 3  # unindexed: kept
        assert all(await reopened.commit(run(before, T, first_counter=3)))  # runs again: indexed when it ends
        assert await reopened.delete_expired_history(T + 1, 100) == 1
        assert await reads_as_unknown(reopened, before)
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)  # deleted, not only hidden


@pytest.mark.redis
async def test_redis_keeps_no_key_of_a_deleted_history(redis_url: str) -> None:
    """Everything a finished instance costs in Redis goes with its history: the keyspace under the prefix
    ends empty."""
    store = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}")
    await store.open()
    try:
        transitions = [t for number in range(20) for t in run(instance(f"p{number}", workflow=f"w{number % 3}"), T)]
        assert all(await store.commit(transitions))
        with redis.Redis.from_url(redis_url) as client:
            assert client.zcard(store.keys.finished) == 20
            assert await store.delete_expired_history(T + 1, 100) == 20
            assert list(client.scan_iter(match=f"{store.keys.prefix}:*")) == []
    finally:
        await store.close()
