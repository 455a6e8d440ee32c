"""The Store contract, run against both real backends (APScheduler 4's tests/test_datastores.py pattern).

Every test taking `store` or `connect` runs once on a SQLite file and once on the session's redis-server
under a key prefix of its own.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from styx_actors.events import Info, event_to_json_text
from styx_actors.model import (
    Backfill,
    GlobalConfig,
    Message,
    Resource,
    RunState,
    State,
    StateData,
    Trigger,
    Workflow,
    WorkflowConfiguration,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
    WorkflowStatePatch,
)
from styx_actors.store import open_store
from styx_actors.store.base import ExecutionOutput, OutputSummary, Store, StoredEvent, StoreError, Transition
from styx_actors.store.redis import RedisStore
from styx_actors.store.sqlite import MEMORY, SCHEMA_VERSION, SqliteStore
from styx_actors.timeutil import UTC
from tests.conftest import free_port, wait_until

# -- fixtures -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[], Store]  # a new, unopened store over the same data


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "data" / "styx.db"  # the data directory does not exist yet
        yield Backend("sqlite", lambda: SqliteStore(path))
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex}"
    yield Backend("redis", lambda: RedisStore(url, prefix=prefix))
    with redis.Redis.from_url(url) as client:  # leave a shared server (STYX_TEST_REDIS_URL) clean
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)


@pytest.fixture
async def connect(backend: Backend) -> AsyncIterator[Callable[[], Awaitable[Store]]]:
    """Open another connection to the test's store (closed at teardown)."""
    opened: list[Store] = []

    async def open_one() -> Store:
        store = backend.make()
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(connect: Callable[[], Awaitable[Store]]) -> Store:
    return await connect()


# -- builders -----------------------------------------------------------------------------------------------


def instance(parameter: str = "2016-03-14", component: str = "c", workflow: str = "w") -> WorkflowInstance:
    return WorkflowInstance.of(component, workflow, parameter)


def step(
    wfi: WorkflowInstance,
    counter: int,
    state: State = State.QUEUED,
    insert: bool = False,
    note: str = "",
    trigger_id: str = "trig-1",
) -> Transition:
    """A transition to `state` at `counter`; `note` makes competing transitions of one counter differ."""
    run_state = RunState(
        workflow_instance=wfi,
        state=state,
        timestamp=1_457_969_400_000 + counter,
        counter=counter,
        data=StateData(trigger=Trigger.adhoc(trigger_id), trigger_id=trigger_id, messages=[Message.info(note)]),
    )
    event_json = event_to_json_text(Info(Message.info(f"{counter} {state.value} {note}")), wfi)
    return Transition(state=run_state, event_json=event_json, insert=insert)


def as_event(transition: Transition) -> StoredEvent:
    return StoredEvent(transition.state.counter, transition.state.timestamp, transition.event_json)


def workflow(component: str = "c", workflow_id: str = "w", image: str = "busybox:1") -> Workflow:
    return Workflow.create(component, WorkflowConfiguration(id=workflow_id, schedule="hours", docker_image=image))


def instant(hour: int) -> datetime:
    return datetime(2016, 3, 14, hour, tzinfo=UTC)


def backfill(backfill_id: str, component: str, workflow_id: str, **changes: object) -> Backfill:
    fields: dict[str, object] = {"start": instant(0), "end": instant(6), "concurrency": 2, "next_trigger": instant(1)}
    return Backfill(
        id=backfill_id,
        workflow_id=WorkflowId(component_id=component, id=workflow_id),
        schedule="hours",
        **{**fields, **changes},
    )


async def commit_one(store: Store, transition: Transition) -> bool:
    (written,) = await store.commit([transition])
    return written


# -- workflows ----------------------------------------------------------------------------------------------


async def test_workflow_round_trip_replace_and_delete(store: Store) -> None:
    wf_id = WorkflowId(component_id="c", id="w")
    assert await store.get_workflow(wf_id) is None

    state = WorkflowState(enabled=True, next_natural_trigger=instant(3), next_natural_offset_trigger=instant(4))
    await store.put_workflow(workflow(image="busybox:1"), state)
    assert await store.get_workflow(wf_id) == (workflow(image="busybox:1"), state)

    await store.put_workflow(workflow(image="busybox:2"), WorkflowState())
    assert await store.get_workflow(wf_id) == (workflow(image="busybox:2"), WorkflowState())

    assert await store.delete_workflow(wf_id) is True
    assert await store.get_workflow(wf_id) is None
    assert await store.delete_workflow(wf_id) is False


async def test_workflows_are_listed_by_component_then_id(store: Store) -> None:
    ids = [("b", "x"), ("a", "z"), ("b", "a"), ("a", "b"), ("c", "a")]
    for component, workflow_id in ids:
        await store.put_workflow(workflow(component, workflow_id), WorkflowState())

    listed = [(wf.component_id, wf.workflow_id) for wf, _ in await store.workflows()]
    assert listed == sorted(ids)
    assert [wf.workflow_id for wf, _ in await store.workflows("b")] == ["a", "x"]
    assert await store.workflows("nobody") == []


async def test_patch_workflow_state_changes_only_the_fields_sent(store: Store) -> None:
    wf_id = WorkflowId(component_id="c", id="w")
    initial = WorkflowState(enabled=False, next_natural_trigger=instant(3), next_natural_offset_trigger=instant(4))
    await store.put_workflow(workflow(), initial)

    enabled = await store.patch_workflow_state(wf_id, WorkflowStatePatch.model_validate({"enabled": "true"}))
    assert enabled == initial.model_copy(update={"enabled": True})

    moved = await store.patch_workflow_state(
        wf_id, WorkflowStatePatch.model_validate({"next_natural_trigger": "2016-03-14T05:00:00Z"})
    )
    assert moved == enabled.model_copy(update={"next_natural_trigger": instant(5)})

    # An explicit null clears the field (enabled falls back to its default, false).
    cleared = await store.patch_workflow_state(
        wf_id, WorkflowStatePatch.model_validate({"next_natural_offset_trigger": None, "enabled": None})
    )
    assert cleared == WorkflowState(enabled=False, next_natural_trigger=instant(5), next_natural_offset_trigger=None)
    assert await store.get_workflow(wf_id) == (workflow(), cleared)

    missing = WorkflowId(component_id="c", id="missing")
    assert await store.patch_workflow_state(missing, WorkflowStatePatch(enabled=True)) is None
    assert await store.get_workflow(missing) is None


# -- resources, backfills, config ---------------------------------------------------------------------------


async def test_resource_crud_sorted_by_id(store: Store) -> None:
    assert await store.get_resource("r1") is None
    for resource_id, concurrency in [("r2", 2), ("r1", 1), ("r3", 3)]:
        await store.put_resource(Resource(id=resource_id, concurrency=concurrency))
    await store.put_resource(Resource(id="r2", concurrency=20))

    assert await store.get_resource("r2") == Resource(id="r2", concurrency=20)
    assert [r.id for r in await store.resources()] == ["r1", "r2", "r3"]
    assert await store.delete_resource("r1") is True
    assert await store.delete_resource("r1") is False
    assert await store.resources() == [Resource(id="r2", concurrency=20), Resource(id="r3", concurrency=3)]


async def test_backfill_crud_filters_and_order(store: Store) -> None:
    stored = [
        backfill("b1", "c1", "w1"),
        backfill("b2", "c1", "w2", halted=True),
        backfill("b3", "c2", "w1", all_triggered=True),
        backfill("b0", "c2", "w1"),
        backfill("b4", "c1", "w1", reverse=True, description="once"),
    ]
    for item in random.Random(7).sample(stored, len(stored)):
        await store.put_backfill(item)

    def ids(backfills: list[Backfill]) -> list[str]:
        return [b.id for b in backfills]

    assert await store.get_backfill("b4") == stored[4]
    assert await store.get_backfill("nope") is None
    assert ids(await store.backfills()) == ["b0", "b1", "b4"]
    assert ids(await store.backfills(include_finished=True)) == ["b0", "b1", "b2", "b3", "b4"]
    assert ids(await store.backfills(component_id="c1")) == ["b1", "b4"]
    assert ids(await store.backfills(component_id="c1", include_finished=True)) == ["b1", "b2", "b4"]
    assert ids(await store.backfills(workflow_id="w1")) == ["b0", "b1", "b4"]  # across components
    assert ids(await store.backfills("c2", "w1", include_finished=True)) == ["b0", "b3"]

    # Replacing a backfill moves it between the filters.
    await store.put_backfill(stored[0].model_copy(update={"halted": True}))
    await store.put_backfill(stored[1].model_copy(update={"halted": False}))
    assert ids(await store.backfills(component_id="c1")) == ["b2", "b4"]
    assert (await store.get_backfill("b1")).halted is True


async def test_global_config_defaults_until_stored(store: Store) -> None:
    assert await store.get_config() == GlobalConfig()
    config = GlobalConfig(enabled=False, concurrency=10, client_blacklist=["bad-cli"], docker_runner_id="r2")
    await store.put_config(config)
    assert await store.get_config() == config
    await store.put_config(GlobalConfig(enabled=True))
    assert await store.get_config() == GlobalConfig(enabled=True)


# -- commit ------------------------------------------------------------------------------------------------


async def test_insert_then_update(store: Store) -> None:
    wfi = instance()
    inserted, updated = step(wfi, 0, insert=True), step(wfi, 1, State.PREPARE)

    assert await commit_one(store, inserted) is True
    assert await store.active_state(wfi) == inserted.state
    assert await commit_one(store, updated) is True
    assert await store.active_state(wfi) == updated.state
    assert await store.events(wfi) == [as_event(inserted), as_event(updated)]


@pytest.mark.parametrize("stale_counter", [2, 1], ids=["equal", "lower"])
async def test_stale_counter_is_refused_and_writes_nothing(store: Store, stale_counter: int) -> None:
    wfi = instance()
    written = [step(wfi, 0, insert=True), step(wfi, 1), step(wfi, 2, State.PREPARE)]
    assert await store.commit(written) == [True, True, True]

    zombie = step(wfi, stale_counter, State.RUNNING, note="zombie")
    assert await commit_one(store, zombie) is False
    assert await store.active_state(wfi) == written[2].state
    assert await store.events(wfi) == [as_event(t) for t in written]


async def test_insert_over_an_active_instance_is_refused(store: Store) -> None:
    wfi = instance()
    assert await commit_one(store, step(wfi, 0, insert=True)) is True
    assert await commit_one(store, step(wfi, 5, insert=True, note="again")) is False
    assert (await store.active_state(wfi)).counter == 0
    assert await store.latest_event_counter(wfi) == 0


async def test_update_of_an_inactive_instance_is_refused(store: Store) -> None:
    wfi = instance()
    assert await commit_one(store, step(wfi, 0, State.RUNNING)) is False
    assert await store.active_state(wfi) is None
    assert await store.events(wfi) == []
    assert await store.latest_event_counter(wfi) == -1
    assert await store.instance_parameters(wfi.workflow_id) == []


@pytest.mark.parametrize("terminal", [State.DONE, State.ERROR])
async def test_terminal_state_deletes_the_snapshot_and_keeps_the_events(store: Store, terminal: State) -> None:
    wfi = instance()
    steps = [step(wfi, 0, insert=True, trigger_id="bf"), step(wfi, 1, terminal, trigger_id="bf")]
    assert await store.commit(steps) == [True, True]

    assert await store.active_state(wfi) is None
    assert await store.active_states() == []
    assert await store.active_states_by_trigger("bf") == []
    assert await store.events(wfi) == [as_event(t) for t in steps]
    assert await store.latest_event_counter(wfi) == 1
    assert await store.instance_parameters(wfi.workflow_id) == [wfi.parameter]
    assert await commit_one(store, step(wfi, 2, State.RUNNING)) is False  # a zombie of the ended run


async def test_retrigger_continues_after_the_event_log(store: Store) -> None:
    wfi = instance()
    assert await store.commit([step(wfi, 0, insert=True), step(wfi, 1, State.DONE)]) == [True, True]

    # An insert computed from an outdated latest_event_counter would overwrite history: refused.
    assert await commit_one(store, step(wfi, 1, insert=True, note="stale")) is False
    retriggered = step(wfi, 2, insert=True, note="second run")
    assert await commit_one(store, retriggered) is True
    assert await store.active_state(wfi) == retriggered.state
    assert [e.counter for e in await store.events(wfi)] == [0, 1, 2]


async def test_recommitting_a_written_transition_reports_it_written_once(store: Store) -> None:
    """A commit retried after a lost reply must not report its own write as refused."""
    wfi = instance()
    first, second = step(wfi, 0, insert=True), step(wfi, 1, State.DONE)
    assert await store.commit([first, second]) == [True, True]
    assert await store.commit([second]) == [True]
    assert await store.commit([first]) == [False]  # no longer the latest: stale
    assert await store.events(wfi) == [as_event(first), as_event(second)]


async def test_batch_with_mixed_outcomes(store: Store) -> None:
    a, b, c = instance("a"), instance("b"), instance("c")
    assert await store.commit([step(a, 0, insert=True), step(b, 0, insert=True), step(b, 1, State.DONE)]) == [
        True,
        True,
        True,
    ]

    batch = [
        step(a, 1, State.PREPARE),  # written
        step(a, 1, State.RUNNING, note="same counter"),  # stale: counter 1 was just written
        step(b, 2, insert=True),  # re-trigger of an ended instance: written
        step(c, 0, State.RUNNING),  # update of an instance never active: refused
        step(a, 9, insert=True),  # insert over an active instance: refused
        step(b, 3, State.ERROR),  # written: ends b again
    ]
    assert await store.commit(batch) == [True, False, True, False, False, True]

    assert await store.active_state(a) == batch[0].state
    assert await store.active_state(b) is None
    assert await store.active_state(c) is None
    assert [e.counter for e in await store.events(a)] == [0, 1]
    assert (await store.events(a))[1] == as_event(batch[0])
    assert [e.counter for e in await store.events(b)] == [0, 1, 2, 3]
    assert await store.events(c) == []
    assert await store.commit([]) == []


async def test_transitions_of_one_instance_in_a_batch_apply_in_order(store: Store) -> None:
    wfi = instance()
    run = [
        step(wfi, 0, insert=True),
        step(wfi, 1, State.PREPARE),
        step(wfi, 2, State.RUNNING),
        step(wfi, 3, State.DONE),
        step(wfi, 4, insert=True, note="re-triggered"),
    ]
    assert await store.commit(run) == [True] * 5
    assert await store.active_state(wfi) == run[4].state
    assert await store.events(wfi) == [as_event(t) for t in run]

    other = instance("other")
    assert await store.commit([step(other, 0, insert=True), step(other, 2), step(other, 1)]) == [True, True, False]
    assert (await store.active_state(other)).counter == 2


async def test_concurrent_writers_have_exactly_one_winner_per_counter(
    store: Store, connect: Callable[[], Awaitable[Store]]
) -> None:
    """Writers on two connections race for every counter of every instance; zombies replay old counters."""
    other = await connect()
    writers = [store, store, other, other]
    instances = [instance(f"p{i:02d}") for i in range(12)]
    assert await store.commit([step(wfi, 0, insert=True) for wfi in instances]) == [True] * len(instances)
    rng = random.Random(42)
    winners: dict[tuple[str, int], Transition] = {}

    for counter in range(1, 7):
        attempts: list[tuple[Transition, Awaitable[list[bool]]]] = []
        for wfi in instances:
            for number, writer in enumerate(writers):
                candidate = step(wfi, counter, note=f"writer {number}")
                attempts.append((candidate, writer.commit([candidate])))
            zombie = step(wfi, counter - 1, note="zombie")
            attempts.append((zombie, other.commit([zombie])))
        # One more writer sends a competitor for every instance in a single batch.
        batch = [step(wfi, counter, note="batch writer") for wfi in instances]
        rng.shuffle(attempts)
        batch_results, *single_results = await asyncio.gather(store.commit(batch), *(commit for _, commit in attempts))
        outcomes = list(zip(batch, batch_results, strict=True))
        outcomes += [(t, written) for (t, _), (written,) in zip(attempts, single_results, strict=True)]
        for wfi in instances:
            won = [t for t, written in outcomes if written and t.instance == wfi]
            assert len(won) == 1, f"{wfi.parameter} counter {counter}: {len(won)} winners"
            assert won[0].state.counter == counter
            winners[(wfi.parameter, counter)] = won[0]

    for wfi in instances:
        assert await store.active_state(wfi) == winners[(wfi.parameter, 6)].state
        assert await other.active_state(wfi) == winners[(wfi.parameter, 6)].state
        logged = await other.events(wfi)
        assert [e.counter for e in logged] == list(range(7))
        assert logged[1:] == [as_event(winners[(wfi.parameter, c)]) for c in range(1, 7)]


# -- reads --------------------------------------------------------------------------------------------------


async def test_latest_event_counter_and_event_order(store: Store) -> None:
    wfi, untouched = instance("a"), instance("b")
    assert await store.latest_event_counter(wfi) == -1
    steps = [step(wfi, 0, insert=True), step(wfi, 1, State.PREPARE), step(wfi, 4, State.RUNNING)]
    for transition in steps:
        assert await commit_one(store, transition) is True
    assert await store.latest_event_counter(wfi) == 4
    assert await store.events(wfi) == [as_event(t) for t in steps]
    assert await store.latest_event_counter(untouched) == -1
    assert await store.events(untouched) == []


async def test_instance_parameters_start_stop_limit(store: Store) -> None:
    parameters = ["2016-01-01", "2016-01-02", "2016-01-03", "2016-01-10", "2016-02-01", "2016-02-01T05"]
    wf_id = WorkflowId(component_id="c", id="w")
    transitions = [step(instance(p), 0, insert=True) for p in parameters]
    transitions.append(step(instance("2016-01-05", workflow="w2"), 0, insert=True))  # another workflow
    transitions.append(step(instance("2016-01-04"), 3, State.RUNNING))  # refused: never written
    transitions.append(step(instance("2016-01-01"), 1, State.DONE))  # ended instances still count
    random.Random(3).shuffle(transitions)
    await store.commit(transitions)

    assert await store.instance_parameters(wf_id) == parameters
    assert await store.instance_parameters(wf_id, start="2016-01-02") == parameters[1:]
    assert await store.instance_parameters(wf_id, start="2016-01-02T00") == parameters[2:]
    assert await store.instance_parameters(wf_id, stop="2016-01-10") == parameters[:3]
    assert await store.instance_parameters(wf_id, start="2016-01-02", stop="2016-02-01") == parameters[1:4]
    assert await store.instance_parameters(wf_id, limit=2) == parameters[:2]
    assert await store.instance_parameters(wf_id, start="2016-01-03", limit=3) == parameters[2:5]
    # Newest first: the limit keeps the latest ones (the dashboard's recent instances).
    assert await store.instance_parameters(wf_id, limit=2, newest_first=True) == parameters[:-3:-1]
    newest_in_range = await store.instance_parameters(wf_id, start="2016-01-02", stop="2016-02-01", newest_first=True)
    assert newest_in_range == parameters[3:0:-1]
    assert await store.instance_parameters(wf_id, limit=0) == []
    assert await store.instance_parameters(wf_id, start="2017") == []
    assert await store.instance_parameters(wf_id, start="2016-02", stop="2016-01") == []
    assert await store.instance_parameters(WorkflowId(component_id="c", id="w2")) == ["2016-01-05"]
    with pytest.raises(ValueError, match="limit must not be negative"):
        await store.instance_parameters(wf_id, limit=-1)


async def test_instance_parameters_are_in_code_point_order(store: Store) -> None:
    """Both backends order parameters as Python orders strings, beyond ASCII too."""
    parameters = ["z", "Z", "é", "工", "a b", "a#b", "a", "a\U0001f600", "ab"]
    await store.commit([step(instance(p, workflow="u"), 0, insert=True) for p in parameters])
    wf_id = WorkflowId(component_id="c", id="u")
    assert await store.instance_parameters(wf_id) == sorted(parameters)
    assert await store.instance_parameters(wf_id, start="a#", stop="é") == ["a#b", "ab", "a\U0001f600", "z"]


async def test_active_states_filters_and_order(store: Store) -> None:
    keys = [("b", "w", "1"), ("a", "w2", "1"), ("a", "w", "2"), ("a", "w", "1"), ("b", "a", "9")]
    transitions = [step(instance(p, c, w), 0, insert=True) for c, w, p in keys]
    await store.commit(transitions)
    await store.commit([step(instance("1", "a", "w2"), 1, State.DONE)])

    def key_of(states: list[RunState]) -> list[tuple[str, str, str]]:
        return [
            (s.workflow_instance.component_id, s.workflow_instance.workflow_id.id, s.workflow_instance.parameter)
            for s in states
        ]

    everything = await store.active_states()
    assert key_of(everything) == [("a", "w", "1"), ("a", "w", "2"), ("b", "a", "9"), ("b", "w", "1")]
    assert everything[0] == transitions[3].state
    assert key_of(await store.active_states("a")) == [("a", "w", "1"), ("a", "w", "2")]
    assert key_of(await store.active_states("b", "w")) == [("b", "w", "1")]
    assert await store.active_states("a", "w2") == []
    assert await store.active_states("nobody") == []
    with pytest.raises(ValueError, match="needs its component"):
        await store.active_states(workflow_id="w")


async def test_active_state_pages_list_every_active_instance_once_in_key_order(store: Store) -> None:
    parameters = ["z", "Z", "é", "工", "a b", "a#b", "a", "a\U0001f600", "ab", "a,b", 'a"b']
    keys = [(c, w, p) for c in ("c", "c d", "b") for w in ("w", "w w") for p in parameters]
    await store.commit([step(instance(p, c, w), 0, insert=True) for c, w, p in keys])
    await store.commit([step(instance("a", "c", "w"), 1, State.DONE)])  # ended: not active
    expected = await store.active_states()
    assert len(expected) == len(keys) - 1

    for page_size in (1, 7, len(keys) - 1, 1000):
        pages = [page async for page in store.active_state_pages(page_size)]
        assert all(0 < len(page) <= page_size for page in pages)
        assert [state for page in pages for state in page] == expected


async def test_owned_active_states_are_those_whose_key_the_owner_accepts(store: Store) -> None:
    """A shard's recovery: only its own instances, keys with '#' and non-ASCII characters included."""
    parameters = ["a", "a#b", "工", "a\U0001f600", 'a"b', "z"]
    await store.commit([step(instance(p), 0, insert=True) for p in parameters])
    await store.commit([step(instance("z"), 1, State.DONE)])  # ended: not active
    owned = {instance(p).key() for p in ("a#b", "工", "z")}

    states = await store.owned_active_states(lambda key: key in owned)

    assert sorted(state.workflow_instance.parameter for state in states) == ["a#b", "工"]
    assert sorted(states, key=lambda state: state.workflow_instance.key()) == [
        state for state in await store.active_states() if state.workflow_instance.key() in owned
    ]


async def test_an_instance_that_ends_between_pages_is_left_out_and_none_is_listed_twice(store: Store) -> None:
    await store.commit([step(instance(p), 0, insert=True) for p in ("1", "2", "3", "4")])
    pages = store.active_state_pages(2)
    first = await anext(pages)
    await store.commit([step(instance("3"), 1, State.DONE), step(instance("0"), 0, insert=True)])
    rest = [state async for page in pages for state in page]
    assert [s.workflow_instance.parameter for s in first] == ["1", "2"]
    assert [s.workflow_instance.parameter for s in rest] == ["4"]


async def test_active_states_by_trigger(store: Store) -> None:
    runs = [
        (instance("3", "c", "w"), "bf-1"),
        (instance("1", "c", "w"), "bf-1"),
        (instance("1", "b", "z"), "bf-1"),
        (instance("2", "c", "w"), "bf-2"),
        (instance("9", "c", "w"), "natural-trigger"),
    ]
    await store.commit([step(wfi, 0, insert=True, trigger_id=trigger) for wfi, trigger in runs])
    await store.commit([step(runs[0][0], 1, State.RUNNING, trigger_id="bf-1")])

    by_bf1 = await store.active_states_by_trigger("bf-1")
    assert [s.workflow_instance for s in by_bf1] == [runs[2][0], runs[1][0], runs[0][0]]
    assert by_bf1[2].state is State.RUNNING
    assert [s.workflow_instance for s in await store.active_states_by_trigger("bf-2")] == [runs[3][0]]

    await store.commit([step(runs[1][0], 1, State.ERROR, trigger_id="bf-1")])
    assert [s.workflow_instance for s in await store.active_states_by_trigger("bf-1")] == [runs[2][0], runs[0][0]]
    assert await store.active_states_by_trigger("bf-3") == []

    # The index follows the latest snapshot, even if a transition changed the trigger id.
    await store.commit([step(runs[2][0], 1, State.RUNNING, trigger_id="bf-3")])
    assert [s.workflow_instance for s in await store.active_states_by_trigger("bf-1")] == [runs[0][0]]
    assert [s.workflow_instance for s in await store.active_states_by_trigger("bf-3")] == [runs[2][0]]


# -- ids ----------------------------------------------------------------------------------------------------

# Pairs that a `component#workflow#parameter` key would confuse, path and glob characters, unicode, long ids.
ODD_INSTANCES = [
    ("a#b", "c", "p"),
    ("a", "b#c", "p"),
    ("a", "b", "c#p"),
    ("a", "b#c#p", ""),
    ("../..", "/etc", ".."),
    ("*", "?", "[a-z]"),
    ('"quoted"', "back\\slash", "new\nline"),
    ("ünïcødé ☃", "工作流", "παράμετρος"),
    ("x" * 1000, "y" * 1000, "z" * 1000),
]


async def test_odd_ids_round_trip_and_never_collide(store: Store) -> None:
    transitions = [
        step(instance(p, c, w), 0, insert=True, note=f"#{n}", trigger_id=f"{p}#{n}")
        for n, (c, w, p) in enumerate(ODD_INSTANCES)
    ]
    assert await store.commit(transitions) == [True] * len(transitions)

    for transition in transitions:
        wfi = transition.instance
        assert await store.active_state(wfi) == transition.state
        assert await store.events(wfi) == [as_event(transition)]
        assert await store.latest_event_counter(wfi) == 0
        assert await store.instance_parameters(wfi.workflow_id) == [wfi.parameter]
        assert await store.active_states_by_trigger(transition.state.data.trigger_id) == [transition.state]
        assert await store.active_states(wfi.component_id, wfi.workflow_id.id) == [transition.state]
        same_component = [t.state for t in transitions if t.instance.component_id == wfi.component_id]
        assert await store.active_states(wfi.component_id) == sorted(
            same_component, key=lambda s: (s.workflow_instance.workflow_id.id, s.workflow_instance.parameter)
        )
    assert len(await store.active_states()) == len(transitions)

    for component, workflow_id, _ in ODD_INSTANCES:
        await store.put_workflow(workflow(component, workflow_id), WorkflowState(enabled=component == "a#b"))
    for component, workflow_id, _ in ODD_INSTANCES:
        found = await store.get_workflow(WorkflowId(component_id=component, id=workflow_id))
        assert found == (workflow(component, workflow_id), WorkflowState(enabled=component == "a#b"))
    assert len(await store.workflows()) == len(ODD_INSTANCES)
    assert [wf.workflow_id for wf, _ in await store.workflows("a")] == ["b", "b#c", "b#c#p"]
    assert await store.delete_workflow(WorkflowId(component_id="a", id="b#c")) is True
    assert await store.get_workflow(WorkflowId(component_id="a#b", id="c")) is not None

    odd_ids = ["a#b", "a", "../x", "ünï ☃", "r" * 1000, "*"]
    for number, odd_id in enumerate(odd_ids):
        await store.put_resource(Resource(id=odd_id, concurrency=number))
        await store.put_backfill(backfill(odd_id, odd_id, odd_id, concurrency=number))
    for number, odd_id in enumerate(odd_ids):
        assert await store.get_resource(odd_id) == Resource(id=odd_id, concurrency=number)
        assert (await store.get_backfill(odd_id)).concurrency == number
        assert [b.id for b in await store.backfills(odd_id, odd_id)] == [odd_id]
    assert [r.id for r in await store.resources()] == sorted(odd_ids)


# -- execution output ---------------------------------------------------------------------------------------

DAY_MILLIS = 86_400_000


def wall_clock_millis() -> int:
    return time.time_ns() // 1_000_000


def kept(
    wfi: WorkflowInstance,
    execution_id: str,
    text: str = "ran\n",
    ended_at: int = 1_000,
    expires_in: int | None = DAY_MILLIS,
) -> ExecutionOutput:
    """An output of `execution_id` expiring `expires_in` ms from now (None: never)."""
    expires_at = None if expires_in is None else wall_clock_millis() + expires_in
    return ExecutionOutput(wfi, execution_id, ended_at, text, expires_at)


async def test_an_execution_output_round_trips_and_a_second_put_replaces_it(store: Store) -> None:
    wfi = instance()
    large = "é" * (128 * 1024) + "\x00\t\r\n\u2603 end"  # 256 KiB of two-byte characters, control characters
    first = kept(wfi, "styx-run-1", large, expires_in=None)
    await store.put_execution_output(first)
    assert await store.execution_output(wfi, "styx-run-1") == first
    assert first.size == 256 * 1024 + len(" end") + 7

    replaced = kept(wfi, "styx-run-1", "second capture", ended_at=2_000)
    await store.put_execution_output(replaced)
    assert await store.execution_output(wfi, "styx-run-1") == replaced
    assert await store.execution_outputs(wfi) == [OutputSummary("styx-run-1", 2_000, len("second capture"))]
    assert await store.execution_output(wfi, "styx-run-2") is None
    assert await store.execution_output(instance("2016-03-15"), "styx-run-1") is None  # another instance's


async def test_execution_outputs_list_an_instances_outputs_by_end_time(store: Store) -> None:
    wfi, other = instance(), instance("2016-03-15")
    for output in [
        kept(wfi, "styx-run-b", "☃", ended_at=3_000),
        kept(wfi, "styx-run-c", "", ended_at=1_000),
        kept(wfi, "styx-run-a", "two\n", ended_at=3_000, expires_in=None),
        kept(other, "styx-run-d", ended_at=500),
    ]:
        await store.put_execution_output(output)
    assert await store.execution_outputs(wfi) == [
        OutputSummary("styx-run-c", 1_000, 0),
        OutputSummary("styx-run-a", 3_000, 4),  # same end time: by execution id
        OutputSummary("styx-run-b", 3_000, 3),  # sizes in bytes of UTF-8
    ]
    assert [summary.execution_id for summary in await store.execution_outputs(other)] == ["styx-run-d"]
    assert await store.execution_outputs(instance("2016-03-16")) == []


async def test_an_expired_output_is_gone_and_the_others_stay(store: Store) -> None:
    wfi = instance()
    await store.put_execution_output(kept(wfi, "styx-run-forever", expires_in=None))
    await store.put_execution_output(kept(wfi, "styx-run-month", ended_at=2_000, expires_in=30 * DAY_MILLIS))
    await store.put_execution_output(kept(wfi, "styx-run-brief", ended_at=3_000, expires_in=300))
    await store.put_execution_output(kept(wfi, "styx-run-expired", ended_at=4_000, expires_in=-1_000))
    assert await store.execution_output(wfi, "styx-run-expired") is None
    listed = [summary.execution_id for summary in await store.execution_outputs(wfi)]
    assert listed == ["styx-run-forever", "styx-run-month", "styx-run-brief"]

    async def brief_expired() -> bool:
        return await store.execution_output(wfi, "styx-run-brief") is None

    await wait_until(brief_expired, timeout=10, message="the brief output to expire")
    assert [s.execution_id for s in await store.execution_outputs(wfi)] == ["styx-run-forever", "styx-run-month"]
    assert await store.delete_expired_outputs(100) in (0, 2)  # Redis deleted them itself; SQLite does here
    assert await store.delete_expired_outputs(100) == 0
    assert [s.execution_id for s in await store.execution_outputs(wfi)] == ["styx-run-forever", "styx-run-month"]
    assert (await store.execution_output(wfi, "styx-run-forever")).expires_at is None


async def test_outputs_of_odd_ids_never_collide(store: Store) -> None:
    outputs = [
        kept(instance(p, c, w), f"{c}/{p}", f"output {n}", ended_at=n) for n, (c, w, p) in enumerate(ODD_INSTANCES)
    ]
    for output in outputs:
        await store.put_execution_output(output)
    for output in outputs:
        assert await store.execution_output(output.instance, output.execution_id) == output
        assert await store.execution_outputs(output.instance) == [
            OutputSummary(output.execution_id, output.ended_at, output.size)
        ]


async def test_sqlite_deletes_expired_outputs_in_bounded_batches(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    try:
        wfi = instance()
        for number in range(5):
            await store.put_execution_output(kept(wfi, f"styx-run-expired-{number}", expires_in=-1))
        await store.put_execution_output(kept(wfi, "styx-run-live"))
        assert [await store.delete_expired_outputs(2) for _ in range(4)] == [2, 2, 1, 0]
        assert [s.execution_id for s in await store.execution_outputs(wfi)] == ["styx-run-live"]
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "styx.db") as db:  # deleted, not only hidden
        assert db.execute("SELECT execution_id FROM outputs").fetchall() == [("styx-run-live",)]


async def test_a_version_1_sqlite_file_gets_the_outputs_table_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "styx.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as db:  # what the previous version left: no outputs table
        db.executescript("DROP TABLE outputs; PRAGMA user_version = 1;")
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        output = kept(instance(), "styx-run-1")
        await reopened.put_execution_output(output)
        assert await reopened.execution_output(output.instance, "styx-run-1") == output
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


@pytest.mark.redis
async def test_redis_output_keys_expire_with_their_output_and_the_index_with_the_last(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}")
    await store.open()
    client = AsyncRedis.from_url(redis_url)
    try:
        wfi = instance()
        index = store.keys.outputs(wfi)
        await store.put_execution_output(kept(wfi, "styx-run-day", expires_in=DAY_MILLIS))
        await store.put_execution_output(kept(wfi, "styx-run-hour", expires_in=3_600_000))
        assert 3_500_000 < await client.pttl(store.keys.output(wfi, "styx-run-hour")) <= 3_600_000
        assert DAY_MILLIS - 100_000 < await client.pttl(index) <= DAY_MILLIS  # the longest-kept output's
        await store.put_execution_output(kept(wfi, "styx-run-forever", expires_in=None))
        assert await client.pttl(store.keys.output(wfi, "styx-run-forever")) == -1
        assert await client.pttl(index) == -1  # it lists an output kept forever
        await store.put_execution_output(kept(wfi, "styx-run-minute", expires_in=60_000))
        assert await client.pttl(index) == -1
    finally:
        await client.aclose()
        await store.close()
        with redis.Redis.from_url(redis_url) as sync_client:
            for key in sync_client.scan_iter(match=f"{store.keys.prefix}:*"):
                sync_client.delete(key)


# -- lifecycle and backends ---------------------------------------------------------------------------------


async def test_sqlite_store_reopened_from_its_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "styx.db"
    wfi = instance()
    steps = [step(wfi, 0, insert=True, trigger_id="bf"), step(wfi, 1, State.RUNNING, trigger_id="bf")]
    ended = instance("ended")
    first = SqliteStore(path)
    await first.open()
    await first.put_workflow(workflow(), WorkflowState(enabled=True))
    await first.put_resource(Resource(id="r", concurrency=3))
    await first.put_backfill(backfill("bf", "c", "w"))
    await first.put_config(GlobalConfig(enabled=False))
    await first.commit([*steps, step(ended, 0, insert=True), step(ended, 1, State.DONE)])
    await first.close()

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await reopened.get_workflow(WorkflowId(component_id="c", id="w")) == (
            workflow(),
            WorkflowState(enabled=True),
        )
        assert await reopened.resources() == [Resource(id="r", concurrency=3)]
        assert await reopened.backfills() == [backfill("bf", "c", "w")]
        assert await reopened.get_config() == GlobalConfig(enabled=False)
        assert await reopened.active_states() == [steps[1].state]
        assert await reopened.active_states_by_trigger("bf") == [steps[1].state]
        assert await reopened.events(wfi) == [as_event(t) for t in steps]
        assert await reopened.latest_event_counter(ended) == 1
        assert await reopened.instance_parameters(wfi.workflow_id) == ["2016-03-14", "ended"]
        assert await reopened.commit([step(wfi, 1, State.DONE)]) == [False]  # counters survived too
    finally:
        await reopened.close()


async def test_sqlite_store_on_an_unusable_path_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="SQLite store"):
        await SqliteStore(tmp_path).open()  # a directory, not a database file


async def test_redis_store_with_nothing_listening_raises_store_error() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreError, match="Redis store"):
        await store.open()


async def test_a_store_that_is_not_open_raises_store_error(backend: Backend) -> None:
    with pytest.raises(StoreError, match="not open"):
        await backend.make().get_config()


@pytest.mark.redis
async def test_redis_prefixes_keep_stores_apart(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    mine, neighbour = open_store(f"{redis_url}?prefix={prefix}"), RedisStore(redis_url, prefix=f"{prefix}-b")
    await mine.open()
    await neighbour.open()
    try:
        wfi = instance()
        await mine.commit([step(wfi, 0, insert=True)])
        await mine.put_workflow(workflow(), WorkflowState())
        await mine.put_resource(Resource(id="r", concurrency=1))
        await mine.put_backfill(backfill("bf", "c", "w"))
        await mine.put_config(GlobalConfig(enabled=False))

        assert await neighbour.active_states() == []
        assert await neighbour.events(wfi) == []
        assert await neighbour.latest_event_counter(wfi) == -1
        assert await neighbour.instance_parameters(wfi.workflow_id) == []
        assert await neighbour.workflows() == []
        assert await neighbour.resources() == []
        assert await neighbour.backfills() == []
        assert await neighbour.get_config() == GlobalConfig()
        assert await neighbour.commit([step(wfi, 0, insert=True)]) == [True]  # its own, separate instance
    finally:
        await mine.close()
        await neighbour.close()
        with redis.Redis.from_url(redis_url) as client:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)


def test_open_store_picks_the_backend_from_the_url() -> None:
    file_store = open_store("sqlite:////var/lib/styx/styx.db")
    assert isinstance(file_store, SqliteStore) and file_store.path == "/var/lib/styx/styx.db"
    assert open_store("sqlite:///data/styx.db").path == "data/styx.db"
    for memory_url in ("sqlite://:memory:", "sqlite://", "sqlite:///:memory:"):
        assert open_store(memory_url).path == MEMORY
    redis_store = open_store("redis://127.0.0.1:6379/2?prefix=team-a")
    assert isinstance(redis_store, RedisStore) and redis_store.keys.prefix == "team-a"
    assert open_store("redis://127.0.0.1:6379/2").keys.prefix == "styx"
    for bad_url in ("postgres://u:secret@db/styx", "styx.db", "redis://h/0?prefix="):
        with pytest.raises(ValueError) as raised:
            open_store(bad_url)
        assert "secret" not in str(raised.value)


async def test_in_memory_sqlite_store_works() -> None:
    store = open_store("sqlite://:memory:")
    await store.open()
    try:
        assert await store.commit([step(instance(), 0, insert=True)]) == [True]
        assert len(await store.active_states()) == 1
    finally:
        await store.close()


def test_a_process_that_never_closes_its_sqlite_store_still_exits(tmp_path: Path) -> None:
    """A Ray actor killed by `ray.kill` exits without closing its store; it must not linger as an orphan
    waiting for aiosqlite's worker thread."""
    script = (
        "import asyncio\n"
        "from styx_actors.store.sqlite import SqliteStore\n"
        f"store = SqliteStore({str(tmp_path / 'styx.db')!r})  # held to the end, as by the actor\n"
        "asyncio.run(store.open())\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], timeout=20, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
