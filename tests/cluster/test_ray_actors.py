"""The actor system on a real local Ray: instances run through Ray actors and survive a killed shard."""

from __future__ import annotations

import os
import signal

import pytest

from cluster.ray_system import RaySystem
from styx_actors.model import Resource, State, TriggerRequest
from tests.conftest import wait_until
from tests.integration.test_scenarios import config, deploy, event_names, instance, wait_finished, wait_state

pytestmark = pytest.mark.docker


async def test_an_instance_runs_to_done_through_ray_actors(ray_system: RaySystem) -> None:
    workflow_id = await deploy(ray_system, config("ray-hello", schedule="days"))
    await ray_system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter="2020-01-01"))
    events = await wait_finished(ray_system.store, instance(workflow_id, "2020-01-01"), timeout=60)
    assert events == ["triggerExecution", "dequeue", "submit", "submitted", "started", "terminate", "success"]


@pytest.mark.parametrize("ray_settings", ["redis", "sqlite"], indirect=True)
async def test_sigkilled_shard_resumes_its_instances_without_running_them_twice(ray_system: RaySystem) -> None:
    await ray_system.commands.save_resource(Resource(id="pool", concurrency=3))
    workflow_id = await deploy(ray_system, config("ray-kill", schedule="days", script="sleep 2", resources=["pool"]))
    days = [f"2020-01-{d:02d}" for d in range(1, 9)]
    for day in days:
        await ray_system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=day))
    await wait_state(ray_system.store, instance(workflow_id, days[0]), State.RUNNING, timeout=60)

    shard = ray_system.port("shard-0").handle()
    os.kill(await shard.pid.remote(), signal.SIGKILL)

    for day in days:
        events = await wait_finished(ray_system.store, instance(workflow_id, day), timeout=120)
        assert events[-1] == "success", (day, events)
        assert events.count("submit") == 1, (day, events)  # no execution started twice

    async def pool_idle() -> bool:  # a permit goes back right after its instance's last event is stored
        usage = await ray_system.port("resources").usage()
        return bool(usage["pool"] == (0, 3))

    await wait_until(pool_idle, timeout=10, message="every permit of the pool back (none leaked)")
    restarted_pid = await shard.pid.remote()
    assert restarted_pid > 0


async def test_a_backfill_completes_through_ray_actors(ray_system: RaySystem) -> None:
    from datetime import datetime

    from styx_actors.model import BackfillInput
    from styx_actors.timeutil import UTC

    workflow_id = await deploy(ray_system, config("ray-backfill"), enabled=False)
    backfill = await ray_system.commands.create_backfill(
        BackfillInput(
            start=datetime(2020, 1, 1, tzinfo=UTC),
            end=datetime(2020, 1, 1, 6, tzinfo=UTC),
            component=workflow_id.component_id,
            workflow=workflow_id.id,
            concurrency=2,
        )
    )
    for hour in range(6):
        assert (await wait_finished(ray_system.store, instance(workflow_id, f"2020-01-01T{hour:02d}"), 60))[
            -1
        ] == "success"

    async def all_triggered() -> bool:
        stored = await ray_system.store.get_backfill(backfill.id)
        return stored is not None and stored.all_triggered

    await wait_until(all_triggered, 30, message="the backfill to be all triggered")
    assert await event_names(ray_system.store, instance(workflow_id, "2020-01-01T06")) == []


async def test_dedicated_placement_runs_each_instance_in_its_own_actor(ray_settings) -> None:
    from cluster.ray_system import start_ray_system
    from styx_actors.actors.placement import dedicated_role

    settings = ray_settings.model_copy(update={"placement": "dedicated"})
    system = await start_ray_system(settings)
    try:
        workflow_id = await deploy(system, config("dedicated", schedule="days", script="sleep 5"))
        days = ["2020-01-01", "2020-01-02", "2020-01-03"]
        pids = set()
        for day in days:
            await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=day))
            pids.add(await system.port(dedicated_role(instance(workflow_id, day).key())).handle().pid.remote())
        assert len(pids) == 3  # one process per instance
        for day in days:
            assert (await wait_finished(system.store, instance(workflow_id, day), timeout=60))[-1] == "success"

        def actor_gone(day: str) -> bool:
            try:
                system.port(dedicated_role(instance(workflow_id, day).key())).handle()
            except ValueError:
                return True
            return False

        await wait_until(lambda: all(actor_gone(d) for d in days), 30, message="finished instances' actors to exit")
    finally:
        await system.kill()
