"""The clock jumps forward by hours or days: natural triggers catch up one partition per tick (Styx's rule),
a state timeout fires once, and nothing fires twice however often timers and reconcile ticks run."""

from __future__ import annotations

from datetime import datetime, timedelta

from styx_actors.timeutil import UTC
from tests.api.conftest import StartApi
from tests.conftest import wait_until

HOURLY = "Hourly"


async def test_natural_catch_up_after_a_jump_is_one_partition_per_tick(start_api: StartApi) -> None:
    api = await start_api()
    api.clock.set(datetime(2016, 3, 14, 12, 30, tzinfo=UTC))
    await api.create_workflow(workflow_id=HOURLY)
    await api.enable(workflow=HOURLY)
    api.clock.advance(timedelta(hours=6))  # 18:30: the partitions 12 to 17 are due

    scheduler = api.service.system.scheduler
    for hour in range(12, 18):
        assert await scheduler.tick() == 1
        assert await api.event_names(f"2016-03-14T{hour}", workflow=HOURLY)
    assert await scheduler.tick() == 0
    for hour in range(12, 18):
        names = await api.wait_finished(f"2016-03-14T{hour}", workflow=HOURLY)
        assert names.count("triggerExecution") == 1


async def test_a_state_timeout_fires_once_after_a_jump_of_days(start_api: StartApi) -> None:
    api = await start_api()
    await api.create_blocked_workflow()
    parameter = "2016-03-14T10"
    assert (await api.trigger(parameter)).status_code == 200
    await api.wait_queued(parameter)
    api.clock.advance(timedelta(days=3))  # past QUEUED's stale-state TTL (the default, 2 days)

    async def timed_out() -> bool:
        return "timeout" in await api.event_names(parameter)

    await wait_until(timed_out, timeout=10, message="the state timeout")
    for _ in range(3):  # the timer loop and reconcile ticks go on: the timeout must not fire again
        for shard in api.service.system.shards:
            shard.fire_due_timers()
            await shard.reconcile()
    names = await api.event_names(parameter)
    assert names.count("timeout") == 1, names
    assert names.count("triggerExecution") == 1
