"""BackfillDriver (styx_actors/actors/backfill.py) driven directly over a temp SQLite store: the partitions it
triggers go to a recording trigger function, or through a real InstanceShard (noop runner, or `HeldRunner` to
keep instances active) when the instances' event logs matter.

Covers: a round triggers at most `concurrency` partitions and persists the cursor past them; a finished
instance frees its slot; the last round marks the backfill all-triggered; `max_triggers` caps a pump; reverse
backfills walk from the end back to the start; already-active partitions are skipped without taking a slot; a
failed trigger holds the cursor and is retried; a backfill whose workflow is gone halts. And the crash window
between a round's triggers and its cursor write: a new driver over the same store must not trigger those
partitions again, whether their instances finished or are still active, after a whole round or part of one;
its guard (the partitions of the next round that carry a trigger of this backfill in their event log are
stepped over) must not skip a partition only triggered by something else.

One xfail(strict) test records where that guarantee does not hold (see its reason).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

import pytest

from styx_actors.actors.backfill import BackfillDriver, BackfillDrivers
from styx_actors.actors.natural import TriggerFn
from styx_actors.actors.ports import ALREADY_TRIGGERED
from styx_actors.errors import Conflict, Unavailable
from styx_actors.events import Halt
from styx_actors.model import Backfill, State, Trigger, TriggerParameters, WorkflowInstance
from styx_actors.schedule import Schedule
from tests.conftest import wait_until
from tests.unit.actor_fixtures import (
    WORKFLOW,
    HeldRunner,
    ProbedStore,
    ProcessStopped,
    ShardFactory,
    at,
    instance,
    put_workflow,
    start_shard,  # noqa: F401 - fixture
    store,  # noqa: F401 - fixture
    trigger_count,
    wait_inactive,
    wait_state,
)

HOURS = Schedule.parse("hours")


def p(hour: int) -> str:
    """The parameter of the hourly partition at `hour` on the test day."""
    return f"2016-03-14T{hour:02d}"


def backfill(concurrency: int, start: datetime = at(12), end: datetime = at(16), reverse: bool = False) -> Backfill:
    """A backfill of the hourly workflow as `Commands.create_backfill` makes one, created at the clock's time."""
    return Backfill(
        id="backfill-1",
        start=start,
        end=end,
        workflow_id=WORKFLOW,
        concurrency=concurrency,
        next_trigger=HOURS.previous(end) if reverse else start,
        schedule="hours",
        reverse=reverse,
        created=at(15, 30),
        last_modified=at(15, 30),
    )


class Triggers:
    """The trigger function a driver calls: records every call, and fails, refuses or stalls on demand; a
    call that does none of these triggers through `forward` (a shard's router) or only counts as done."""

    def __init__(self, forward: TriggerFn | None = None) -> None:
        self.forward = forward
        self.calls: list[str] = []  # parameters, in call order
        self.triggers: set[Trigger] = set()  # the triggers the calls carried
        self.triggered: list[str] = []  # the calls that triggered
        self.failures: Counter[str] = Counter()  # parameter -> how many more calls fail (Unavailable)
        self.already_active: set[str] = set()  # refused with Conflict, as the router refuses an active one
        self.stalled: set[str] = set()  # never return: the process stops while they are under way

    async def __call__(self, wfi: WorkflowInstance, trigger: Trigger, parameters: TriggerParameters) -> None:
        parameter = wfi.parameter
        self.calls.append(parameter)
        self.triggers.add(trigger)
        if self.failures[parameter] > 0:
            self.failures[parameter] -= 1
            raise Unavailable("the shard of this instance cannot be reached")
        if parameter in self.already_active:
            raise Conflict(ALREADY_TRIGGERED)
        if parameter in self.stalled:
            await asyncio.Event().wait()
        if self.forward is not None:
            await self.forward(wfi, trigger, parameters)
        self.triggered.append(parameter)


async def started_driver(store: ProbedStore, triggers: Triggers, record: Backfill | None = None) -> BackfillDriver:
    """A driver (as a restarted process makes one) of the stored backfill, or of `record` stored first."""
    if record is not None:
        await store.put_backfill(record)
    stored = await store.get_backfill("backfill-1")
    assert stored is not None
    driver = BackfillDriver(stored, store, triggers)
    await driver.start()
    return driver


async def cursor(store: ProbedStore) -> tuple[datetime, bool]:
    """The stored (next_trigger, all_triggered)."""
    stored = await store.get_backfill("backfill-1")
    assert stored is not None
    return stored.next_trigger, stored.all_triggered


# -- rounds, cursor, concurrency ------------------------------------------------------------------------------


async def test_a_round_triggers_at_most_concurrency_partitions_and_persists_the_cursor_past_them(
    store: ProbedStore,
) -> None:
    await put_workflow(store)
    triggers = Triggers()
    driver = await started_driver(store, triggers, backfill(concurrency=2))

    assert await driver.pump() == 2
    assert triggers.calls == [p(12), p(13)]
    assert await cursor(store) == (at(14), False)
    assert await driver.pump() == 0  # both slots taken
    assert triggers.calls == [p(12), p(13)]

    driver.instance_finished(p(12))
    assert await driver.pump() == 1
    assert triggers.calls[-1] == p(14) and await cursor(store) == (at(15), False)

    driver.instance_finished(p(13))
    driver.instance_finished(p(14))
    assert await driver.pump() == 1  # 15 is the last partition: room is left, nothing more to trigger
    assert await cursor(store) == (at(16), True)
    assert driver.finished
    assert await driver.pump() == 0
    assert triggers.calls == [p(12), p(13), p(14), p(15)]
    assert triggers.triggers == {Trigger.backfill("backfill-1")}


async def test_max_triggers_caps_one_pump(store: ProbedStore) -> None:
    await put_workflow(store)
    triggers = Triggers()
    driver = await started_driver(store, triggers, backfill(concurrency=4))

    assert await driver.pump(max_triggers=1) == 1
    assert await driver.pump(max_triggers=2) == 2
    assert triggers.calls == [p(12), p(13), p(14)]
    assert await cursor(store) == (at(15), False)


async def test_a_reverse_backfill_walks_from_the_end_back_to_the_start(store: ProbedStore) -> None:
    await put_workflow(store)
    triggers = Triggers()
    driver = await started_driver(store, triggers, backfill(concurrency=3, reverse=True))

    assert await driver.pump() == 3
    assert triggers.calls == [p(15), p(14), p(13)]
    assert await cursor(store) == (at(12), False)
    driver.instance_finished(p(15))
    assert await driver.pump() == 1
    assert triggers.calls[-1] == p(12)
    assert await cursor(store) == (at(11), True)  # past the start: done
    assert driver.finished


async def test_already_active_partitions_are_skipped_without_taking_a_slot(store: ProbedStore) -> None:
    await put_workflow(store)
    triggers = Triggers()
    triggers.already_active.add(p(13))
    driver = await started_driver(store, triggers, backfill(concurrency=2))

    assert await driver.pump() == 2
    assert triggers.triggered == [p(12), p(14)]
    assert await cursor(store) == (at(15), False)  # 13 counts as triggered


async def test_a_failed_trigger_holds_the_cursor_and_the_partitions_after_it_run_once(store: ProbedStore) -> None:
    await put_workflow(store)
    triggers = Triggers()
    triggers.failures[p(12)] = 1
    driver = await started_driver(store, triggers, backfill(concurrency=3))

    assert await driver.pump() == 2  # 12 failed, 13 and 14 triggered
    assert await cursor(store) == (at(12), False)
    assert await driver.pump() == 1  # 12 again, in the one free slot
    assert await cursor(store) == (at(13), False)
    driver.instance_finished(p(12))
    driver.instance_finished(p(13))
    assert await driver.pump() == 1  # steps over 13 and 14, triggers 15

    assert triggers.triggered == [p(13), p(14), p(12), p(15)]
    assert await cursor(store) == (at(16), True)


async def test_a_backfill_whose_workflow_is_gone_is_halted(store: ProbedStore) -> None:
    triggers = Triggers()
    driver = await started_driver(store, triggers, backfill(concurrency=2))  # no workflow stored

    assert await driver.pump() == 0
    assert triggers.calls == []
    stored = await store.get_backfill("backfill-1")
    assert stored is not None and stored.halted and driver.finished


async def test_a_partition_triggered_ahead_of_a_failure_is_not_triggered_again_when_that_failure_repeats(
    store: ProbedStore,
) -> None:
    await put_workflow(store)
    triggers = Triggers()
    triggers.failures[p(12)] = 2
    driver = await started_driver(store, triggers, backfill(concurrency=3))

    assert await driver.pump() == 2  # 12 failed; 13 and 14 triggered ahead of the cursor
    driver.instance_finished(p(13))
    driver.instance_finished(p(14))
    assert await driver.pump() == 0  # 12 fails again; 13 and 14 stepped over
    await driver.pump()  # 12 succeeds

    assert [triggers.triggered.count(p(hour)) for hour in (12, 13, 14)] == [1, 1, 1]


# -- the crash window between a round's triggers and its cursor write -------------------------------------------


async def crash_after_triggering(store: ProbedStore, forward: TriggerFn, concurrency: int = 2) -> list[str]:
    """Run a driver whose process stops right after its round's triggers, before the cursor write."""
    triggers = Triggers(forward)
    driver = await started_driver(store, triggers, backfill(concurrency))
    store.stop_at_put_backfill = True
    with pytest.raises(ProcessStopped):
        await driver.pump()
    store.stop_at_put_backfill = False
    assert await cursor(store) == (at(12), False)  # the cursor write never happened
    return triggers.triggered


async def test_after_a_crash_a_new_driver_does_not_trigger_the_finished_round_again(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()  # noop runner: the round's instances run to DONE
    assert await crash_after_triggering(store, host.router.trigger) == [p(12), p(13)]
    for hour in (12, 13):
        await wait_inactive(store, instance(p(hour)))

    triggers = Triggers(host.router.trigger)
    restarted = await started_driver(store, triggers)

    assert await restarted.pump() == 2
    assert triggers.calls == [p(14), p(15)]  # 12 and 13 are stepped over, not even asked for
    assert [await trigger_count(store, instance(p(hour))) for hour in (12, 13, 14, 15)] == [1, 1, 1, 1]
    assert await cursor(store) == (at(16), True)


async def test_after_a_crash_the_still_active_round_keeps_its_slots_and_is_not_triggered_again(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard(HeldRunner())  # the round's instances keep running
    assert await crash_after_triggering(store, host.router.trigger) == [p(12), p(13)]
    await wait_state(host.shard, instance(p(12)), State.RUNNING)
    # The restarted scheduler: its drivers hear of finished instances from the shards, and tick.
    triggers = Triggers(host.router.trigger)
    drivers = BackfillDrivers(store, triggers, max_triggers_per_tick=10)
    host.finishes.listeners.append(lambda wfi, trigger_id, _: drivers.instance_finished(wfi, trigger_id))

    assert await drivers.tick() == 0  # both slots are held by the round of the crash
    assert triggers.calls == []

    halted = await host.shard.send(instance(p(12)), Halt())  # one of them ends: its slot is refilled
    assert halted is not None and halted.state is State.ERROR

    async def refilled() -> bool:
        return await cursor(store) == (at(15), False)

    await wait_until(refilled, timeout=5, message="the freed slot to be refilled")
    assert triggers.calls == [p(14)]  # 13 (still active) stepped over; 15 must wait for a slot
    assert [await trigger_count(store, instance(p(hour))) for hour in (12, 13, 14, 15)] == [1, 1, 1, 0]


async def test_after_a_crash_in_the_middle_of_a_round_only_the_untriggered_partitions_are_triggered(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    first = Triggers(host.router.trigger)
    first.stalled.add(p(13))
    driver = await started_driver(store, first, backfill(concurrency=2))
    pumping = asyncio.create_task(driver.pump())
    await wait_until(lambda: first.triggered == [p(12)] and p(13) in first.calls, timeout=5, message="12 triggered")
    pumping.cancel()  # the process stops with 13 under way, untriggered
    with pytest.raises(asyncio.CancelledError):
        await pumping
    await wait_inactive(store, instance(p(12)))

    triggers = Triggers(host.router.trigger)
    restarted = await started_driver(store, triggers)

    assert await restarted.pump() == 2
    assert triggers.calls == [p(13), p(14)]
    assert [await trigger_count(store, instance(p(hour))) for hour in (12, 13, 14)] == [1, 1, 1]
    assert await cursor(store) == (at(15), False)


async def test_a_partition_only_triggered_by_something_else_is_not_stepped_over(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    await host.shard.trigger(instance(p(12)), Trigger.natural(), TriggerParameters())
    await wait_inactive(store, instance(p(12)))

    triggers = Triggers(host.router.trigger)
    driver = await started_driver(store, triggers, backfill(concurrency=2))

    assert await driver.pump() == 2
    assert triggers.calls == [p(12), p(13)]
    assert await trigger_count(store, instance(p(12))) == 2


async def test_after_a_crash_partitions_triggered_ahead_of_a_failure_are_not_triggered_again(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    first = Triggers(host.router.trigger)
    first.failures[p(12)] = 1
    driver = await started_driver(store, first, backfill(concurrency=3))
    assert await driver.pump() == 2  # 12 failed: the cursor stays on it; 13 and 14 triggered
    for hour in (13, 14):
        await wait_inactive(store, instance(p(hour)))
    # The process stops here (nothing is lost: the cursor was not to move).

    triggers = Triggers(host.router.trigger)
    triggers.failures[p(12)] = 1  # the instance's shard is still away at the first round
    restarted = await started_driver(store, triggers)
    assert await restarted.pump() == 0
    await restarted.pump()

    assert [await trigger_count(store, instance(p(hour))) for hour in (12, 13, 14)] == [1, 1, 1]


@pytest.mark.xfail(
    strict=True,
    reason="BackfillDriver.start only looks `concurrency` partitions past the cursor for ones triggered before the "
    "restart; partitions triggered ahead of a failed one under a higher concurrency, lowered by an edit before "
    "the restart, lie beyond that window and are triggered again",
)
async def test_after_a_crash_a_lowered_concurrency_does_not_hide_partitions_triggered_ahead(
    store: ProbedStore, start_shard: ShardFactory
) -> None:
    await put_workflow(store)
    host = await start_shard()
    first = Triggers(host.router.trigger)
    first.failures[p(12)] = 1
    driver = await started_driver(store, first, backfill(concurrency=3))
    assert await driver.pump() == 2  # 12 failed; 13 and 14 triggered ahead of the cursor
    await driver.edit({"concurrency": 1})  # through the driver, between rounds, as the API does
    for hour in (13, 14):
        await wait_inactive(store, instance(p(hour)))
    # The process stops here.

    triggers = Triggers(host.router.trigger)
    restarted = await started_driver(store, triggers)
    for hour in (12, 13, 14):
        await restarted.pump()
        restarted.instance_finished(p(hour))

    assert [await trigger_count(store, instance(p(hour))) for hour in (12, 13, 14)] == [1, 1, 1]
