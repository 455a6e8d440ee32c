"""InstanceShard hosting InstanceActors, driven directly (no Ray, no HTTP): a temp SQLite store, a ManualClock,
the noop runner (or `HeldRunner`, whose executions keep running until told, where an instance must stay put).

Covers: a trigger running an instance QUEUED -> PREPARE -> SUBMITTING -> SUBMITTED -> RUNNING -> TERMINATED ->
DONE with its events stored in order under consecutive counters; a re-trigger continuing the counter; a second
trigger refused (AlreadyActive, Conflict through the router); an illegal event refused with IllegalTransition
and nothing changed; the running timeout and the retry delay firing only once the clock reaches them; a retry
whose request for permits failed asking again on the next reconcile tick; a handler not run again by ticks while
its answer waits in the commit backlog; a halt (container stopped, permit
handed to the next waiter); group commit of concurrent triggers; a failed commit retried; recovery of an
active instance by a new shard.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.local import load_resource_limits
from styx_actors.actors.placement import Sharded
from styx_actors.actors.ports import ALREADY_TRIGGERED, local_broker
from styx_actors.actors.resources import Granted, limit_reached_message
from styx_actors.actors.shard import AlreadyActive, InstanceShard
from styx_actors.clock import ManualClock, now_millis
from styx_actors.errors import Conflict
from styx_actors.events import Halt, Submit, Success, event_from_json
from styx_actors.model import Message, Resource, RunState, State, Trigger, TriggerParameters, WorkflowInstance
from styx_actors.runners.noop import NoopRunner
from styx_actors.state_machine import IllegalTransition
from styx_actors.timeutil import from_millis
from tests.conftest import wait_until
from tests.unit.actor_fixtures import (
    Finishes,
    HeldRunner,
    ProbedStore,
    ShardFactory,
    ShardHost,
    event_log,
    event_names,
    instance,
    put_workflow,
    start_shard,  # noqa: F401 - fixture
    store,  # noqa: F401 - fixture
    trigger_adhoc,
    unit_settings,
    wait_inactive,
    wait_state,
    workflow,
)

NOOP_RUN = ["triggerExecution", "dequeue", "submit", "submitted", "started", "terminate", "success"]


async def running(
    store: ProbedStore, start_shard: ShardFactory, **configuration: object
) -> tuple[ShardHost, HeldRunner, WorkflowInstance, RunState]:
    """A shard with a HeldRunner and one instance RUNNING in it: (host, runner, instance, its RUNNING state)."""
    await put_workflow(store, workflow(**configuration))
    runner = HeldRunner()
    host = await start_shard(runner)
    wfi = instance("2016-03-14T12")
    await trigger_adhoc(host, wfi)
    state = await wait_state(host.shard, wfi, State.RUNNING)
    return host, runner, wfi, state


async def test_a_trigger_runs_the_instance_to_done_with_events_in_counter_order(
    store: ProbedStore, start_shard: ShardFactory, clock: ManualClock
) -> None:
    await put_workflow(store)
    host = await start_shard()
    wfi = instance("2016-03-14T12")

    queued = await host.shard.trigger(wfi, Trigger.adhoc("adhoc-1"), TriggerParameters(env={"A": "b"}))

    assert (queued.state, queued.counter, queued.data.trigger_id) == (State.QUEUED, 0, "adhoc-1")
    assert await wait_inactive(store, wfi) == NOOP_RUN
    assert store.committed_states(wfi) == [
        State.QUEUED,
        State.PREPARE,
        State.SUBMITTING,
        State.SUBMITTED,
        State.RUNNING,
        State.TERMINATED,
        State.DONE,
    ]
    stored = await store.events(wfi)
    assert [e.counter for e in stored] == list(range(7))
    assert {e.timestamp for e in stored} == {now_millis(clock)}  # the ManualClock's time, never the wall clock's
    submit = event_from_json(stored[2].event_json)[0]
    assert isinstance(submit, Submit) and submit.execution_description.env == {"A": "b"}
    assert isinstance(host.runner, NoopRunner)
    assert set(await host.runner.owned_executions()) == {submit.execution_id}
    # A finished instance leaves the shard and the store's active snapshots; its listener hears of it once.
    assert host.shard.state_of(wfi) is None and host.shard.active_count() == 0
    assert await store.active_state(wfi) is None
    assert host.finishes.seen == [(wfi, "adhoc-1", State.DONE)]
    assert host.shard.stats()["trigger:adhoc"] == 1 and host.shard.stats()["transition:success"] == 1


async def test_a_trigger_of_a_finished_instance_continues_its_counter(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    wfi = instance("2016-03-14T12")
    await trigger_adhoc(host, wfi, "first")
    await wait_inactive(store, wfi)

    again = await trigger_adhoc(host, wfi, "second")

    assert (again.state, again.counter) == (State.QUEUED, 7)
    await wait_until(lambda: len(host.finishes.seen) == 2, timeout=5, message="the second run to finish")
    assert await event_log(store, wfi) == list(enumerate(NOOP_RUN + NOOP_RUN))
    assert [trigger_id for _, trigger_id, _ in host.finishes.seen] == ["first", "second"]


async def test_concurrent_triggers_of_one_instance_activate_it_once(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    wfi = instance("2016-03-14T12")

    outcomes = await asyncio.gather(
        trigger_adhoc(host, wfi, "a"), trigger_adhoc(host, wfi, "b"), return_exceptions=True
    )

    assert isinstance(outcomes[0], RunState) and isinstance(outcomes[1], AlreadyActive)
    assert await wait_inactive(store, wfi) == NOOP_RUN  # one run, one triggerExecution


async def test_triggering_an_active_instance_is_refused_and_changes_nothing(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    host, _, wfi, state = await running(store, start_shard)
    log_before = await event_log(store, wfi)

    with pytest.raises(AlreadyActive):
        await trigger_adhoc(host, wfi, "again")
    with pytest.raises(Conflict) as refused:  # what the API gets, through the router
        await host.router.trigger(wfi, Trigger.adhoc("again"), TriggerParameters())

    assert refused.value.message == ALREADY_TRIGGERED and refused.value.status_code == 409
    assert host.shard.state_of(wfi) == state
    assert await event_log(store, wfi) == log_before


async def test_an_illegal_event_is_refused_and_changes_nothing(store: ProbedStore, start_shard: ShardFactory) -> None:
    host, runner, wfi, state = await running(store, start_shard)
    log_before = await event_log(store, wfi)
    snapshot_before = await store.active_state(wfi)

    with pytest.raises(IllegalTransition) as refused:
        await host.shard.send(wfi, Success())  # success only follows TERMINATED

    assert (refused.value.state, refused.value.event_name) == (State.RUNNING, "success")
    assert str(refused.value) == f"{wfi.key()} received success while in RUNNING"
    assert host.shard.state_of(wfi) == state
    assert await store.active_state(wfi) == snapshot_before
    assert await event_log(store, wfi) == log_before
    # The actor is not wedged by the refusal: the execution's exit still takes it to DONE.
    runner.exit(state.data.execution_id, 0)
    assert (await wait_inactive(store, wfi))[-3:] == ["started", "terminate", "success"]


async def test_an_event_for_an_instance_that_is_not_active_is_ignored(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    wfi = instance("2016-03-14T12")
    assert await host.shard.send(wfi, Halt()) is None
    await trigger_adhoc(host, wfi)
    await wait_inactive(store, wfi)

    assert await host.shard.send(wfi, Halt()) is None  # halting a DONE instance writes nothing
    assert await event_names(store, wfi) == NOOP_RUN


async def test_the_running_timeout_fires_once_the_clock_reaches_it(
    store: ProbedStore, start_shard: ShardFactory, clock: ManualClock
) -> None:
    host, runner, wfi, state = await running(store, start_shard, running_timeout="PT1H")
    deadline = state.timestamp + 3_600_000  # the workflow's running timeout, not the 24 h RUNNING default

    clock.set(from_millis(deadline - 1))
    host.shard.fire_due_timers()
    # The mailbox is FIFO: an event sent now is handled after any timeout the timers queued.
    with pytest.raises(IllegalTransition) as barrier:
        await host.shard.send(wfi, Success())
    assert barrier.value.state is State.RUNNING

    clock.set(from_millis(deadline))  # the shard's timer loop fires it
    await wait_until(lambda: runner.stopped, timeout=5, message="the execution to be stopped")
    assert runner.stopped == [state.data.execution_id]  # a timed-out container must not keep running
    queued = await wait_state(host.shard, wfi, State.QUEUED)  # then the retry policy sends it back
    assert (await event_names(store, wfi))[-3:] == ["started", "timeout", "retryAfter"]
    timeout_event = (await store.events(wfi))[-2]
    assert (timeout_event.counter, timeout_event.timestamp) == (state.counter + 1, deadline)
    assert queued.data.retry_delay_millis and queued.data.execution_id is None


async def test_a_retry_delay_is_waited_out_on_the_clock(
    store: ProbedStore, start_shard: ShardFactory, clock: ManualClock
) -> None:
    host, runner, wfi, state = await running(store, start_shard)
    runner.exit(state.data.execution_id, 1)
    queued = await wait_state(host.shard, wfi, State.QUEUED)
    delay = queued.data.retry_delay_millis
    assert delay == 180_000  # the first failure waits the base delay (STYX_RETRY_BASE_DELAY)
    assert (await event_names(store, wfi))[-2:] == ["terminate", "retryAfter"]

    clock.set(from_millis(queued.timestamp + delay - 1))
    host.shard.fire_due_timers()
    host.shard.granted(wfi.key(), ())  # a grant within the delay is refused too, synchronously
    with pytest.raises(IllegalTransition) as barrier:
        await host.shard.send(wfi, Success())
    assert barrier.value.state is State.QUEUED and host.shard.state_of(wfi) == queued

    clock.set(from_millis(queued.timestamp + delay))
    second = await wait_state(host.shard, wfi, State.RUNNING)
    assert second.data.tries == 2 and len(runner.started) == 2
    assert (await event_names(store, wfi))[-5:] == ["retryAfter", "dequeue", "submit", "submitted", "started"]
    dequeue = (await store.events(wfi))[-4]
    assert dequeue.timestamp == queued.timestamp + delay


class AwayBroker(BrokerHost):
    """A broker whose next `away` acquires fail, as calls to a broker actor that is being restarted do."""

    def __init__(self) -> None:
        super().__init__(on_granted=lambda holder, ids: None)  # the tests below are granted at once, or not at all
        self.away = 0

    async def acquire(self, *arguments: Any) -> Any:  # type: ignore[override]
        if self.away:
            self.away -= 1
            raise ConnectionError("the broker is away")
        return await super().acquire(*arguments)


async def test_a_retry_whose_request_for_permits_failed_asks_again_on_the_next_reconcile_tick(
    store: ProbedStore, start_shard: ShardFactory, clock: ManualClock
) -> None:
    """Regression of the chaos run of seed 27 (docs/reliability.md): the `dequeue` timer at the end of a retry
    delay asked the broker while the store and the broker were away; the request failed, and reconcile ticks
    skipped QUEUED instances that had a retry delay, so the instance stayed QUEUED for good."""
    await store.put_resource(Resource(id="r", concurrency=1))
    await put_workflow(store, workflow(resources=["r"]))
    broker = AwayBroker()
    await load_resource_limits(broker.broker, store)
    runner = HeldRunner()
    host = await start_shard(runner, broker=broker)
    wfi = instance("2016-03-14T12")
    await trigger_adhoc(host, wfi)
    first = await wait_state(host.shard, wfi, State.RUNNING)
    runner.exit(first.data.execution_id, 1)
    queued = await wait_state(host.shard, wfi, State.QUEUED)
    due = queued.retry_due_millis()
    assert due is not None

    broker.away = 1
    clock.set(from_millis(due))  # the timer fires, and its request fails
    await wait_until(lambda: broker.away == 0, timeout=5, message="the timer's request to fail")
    assert host.shard.state_of(wfi) == queued

    async def dequeued_by_a_tick() -> bool:
        await host.shard.reconcile()
        return host.shard.state_of(wfi).state is not State.QUEUED

    await wait_until(dequeued_by_a_tick, timeout=5, message="a reconcile tick to ask for the permits again")
    await wait_state(host.shard, wfi, State.RUNNING)
    assert len(runner.started) == 2 and broker.holders("r") == {wfi.key()}
    assert (await event_names(store, wfi))[-5:] == ["retryAfter", "dequeue", "submit", "submitted", "started"]


async def test_reconcile_ticks_leave_a_handler_alone_while_its_answer_waits_to_be_committed(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    """docs/performance.md, "Toward 100,000": a handler used to end once it had *told* its answer, so under a
    commit backlog every tick ran it again for each instance whose answer was still waiting (another workflow
    read, another stale event), and the work grew with the backlog: a burst of 100,000 stalled."""
    await put_workflow(store)
    store.held_state = State.SUBMITTING  # PREPARE's answer (submit) waits in the commit backlog
    host = await start_shard()
    wfi = instance("2016-03-14T12")
    await trigger_adhoc(host, wfi)
    await wait_until(lambda: store.holding, timeout=5, message="the submit to wait to be committed")

    for _ in range(3):
        await host.shard.reconcile()
    store.held.set()

    assert await wait_inactive(store, wfi) == NOOP_RUN
    # With the tests' workflow cache off, a run reads its workflow four times: QUEUED's request for permits,
    # PREPARE's description, RUNNING's timeout and the retry decision. No tick ran PREPARE's handler again.
    assert store.workflow_reads == 4


async def test_a_halt_stops_the_execution_and_hands_its_permit_to_the_next_waiter(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await store.put_resource(Resource(id="r", concurrency=1))
    await put_workflow(store, workflow(resources=["r"]))
    runner = HeldRunner()
    host = await start_shard(runner)
    first, second = instance("2016-03-14T12"), instance("2016-03-14T13")
    await trigger_adhoc(host, first)
    holding = await wait_state(host.shard, first, State.RUNNING)
    await trigger_adhoc(host, second)
    waiting = Message.info(limit_reached_message(["r"]))
    await wait_until(
        lambda: host.shard.state_of(second).data.last_message() == waiting, timeout=5, message="the wait message"
    )

    halted = await host.shard.send(first, Halt())

    assert halted is not None and halted.state is State.ERROR
    assert (await event_names(store, first))[-1] == "halt"
    assert await store.active_state(first) is None and host.shard.state_of(first) is None
    assert host.finishes.seen == [(first, "adhoc-1", State.ERROR)]
    await wait_until(lambda: runner.stopped, timeout=5, message="the halted execution to be stopped")
    assert runner.stopped == [holding.data.execution_id]
    await wait_state(host.shard, second, State.RUNNING)  # the freed permit went to the waiter
    assert host.broker.holders("r") == {second.key()}
    assert await host.shard.send(first, Halt()) is None  # a halted instance is no longer active


class GatedBroker(BrokerHost):
    """A broker whose grants go to the latest shard, and whose next restore_holders waits until the test opens
    the gate: the moment a restarted shard's report is on its way."""

    def __init__(self) -> None:
        self.shards: list[InstanceShard] = []
        super().__init__(on_granted=lambda holder, ids: self.shards[-1].granted(holder, ids))
        self.gate: asyncio.Event | None = None
        self.report_arrived = asyncio.Event()

    async def restore_holders(self, *arguments: Any) -> None:  # type: ignore[override]
        if self.gate is not None:
            self.report_arrived.set()
            await self.gate.wait()
        super().restore_holders(*arguments)


async def test_a_grant_made_while_a_restarted_shards_report_travels_keeps_its_permit_counted(
    store: ProbedStore, start_shard: ShardFactory, tmp_path: Path, clock: ManualClock
) -> None:
    """Regression of the chaos run of seed 23 (docs/reliability.md): the broker granted a waiter of a shard
    that had restarted, after the shard made its report of holders and before the broker read it. The report
    did not list the waiter, the broker gave its permit back as one lost with the dead shard, and the waiter
    ran anyway: three containers of a resource of concurrency 2."""
    await store.put_resource(Resource(id="r", concurrency=2))
    await put_workflow(store, workflow(resources=["r"]))
    broker = GatedBroker()
    await load_resource_limits(broker.broker, store)
    runner = HeldRunner()
    first = await start_shard(runner, broker=broker)
    broker.shards.append(first.shard)
    running, waiting, later = instance("2016-03-14T10"), instance("2016-03-14T11"), instance("2016-03-14T12")
    ending = "unit#hourly#ending"  # a holder about to give its permit back (an instance of another shard)
    assert broker.broker.acquire(ending, "unit#hourly", "0", ["r"]) == Granted(("r",))
    await trigger_adhoc(first, running)
    await wait_state(first.shard, running, State.RUNNING)
    await trigger_adhoc(first, waiting)
    await wait_until(lambda: broker.broker.waiting_count() == 1, timeout=5, message="the waiter to queue")
    await first.shard.stop()  # killed: the broker lives on
    runner.detach()

    broker.gate = asyncio.Event()
    second = InstanceShard(
        Sharded(0, 1), store, runner, local_broker(broker), unit_settings(tmp_path), clock, Finishes(), random.Random(7)
    )
    broker.shards.append(second)
    restarting = asyncio.create_task(second.start())
    try:
        await broker.report_arrived.wait()  # the new shard has made its report (`waiting` is QUEUED in it)
        broker.broker.release(ending)  # `waiting` is granted now, before the broker reads the report
        await wait_state(second, waiting, State.RUNNING)  # and runs
        broker.gate.set()
        await restarting

        await second.trigger(later, Trigger.adhoc("adhoc-2"), TriggerParameters())
        wait_message = Message.info(limit_reached_message(["r"]))
        await wait_until(lambda: second.state_of(later).data.last_message() == wait_message, timeout=5)
        assert broker.holders("r") == {running.key(), waiting.key()}
        consuming = [wfi for wfi in (running, waiting, later) if second.state_of(wfi).state.consumes_resources]
        assert consuming == [running, waiting]
    finally:
        await second.stop()


async def test_concurrent_triggers_are_committed_together_each_under_its_own_counter(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    instances = [instance(f"2016-03-{day:02d}T00") for day in range(1, 21)]

    states = await asyncio.gather(*(trigger_adhoc(host, wfi) for wfi in instances))

    assert [(s.workflow_instance, s.state, s.counter) for s in states] == [(i, State.QUEUED, 0) for i in instances]
    inserts = [[t.instance for t in batch if t.insert] for batch in store.commits]
    assert sorted(instances, key=str) in [sorted(batch, key=str) for batch in inserts]  # one store call for all
    for wfi in instances:
        assert await wait_inactive(store, wfi) == NOOP_RUN


async def test_a_failed_commit_is_retried_and_every_event_is_stored_once(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    wfi = instance("2016-03-14T12")
    store.failing_commits = 2  # the insert fails twice, then the store is back

    queued = await trigger_adhoc(host, wfi)

    assert (queued.state, queued.counter) == (State.QUEUED, 0)
    assert store.failing_commits == 0
    assert await wait_inactive(store, wfi) == NOOP_RUN
    assert [e.counter for e in await store.events(wfi)] == list(range(7))


async def test_a_new_shard_recovers_an_active_instance_from_its_snapshot(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    old, runner, wfi, state = await running(store, start_shard)
    await old.shard.stop()
    runner.detach()  # the old process is gone: it hears nothing more

    new = await start_shard(runner)

    assert new.shard.active_count() == 1 and new.shard.state_of(wfi) == state == await store.active_state(wfi)
    runner.exit(state.data.execution_id, 0)
    assert await wait_inactive(store, wfi) == NOOP_RUN
    assert new.finishes.seen == [(wfi, "adhoc-1", State.DONE)] and old.finishes.seen == []
