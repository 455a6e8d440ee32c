"""Through the API to a real container and back: a triggered instance runs on Docker and reaches DONE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi, api_settings
from tests.conftest import wait_until
from tests.integration.conftest import TEST_IMAGE, remove_containers

pytestmark = pytest.mark.docker

EVENTS = f"{API}/status/events/{COMPONENT}/{WORKFLOW}/2016-03-13"


@pytest.fixture
async def docker_api(start_api: StartApi, tmp_path: Path) -> AsyncIterator[Api]:
    settings = api_settings(tmp_path, runner="docker")
    yield await start_api(settings=settings)
    remove_containers(settings.docker_installation_id)


async def test_a_triggered_instance_runs_its_container_to_done(docker_api: Api) -> None:
    api = docker_api
    config = {"id": WORKFLOW, "schedule": "days", "docker_image": TEST_IMAGE, "docker_args": ["sh", "-c", "exit 0"]}
    assert (await api.client.post(f"{API}/workflows/{COMPONENT}", json=config)).status_code == 200
    body = {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": "2016-03-13"}
    assert (await api.client.post(f"{API}/scheduler/trigger", json=body)).status_code == 200

    async def event_types() -> list[str]:
        response = await api.client.get(EVENTS)
        assert response.status_code == 200
        return [entry["event"]["@type"] for entry in response.json()["events"]]

    async def done() -> bool:
        return "success" in await event_types()

    await wait_until(done, timeout=60, message="the instance to succeed")
    assert await event_types() == [
        "triggerExecution",
        "dequeue",
        "submit",
        "submitted",
        "started",
        "terminate",
        "success",
    ]
    events = (await api.client.get(EVENTS)).json()["events"]
    assert events[5]["event"]["exit_code"] == 0
    assert (await api.client.get(f"{API}/status/activeStates")).json() == {"active_states": []}

    history = (await api.client.get(f"{API}/workflows/{COMPONENT}/{WORKFLOW}/instances/2016-03-13")).json()
    [trigger] = history["triggers"]
    [execution] = trigger["executions"]
    assert trigger["complete"] is True and execution["docker_image"] == TEST_IMAGE
    assert [status["status"] for status in execution["statuses"]] == ["SUBMITTED", "STARTED", "SUCCESS"]


async def test_a_running_instance_refuses_retry_with_styx_text_and_halts(docker_api: Api) -> None:
    """Over Ray the refusal crosses a process boundary as an exception: it must still be Styx's 400."""
    api = docker_api
    config = {"id": WORKFLOW, "schedule": "days", "docker_image": TEST_IMAGE, "docker_args": ["sleep", "60"]}
    assert (await api.client.post(f"{API}/workflows/{COMPONENT}", json=config)).status_code == 200
    body = {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": "2016-03-13"}
    assert (await api.client.post(f"{API}/scheduler/trigger", json=body)).status_code == 200

    async def running() -> bool:
        states = (await api.client.get(f"{API}/status/activeStates")).json()["active_states"]
        return bool(states) and states[0]["state"] == "RUNNING"

    await wait_until(running, timeout=60, message="the instance to run")
    instance = {"workflow_instance": f"{COMPONENT}/{WORKFLOW}/2016-03-13"}
    before = await api.event_names("2016-03-13")
    refused = await api.client.post(f"{API}/scheduler/retry", json=instance)
    assert refused.status_code == 400
    assert refused.json() == {
        "code": 400,
        "message": f"{COMPONENT}#{WORKFLOW}#2016-03-13 received retryAfter while in RUNNING",
    }
    assert await api.event_names("2016-03-13") == before  # the refusal changed nothing

    halted = await api.client.post(f"{API}/scheduler/halt", json=instance)
    assert halted.status_code == 200
    assert await api.wait_finished("2016-03-13") == [*before, "halt"]
