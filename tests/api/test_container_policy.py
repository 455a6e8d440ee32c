"""Container policy through the API: the registry allow-list at validation, the bounded tail of the logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from styx_actors.model import Workflow, WorkflowConfiguration, WorkflowState
from styx_actors.runners.base import MAX_LOG_TAIL_BYTES
from styx_actors.store.base import Store
from styx_actors.timeutil import UTC
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi, api_settings, store_contents, workflow_config
from tests.integration.conftest import TEST_IMAGE, remove_containers

ALLOWED = ["gcr.io", "localhost:5000"]
PARAMETER = "2016-03-13T10"


def not_allowed(registry: str) -> str:
    return f"docker image registry not allowed: {registry}, allowed = [gcr.io, localhost:5000]"


@pytest.fixture
async def restricted_api(start_api: StartApi, tmp_path: Path) -> Api:
    return await start_api(settings=api_settings(tmp_path, allowed_registries=["GCR.io", "localhost:5000"]))


async def test_create_and_update_refuse_an_image_from_a_registry_not_allowed(restricted_api: Api) -> None:
    api = restricted_api
    empty = await store_contents(api.store)
    # An address inside the network, which the engine would call as root.
    probe = workflow_config(docker_image="10.0.0.1:80/internal/probe:latest")
    response = await api.client.post(f"{API}/workflows/{COMPONENT}", json=probe)
    assert response.status_code == 400
    assert response.json()["message"] == f"Invalid workflow configuration: [{not_allowed('10.0.0.1:80')}]"
    assert await store_contents(api.store) == empty

    await api.create_workflow(docker_image="gcr.io/project/job:1")
    stored = await store_contents(api.store)
    response = await api.client.post(f"{API}/workflows/{COMPONENT}", json=workflow_config(docker_image="busybox"))
    assert response.status_code == 400
    assert response.json()["message"] == f"Invalid workflow configuration: [{not_allowed('docker.io')}]"
    assert await store_contents(api.store) == stored


async def test_a_stored_workflow_from_a_registry_not_allowed_is_not_triggered(restricted_api: Api) -> None:
    api = restricted_api
    # Stored before the allow-list was set.
    workflow = Workflow.create(COMPONENT, WorkflowConfiguration(id=WORKFLOW, schedule="hours", docker_image="busybox"))
    await api.store.put_workflow(workflow, WorkflowState(enabled=True))
    stored = await store_contents(api.store)

    response = await api.trigger(PARAMETER)
    assert response.status_code == 400
    assert response.json()["message"] == f"Invalid workflow configuration: {not_allowed('docker.io')}"
    backfill = {
        "component": COMPONENT,
        "workflow": WORKFLOW,
        "start": "2016-03-13T10:00:00Z",
        "end": "2016-03-13T12:00:00Z",
        "concurrency": 1,
    }
    response = await api.client.post(f"{API}/backfills", json=backfill)
    assert response.status_code == 400
    assert response.json()["message"] == f"Invalid workflow configuration: {not_allowed('docker.io')}"
    assert await store_contents(api.store) == stored


async def test_a_natural_trigger_of_a_stored_workflow_from_a_registry_not_allowed_halts_in_prepare(
    start_api: StartApi, store: Store, tmp_path: Path
) -> None:
    """Natural triggers are not refused like requests: the instance halts before any container exists."""
    due = datetime(2016, 3, 14, 14, tzinfo=UTC)  # the last whole hour before the test clock's 15:30
    workflow = Workflow.create(COMPONENT, WorkflowConfiguration(id=WORKFLOW, schedule="hours", docker_image="busybox"))
    # Stored before the service started with its allow-list.
    await store.put_workflow(
        workflow, WorkflowState(enabled=True, next_natural_trigger=due, next_natural_offset_trigger=due)
    )
    api = await start_api(settings=api_settings(tmp_path, allowed_registries=ALLOWED))
    await api.tick()
    names = await api.wait_finished("2016-03-14T14")
    assert names[0] == "triggerExecution" and names[-1] == "halt"
    assert "submit" not in names


@pytest.fixture
async def docker_api(start_api: StartApi, tmp_path: Path) -> AsyncIterator[Api]:
    settings = api_settings(tmp_path, runner="docker")
    yield await start_api(settings=settings)
    remove_containers(settings.docker_installation_id)


@pytest.mark.docker
async def test_logs_return_the_tail_asked_for(docker_api: Api) -> None:
    api = docker_api
    await api.create_workflow(docker_image=TEST_IMAGE, docker_args=["sh", "-c", "echo first; echo last"])
    assert (await api.trigger(PARAMETER)).status_code == 200
    assert (await api.wait_finished(PARAMETER))[-1] == "success"
    logs = f"{API}/status/logs/{COMPONENT}/{WORKFLOW}/{PARAMETER}"

    assert (await api.client.get(logs)).json()["logs"] == "first\nlast\n"  # all of it: within the default tail
    assert (await api.client.get(logs, params={"tail_bytes": 5})).json()["logs"] == "last\n"
    for bad in ("0", "-1", str(MAX_LOG_TAIL_BYTES + 1), "1k"):
        response = await api.client.get(logs, params={"tail_bytes": bad})
        assert response.status_code == 400, bad
        assert response.json()["message"].startswith("query.tail_bytes: "), response.text
