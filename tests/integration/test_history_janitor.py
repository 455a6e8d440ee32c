"""The scheduler's janitor round deletes the history of finished instances once `STYX_EVENT_RETENTION` has
passed on the actors' clock, and the API then answers for them as for instances never triggered.

The service runs over the in-process actor system and the noop runner (every execution succeeds at once) on
SQLite and Redis (the `store` fixture of tests/integration/conftest.py); a ManualClock moves the time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from styx_actors.clock import ManualClock
from styx_actors.store.base import Store
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, api_settings, close_api, open_api

RETENTION = timedelta(days=30)
MILLISECOND = timedelta(milliseconds=1)
INSTANCES = f"{API}/workflows/{COMPONENT}/{WORKFLOW}/instances"
OpenApi = Callable[[timedelta], Coroutine[Any, Any, Api]]


@pytest.fixture
async def start(store: Store, clock: ManualClock, tmp_path: Path) -> AsyncIterator[OpenApi]:
    """Start the service over the test's store with an event retention (stopped at the end of the test)."""
    started: list[Api] = []

    async def start_with(retention: timedelta) -> Api:
        settings = api_settings(tmp_path, store=store.identity or "", event_retention=retention)
        started.append(await open_api(settings, store, clock))
        await started[-1].create_workflow()
        return started[-1]

    yield start_with
    for api in started:
        await close_api(api)


async def expire_history(api: Api) -> int:
    """One janitor round now, as the scheduler's loop runs it."""
    return int(await api.service.system.scheduler.expire_history())


async def events(api: Api, parameter: str) -> Any:
    response = await api.client.get(f"{API}/status/events/{COMPONENT}/{WORKFLOW}/{parameter}")
    assert response.status_code == 200, response.text
    return response.json()


async def listed(api: Api) -> list[str]:
    response = await api.client.get(INSTANCES, params={"start": "2016"})
    assert response.status_code == 200, response.text
    return [history["workflow_instance"]["parameter"] for history in response.json()]


async def run_to_the_end(api: Api, *parameters: str) -> None:
    for parameter in parameters:
        response = await api.trigger(parameter)
        assert response.status_code == 200, response.text
    for parameter in parameters:
        assert (await api.wait_finished(parameter))[-1] == "success"


async def test_history_goes_once_the_retention_has_passed_since_the_instance_finished(
    start: OpenApi, clock: ManualClock
) -> None:
    api = await start(RETENTION)
    first_finished = clock.now()  # the clock stands still while the runs go: they finish at this instant
    await run_to_the_end(api, "2016-03-14T10", "2016-03-14T11")
    clock.advance(timedelta(days=1))
    await run_to_the_end(api, "2016-03-14T12")
    before = {parameter: await events(api, parameter) for parameter in await listed(api)}
    assert list(before) == ["2016-03-14T10", "2016-03-14T11", "2016-03-14T12"]

    clock.set(first_finished + RETENTION)
    assert await expire_history(api) == 0  # exactly the retention: kept
    assert {parameter: await events(api, parameter) for parameter in await listed(api)} == before

    clock.set(first_finished + RETENTION + MILLISECOND)
    assert await expire_history(api) == 2
    assert await listed(api) == ["2016-03-14T12"]
    never_triggered = await events(api, "2016-03-14T09")
    assert never_triggered == {"events": []}
    assert await events(api, "2016-03-14T10") == await events(api, "2016-03-14T11") == never_triggered
    response = await api.client.get(f"{INSTANCES}/2016-03-14T10")
    assert response.status_code == 404, response.text  # as for an instance never triggered
    assert await events(api, "2016-03-14T12") == before["2016-03-14T12"]

    clock.advance(timedelta(days=1))
    assert await expire_history(api) == 1
    assert await listed(api) == []


async def test_a_retention_of_zero_keeps_every_history(start: OpenApi, clock: ManualClock) -> None:
    api = await start(timedelta(0))
    await run_to_the_end(api, "2016-03-14T10")
    kept = await events(api, "2016-03-14T10")

    clock.advance(timedelta(days=3650))
    assert await expire_history(api) == 0
    assert await listed(api) == ["2016-03-14T10"]
    assert await events(api, "2016-03-14T10") == kept
