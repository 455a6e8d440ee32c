"""The resource broker's actor killed while one instance holds the only permit and another waits for it: the
restarted broker learns the holder from the shards and queues the waiter again, which runs once the holder ends."""

from __future__ import annotations

import os
import signal

import pytest

from cluster.ray_system import RaySystem
from styx_actors.model import Resource, State, TriggerRequest
from tests.conftest import wait_until
from tests.integration.test_scenarios import config, deploy, instance, wait_finished, wait_state

pytestmark = pytest.mark.docker


async def test_a_waiter_runs_after_the_broker_restarted(ray_system: RaySystem) -> None:
    await ray_system.commands.save_resource(Resource(id="single", concurrency=1))
    workflow_id = await deploy(ray_system, config("ray-broker", schedule="days", script="sleep 3", resources=["single"]))
    holder, waiter = instance(workflow_id, "2020-01-01"), instance(workflow_id, "2020-01-02")
    await ray_system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=holder.parameter))
    await wait_state(ray_system.store, holder, State.RUNNING, timeout=60)
    await ray_system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=waiter.parameter))

    async def waiting_at_the_broker() -> bool:  # its Info message says so
        state = await ray_system.store.active_state(waiter)
        return state is not None and any("limit reached" in message.line for message in state.data.messages)

    await wait_until(waiting_at_the_broker, timeout=30, message="the waiter to queue at the broker")

    broker = ray_system.port("resources").handle()
    os.kill(await broker.pid.remote(), signal.SIGKILL)

    for day in (holder, waiter):
        events = await wait_finished(ray_system.store, day, timeout=90)
        assert events[-1] == "success", (day, events)
    assert await ray_system.port("resources").usage() == {"single": (0, 1)}
