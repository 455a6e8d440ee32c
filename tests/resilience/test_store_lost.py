"""Redis restarted without persistence (its data gone): the service refuses to run on the empty store. It
does not start, /readyz says the store lost its data, and the scheduler's ticks trigger nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from styx_actors.clock import ManualClock
from styx_actors.model import WorkflowConfiguration, WorkflowId, WorkflowStatePatch
from styx_actors.settings import Settings
from styx_actors.store.base import Store, StoreError
from styx_actors.store.marker import STORE_MARKERS_DIR, StoreLost, establish_marker, marker_file
from styx_actors.store.redis import RedisStore
from styx_actors.timeutil import UTC
from styx_server.service import Service, start_service
from styx_server.startup import ServiceError, open_service_store
from tests.api.conftest import api_settings
from tests.conftest import RedisServer, wait_until

pytestmark = pytest.mark.redis

COMPONENT = "styx-lost"


def restart_empty(server: RedisServer) -> None:
    server.stop()
    server.start()


async def test_the_service_refuses_to_start_on_a_store_that_lost_its_data(
    volatile_redis: RedisServer, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, store=volatile_redis.url)
    store = await open_service_store(settings)
    marker = await store.get_marker()
    remembered_in = marker_file(tmp_path, store)
    await store.close()
    assert remembered_in is not None and remembered_in.parent == tmp_path / STORE_MARKERS_DIR
    assert marker is not None and remembered_in.read_text().strip() == marker

    restart_empty(volatile_redis)
    with pytest.raises(ServiceError) as refused:
        await open_service_store(settings)
    message = str(refused.value)
    assert message.startswith(
        f"Refusing to start on the store at redis://127.0.0.1:{volatile_redis.port}/0?prefix=styx: "
        f"The store has no installation marker, but this installation's is {marker} (remembered in {remembered_in}): "
    )
    # What to do, and where: the file's full path and the variable that moves the data dir.
    assert f"to start afresh on this store on purpose, delete {remembered_in} (the data dir is STYX_DATA_DIR" in message
    remembered_in.unlink()
    await (await open_service_store(settings)).close()


async def test_a_fresh_store_at_another_url_starts_while_the_lost_one_is_still_refused(
    volatile_redis: RedisServer, tmp_path: Path
) -> None:
    """The newcomer's path: the default SQLite store first, then a Redis. Each store has its own marker."""
    embedded = Settings(data_dir=tmp_path)
    await (await open_service_store(embedded)).close()
    on_redis = Settings(data_dir=tmp_path, store=volatile_redis.url)
    await (await open_service_store(on_redis)).close()  # a fresh store at a new URL: no refusal
    assert len(list((tmp_path / STORE_MARKERS_DIR).iterdir())) == 2

    restart_empty(volatile_redis)
    with pytest.raises(ServiceError, match="has no installation marker"):
        await open_service_store(on_redis)
    await (await open_service_store(embedded)).close()  # the SQLite store kept its data: it still starts


@pytest.fixture
async def service(volatile_redis: RedisServer, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Service]:
    settings = api_settings(tmp_path)
    store = RedisStore(volatile_redis.url, prefix=f"lost-{uuid.uuid4().hex}")
    await store.open()
    await establish_marker(store, settings.data_dir)  # as open_service_store does
    local = await start_service(settings, store, clock)
    yield local
    await local.stop()
    await store.close()


async def test_an_emptied_store_makes_readiness_fail_and_pauses_the_scheduler(
    service: Service, volatile_redis: RedisServer, clock: ManualClock
) -> None:
    clock.set(datetime(2016, 3, 14, 12, 30, tzinfo=UTC))
    commands, store, scheduler = service.system.commands, service.services.store, service.system.scheduler
    config = WorkflowConfiguration(id="hourly", schedule="hours", docker_image="busybox:latest")
    workflow = await commands.save_workflow(COMPONENT, config)
    await commands.patch_workflow_state(workflow.id, WorkflowStatePatch(enabled=True))
    clock.advance(timedelta(hours=1))
    assert await scheduler.tick() == 1

    restart_empty(volatile_redis)
    await wait_until(lambda: store_answers(store), timeout=10, message="the store to answer again")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://styx.test")
    async with client:
        readiness = await client.get("/readyz")
    assert readiness.status_code == 503
    assert readiness.json()["message"].startswith("Store lost its data: The store has no installation marker")

    clock.advance(timedelta(hours=5))  # many partitions look due on the empty store
    for _ in range(3):
        with pytest.raises(StoreLost, match="Scheduling is paused"):
            await scheduler.tick()
    assert await store.get_marker() is None  # the guard never re-marks an emptied store as its own
    assert await store.active_states() == []
    assert await store.instance_parameters(WorkflowId(component_id=COMPONENT, id="hourly")) == []


async def store_answers(store: Store) -> bool:
    try:
        await store.ping()
    except StoreError:
        return False
    return True
