"""Redis goes away while instances run, then comes back on the same port with its AOF: every instance still
reaches its end state, nothing acknowledged is lost, transitions wait instead of failing, and the API answers
503 (writes, /readyz) while the store is down and resumes by itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import docker
import httpx
import pytest

from styx_actors.clock import ManualClock
from styx_actors.model import (
    TriggerRequest,
    WorkflowConfiguration,
    WorkflowInstance,
    WorkflowStatePatch,
)
from styx_actors.runners.docker import LABEL_INSTALLATION
from styx_actors.store.base import StoredEvent
from styx_actors.store.redis import RedisStore
from styx_server.service import Service, start_service
from tests.conftest import RedisServer, wait_until
from tests.integration.conftest import TEST_IMAGE, remove_containers, scenario_settings
from tests.integration.test_scenarios import event_names, finished

pytestmark = [pytest.mark.docker, pytest.mark.redis]

COMPONENT = "styx-outage"
PARTITIONS = ["2016-03-14T10", "2016-03-14T11", "2016-03-14T12", "2016-03-14T13"]
# Long enough that every container is still running when Redis stops, short enough for the suite's budget.
JOB_SCRIPT = "sleep 2; exit 0"


@pytest.fixture
async def service(redis_with_aof: RedisServer, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Service]:
    settings = scenario_settings(
        tmp_path,
        actor_system="local",
        runner="docker",
        trigger_tick_interval=timedelta(hours=1),
        backfill_tick_interval=timedelta(hours=1),
    )
    store = RedisStore(redis_with_aof.url, prefix=f"outage-{uuid.uuid4().hex}")
    await store.open()
    local = await start_service(settings, store, clock)
    yield local
    await local.stop()
    await store.close()
    remove_containers(settings.docker_installation_id)


def exited_containers(installation_id: str) -> int:
    client = docker.from_env()
    try:
        filters = {"label": f"{LABEL_INSTALLATION}={installation_id}", "status": "exited"}
        return len(client.containers.list(all=True, filters=filters))
    finally:
        client.close()


async def test_instances_survive_a_redis_outage_and_the_api_answers_503_meanwhile(
    service: Service, redis_with_aof: RedisServer
) -> None:
    commands, store = service.system.commands, service.services.store
    workflow = await commands.save_workflow(
        COMPONENT,
        WorkflowConfiguration(
            id="job", schedule="hours", docker_image=TEST_IMAGE, docker_args=["sh", "-c", JOB_SCRIPT]
        ),
    )
    await commands.patch_workflow_state(workflow.id, WorkflowStatePatch(enabled=True))
    instances = [WorkflowInstance(workflow_id=workflow.id, parameter=p) for p in PARTITIONS]
    for wfi in instances:
        await commands.trigger(TriggerRequest(workflow_id=workflow.id, parameter=wfi.parameter))

    async def all_running() -> bool:
        states = [await store.active_state(wfi) for wfi in instances]
        return all(state is not None and state.state.value == "RUNNING" for state in states)

    await wait_until(all_running, timeout=30, message="every instance RUNNING")
    acknowledged: dict[WorkflowInstance, list[StoredEvent]] = {wfi: await store.events(wfi) for wfi in instances}

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://localhost")
    async with client:
        redis_with_aof.stop()
        readiness = await client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["message"].startswith("Store unavailable: Redis store")
        write = await client.post("/api/v3/resources", json={"id": "r1", "concurrency": 1})
        assert write.status_code == 503
        assert write.json()["message"].startswith("Store unavailable, try again later: Redis store")
        assert (await client.get("/healthz")).status_code == 200

        # The containers finish while the store is down: their transitions wait for it.
        installation = service.system.runner.installation_id  # type: ignore[attr-defined]
        await wait_until(lambda: exited_containers(installation) == len(instances), timeout=30, message="jobs exit")
        assert await service.system.active_count() == len(instances)
        redis_with_aof.start()

        for wfi in instances:
            await wait_until(lambda wfi=wfi: finished(store, wfi), timeout=30, message=f"{wfi} to finish")
            names = await event_names(store, wfi)
            assert names[-1] == "success" and "runError" not in names, names
            assert (await store.events(wfi))[: len(acknowledged[wfi])] == acknowledged[wfi]
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.post("/api/v3/resources", json={"id": "r1", "concurrency": 1})).status_code == 200
