"""Fixtures for the API tests: the app over a LocalActorSystem on a real store, called through httpx.

The noop runner serves tests whose outcome does not depend on a container (shapes, states, errors); the
end-to-end test runs real containers. Instances that must stay active use a workflow whose resource has
concurrency 0: they wait in QUEUED, deterministically, until halted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from styx_actors.clock import ManualClock
from styx_actors.events import event_from_json
from styx_actors.model import WorkflowId, WorkflowInstance
from styx_actors.runners import make_runner
from styx_actors.service import OPEN_ACCESS, AuthChoice, LocalService, create_local_service
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_actors.store.redis import RedisStore
from styx_actors.store.sqlite import SqliteStore
from tests.conftest import wait_until

API = "/api/v3"
COMPONENT = "styx-canary"
WORKFLOW = "StyxCanary"
IMAGE = "styx-canary-dummy:dummy"
BLOCKER = "blocker"  # a resource of concurrency 0: instances using it stay QUEUED


def api_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "shard_count": 2,
        "runner": "noop",
        "state_manager_tick_interval": timedelta(seconds=1),
        "workflow_cache_ttl": timedelta(seconds=0),
        "docker_installation_id": f"styx-api-test-{uuid.uuid4().hex[:8]}",
        "container_network": "none",
        "container_grace_period": timedelta(seconds=0),
    }
    values.update(overrides)
    return Settings(**values)


def workflow_config(workflow_id: str = WORKFLOW, schedule: str = "hours", **extra: Any) -> dict[str, Any]:
    return {"id": workflow_id, "schedule": schedule, "docker_image": IMAGE, "docker_args": ["echo", "{}"], **extra}


async def open_test_store(kind: str, tmp_path: Path, redis_url: str | None = None) -> Store:
    store: Store = (
        SqliteStore(tmp_path / "styx.db")
        if kind == "sqlite"
        else RedisStore(redis_url or "", prefix=f"api-{uuid.uuid4().hex}")
    )
    await store.open()
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    backend = await open_test_store("sqlite", tmp_path)
    yield backend
    await backend.close()


@dataclass
class Api:
    """One running app: its HTTP client, its actors and store, and the clock they share."""

    client: httpx.AsyncClient
    service: LocalService
    store: Store
    clock: ManualClock

    async def create_workflow(self, component: str = COMPONENT, **config: Any) -> dict[str, Any]:
        response = await self.client.post(f"{API}/workflows/{component}", json=workflow_config(**config))
        assert response.status_code == 200, response.text
        return response.json()

    async def enable(self, component: str = COMPONENT, workflow: str = WORKFLOW) -> None:
        response = await self.client.patch(f"{API}/workflows/{component}/{workflow}/state", json={"enabled": True})
        assert response.status_code == 200, response.text

    async def create_blocked_workflow(self, workflow: str = WORKFLOW) -> None:
        """A workflow whose instances wait in QUEUED forever (its resource allows no instance at all)."""
        response = await self.client.post(f"{API}/resources", json={"id": BLOCKER, "concurrency": 0})
        assert response.status_code == 200, response.text
        await self.create_workflow(workflow_id=workflow, resources=[BLOCKER])

    async def trigger(
        self, parameter: str, workflow: str = WORKFLOW, component: str = COMPONENT, **extra: Any
    ) -> httpx.Response:
        body = {"workflow_id": {"component_id": component, "id": workflow}, "parameter": parameter, **extra}
        return await self.client.post(f"{API}/scheduler/trigger", json=body)

    async def event_names(self, parameter: str, workflow: str = WORKFLOW, component: str = COMPONENT) -> list[str]:
        events = await self.store.events(WorkflowInstance.of(component, workflow, parameter))
        return [event_from_json(stored.event_json)[0].name for stored in events]

    async def wait_finished(self, parameter: str, workflow: str = WORKFLOW, component: str = COMPONENT) -> list[str]:
        instance = WorkflowInstance.of(component, workflow, parameter)

        async def finished() -> bool:
            names = await self.event_names(parameter, workflow, component)
            return (
                bool(names)
                and names[-1] in ("success", "stop", "halt")
                and await self.store.active_state(instance) is None
            )

        await wait_until(finished, timeout=30, message=f"{instance} to finish")
        return await self.event_names(parameter, workflow, component)

    async def wait_queued(self, parameter: str, workflow: str = WORKFLOW, component: str = COMPONENT) -> None:
        """Wait until the instance is active and its dequeue was refused (it sits in QUEUED)."""
        instance = WorkflowInstance.of(component, workflow, parameter)

        async def queued() -> bool:
            state = await self.store.active_state(instance)
            if state is None or state.state.value != "QUEUED":
                return False
            message = state.data.last_message()
            return message is not None and message.line.startswith("Resource limit reached")

        await wait_until(queued, timeout=10, message=f"{instance} to be QUEUED")


StartApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start_api(store: Store, clock: ManualClock, tmp_path: Path) -> AsyncIterator[StartApi]:
    """Start apps over the test's store (stopped at the end of the test)."""
    started: list[tuple[Api, Any]] = []

    async def start(auth: AuthChoice = OPEN_ACCESS, settings: Settings | None = None) -> Api:
        settings = settings or api_settings(tmp_path)
        runner = make_runner(settings, clock)
        service = await create_local_service(settings, store, runner, clock, auth, run_scheduler_loops=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://styx.test")
        api = Api(client=client, service=service, store=store, clock=clock)
        started.append((api, runner))
        return api

    yield start
    for api, runner in started:
        await api.client.aclose()
        await api.service.stop()
        await runner.close()


@pytest.fixture
async def api(start_api: StartApi) -> Api:
    return await start_api()


async def store_contents(store: Store) -> str:
    """Everything the API can write, as one comparable text (for "nothing was written" checks)."""
    workflows = [(w.model_dump(mode="json"), s.model_dump(mode="json")) for w, s in await store.workflows()]
    contents = {
        "workflows": workflows,
        "resources": [r.model_dump(mode="json") for r in await store.resources()],
        "backfills": [b.model_dump(mode="json") for b in await store.backfills(include_finished=True)],
        "config": (await store.get_config()).model_dump(mode="json"),
        "active": [s.model_dump(mode="json") for s in await store.active_states()],
    }
    return json.dumps(contents, sort_keys=True)


def workflow_id(workflow: str = WORKFLOW, component: str = COMPONENT) -> WorkflowId:
    return WorkflowId(component_id=component, id=workflow)
