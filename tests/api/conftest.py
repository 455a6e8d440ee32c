"""Fixtures for the API tests: the app over an actor system on a real store, called through httpx.

Every test that uses `api` or `start_api` runs twice, over both actor systems (`system` parameter): `local`
(every actor in the test's event loop) and `ray` (named actors on the session's local Ray, in other
processes, over the same SQLite file), the way the store suite runs over both stores. The ray variant
proves what a client of `styx serve` sees: exceptions, serialisation and process boundaries of Ray. Every
actor reads the test's ManualClock on both: over Ray it is shared through a file, so moving it moves the
time of the actors in the other processes too.

The noop runner serves tests whose outcome does not depend on a container (shapes, states, errors); the
end-to-end test runs real containers. Instances that must stay active use a workflow whose resource has
concurrency 0: they wait in QUEUED, deterministically, until halted. The scheduler's loops are as good as
off (hour-long ticks): tests drive them with `api.tick()`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from styx_actors.clock import ManualClock
from styx_actors.events import event_from_json
from styx_actors.model import WorkflowId, WorkflowInstance
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_actors.store.redis import RedisStore
from styx_actors.store.sqlite import SqliteStore
from styx_actors.timeutil import UTC
from styx_server.auth_mode import OPEN_ACCESS, AuthChoice
from styx_server.service import Service, start_service
from tests.conftest import settings_for_tests, wait_until

API = "/api/v3"
COMPONENT = "styx-canary"
WORKFLOW = "StyxCanary"
IMAGE = "styx-canary-dummy:dummy"
BLOCKER = "blocker"  # a resource of concurrency 0: instances using it stay QUEUED


SYSTEMS = ["local", "ray"]


def api_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": f"sqlite:///{data_dir / 'styx.db'}",
        "actor_system": "local",
        "allowed_hosts": ["styx.test"],  # the test client's base URL (the Host check, docs/security.md)
        "runner": "noop",
        "trigger_tick_interval": timedelta(hours=1),
        "backfill_tick_interval": timedelta(hours=1),
    }
    return settings_for_tests(data_dir, "api-test", **{**values, **overrides})


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
    service: Service
    store: Store
    clock: ManualClock

    async def tick(self) -> int:
        """One scheduler round now: natural triggers and backfills."""
        return await self.service.system.tick()

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `local_only` is not collected over Ray at all."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        over_ray = callspec is not None and "ray" in (callspec.params.get("system"), callspec.params.get("shared_api"))
        (dropped if over_ray and item.get_closest_marker("local_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=SYSTEMS)
def system(request: pytest.FixtureRequest) -> str:
    """Which actor system the test's apps run over (tests/conftest.py starts Ray once per session)."""
    if request.param == "ray":
        request.getfixturevalue("ray_runtime")
    return str(request.param)


async def open_api(settings: Settings, store: Store, clock: ManualClock, auth: AuthChoice = OPEN_ACCESS) -> Api:
    service = await start_service(settings, store, clock, auth)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://styx.test")
    return Api(client=client, service=service, store=store, clock=clock)


async def close_api(api: Api) -> None:
    await api.client.aclose()
    await api.service.stop()


@pytest.fixture
async def start_api(store: Store, clock: ManualClock, tmp_path: Path, system: str) -> AsyncIterator[StartApi]:
    """Start apps over the test's store and actor system (stopped at the end of the test). `settings`
    overrides are applied over `api_settings`; the actor system is always the test's."""
    started: list[Api] = []

    async def start(auth: AuthChoice = OPEN_ACCESS, settings: Settings | None = None) -> Api:
        # The actors on Ray open the store by URL: the test's own store, whichever backend it is.
        update: dict[str, Any] = {"actor_system": system, "store": store.identity}
        if system == "ray" and settings is None:
            update["shard_count"] = 1  # each actor is a process to start (~1 s); routing over shards: tests/cluster
        settings = (settings or api_settings(tmp_path)).model_copy(update=update)
        if system == "ray":
            clock.share_through(tmp_path / "clock")
        started.append(await open_api(settings, store, clock, auth))
        return started[-1]

    yield start
    for api in started:
        await close_api(api)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=SYSTEMS)
async def shared_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One app per module and actor system, with the workflow of `create_workflow`, for tests that only send
    requests which must be refused and change nothing: starting actors on Ray per test would cost seconds
    each. Such tests run in the module's event loop (`@pytest.mark.asyncio(loop_scope="module")`)."""
    if request.param == "ray":
        request.getfixturevalue("ray_runtime")
    data_dir = tmp_path_factory.mktemp("shared-api")
    store = await open_test_store("sqlite", data_dir)
    settings = api_settings(data_dir, actor_system=request.param)
    api = await open_api(settings, store, ManualClock(datetime(2016, 3, 14, 15, 30, tzinfo=UTC)), OPEN_ACCESS)
    await api.create_workflow()
    yield api
    await close_api(api)
    await store.close()


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
