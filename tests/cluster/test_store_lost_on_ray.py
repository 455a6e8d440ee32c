"""The installation marker on Ray: a scheduler actor that Ray restarts on its own after Redis lost its data
finds the store lost (its constructor carries the marker the service established) instead of re-marking it."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ray.exceptions import RayActorError, RayTaskError

from cluster.ray_system import RaySystem, start_ray_system
from styx_server.startup import open_service_store
from tests.conftest import RedisServer, wait_until
from tests.integration.conftest import scenario_settings

pytestmark = pytest.mark.redis


@pytest.fixture
async def ray_system(ray_runtime: None, volatile_redis: RedisServer, tmp_path: Path) -> AsyncIterator[RaySystem]:
    tag = uuid.uuid4().hex[:8]
    settings = scenario_settings(
        tmp_path, store=f"{volatile_redis.url}?prefix=lost-{tag}", ray_namespace=f"styx-{tag}", runner="noop"
    )
    await (await open_service_store(settings)).close()  # the service's startup: marks the store, remembers it
    system = await start_ray_system(settings)
    yield system
    await system.kill()
    await system.store.close()


async def test_a_scheduler_restarted_by_ray_on_an_emptied_store_does_not_re_mark_it(
    ray_system: RaySystem, volatile_redis: RedisServer
) -> None:
    scheduler = ray_system.port("scheduler").handle()
    assert await ray_system.store.get_marker() is not None
    volatile_redis.stop()
    volatile_redis.start()  # same port, no persistence: the data is gone

    killed = await scheduler.pid.remote()
    os.kill(killed, signal.SIGKILL)

    async def restarted() -> bool:
        try:
            return await scheduler.pid.remote() != killed
        except RayActorError:  # the actor is restarting
            return False

    await wait_until(restarted, timeout=60, message="Ray to restart the scheduler actor")
    with pytest.raises(RayTaskError, match="Scheduling is paused"):
        await scheduler.call.remote("tick")
    assert await ray_system.store.get_marker() is None  # not re-marked: nothing gets re-triggered
