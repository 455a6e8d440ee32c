"""Execution output through the API: from the container while it exists, then from the store once the janitor
removed it (docs/api.md, `GET /status/logs/...` and `GET /status/outputs/...`), over both actor systems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import NotFound as NoSuchContainer

from styx_actors.actors.janitor import clean_up_executions
from styx_actors.runners.docker import DockerRunner
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi, api_settings
from tests.integration.conftest import TEST_IMAGE, remove_containers

pytestmark = pytest.mark.docker

PARAMETER = "2016-03-13"
LOGS = f"{API}/status/logs/{COMPONENT}/{WORKFLOW}/{PARAMETER}"
OUTPUTS = f"{API}/status/outputs/{COMPONENT}/{WORKFLOW}/{PARAMETER}"
JOB = ["sh", "-c", 'echo "run $RUN"; echo "snowman ☃"']


@pytest.fixture
async def docker_api(start_api: StartApi, tmp_path: Path) -> AsyncIterator[Api]:
    """An API over the Docker runner whose own janitor leaves containers alone for an hour: the test removes
    them (`remove_finished_containers`) when it wants them gone."""
    settings = api_settings(tmp_path, runner="docker", container_grace_period=timedelta(hours=1))
    yield await start_api(settings=settings)
    remove_containers(settings.docker_installation_id)


async def remove_finished_containers(api: Api) -> None:
    """One round of the service's janitor as it runs once their grace period has passed: it keeps the end of
    each finished container's output in the store, then removes the container."""
    settings = api.service.services.settings.model_copy(update={"container_grace_period": timedelta(0)})
    runner = DockerRunner(settings)
    try:
        await clean_up_executions(api.store, runner)
    finally:
        await runner.close()


async def run(api: Api, run_name: str) -> str:
    """Trigger the instance with RUN=`run_name`, wait for its success; its execution id."""
    response = await api.trigger(PARAMETER, trigger_parameters={"env": {"RUN": run_name}})
    assert response.status_code == 200, response.text
    assert (await api.wait_finished(PARAMETER))[-1] == "success"
    payload = (await api.client.get(LOGS)).json()
    return str(payload["execution_id"])


def container_exists(execution_id: str) -> bool:
    client = docker.from_env()
    try:
        client.containers.get(execution_id)
    except NoSuchContainer:
        return False
    finally:
        client.close()
    return True


async def logs(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.client.get(LOGS, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_output_is_served_from_the_store_once_the_container_is_gone(docker_api: Api) -> None:
    api = docker_api
    await api.create_workflow(docker_image=TEST_IMAGE, docker_args=JOB, schedule="days")
    first = await run(api, "one")
    second = await run(api, "two")
    output_of = {first: "run one\nsnowman ☃\n", second: "run two\nsnowman ☃\n"}
    assert await logs(api) == {"execution_id": second, "logs": output_of[second], "source": "container"}
    assert await logs(api, execution_id=first) == {
        "execution_id": first,
        "logs": output_of[first],
        "source": "container",
    }

    await remove_finished_containers(api)
    assert not container_exists(first) and not container_exists(second)

    # The latest execution by default, any other by its id; the tail asked for, cut at a whole character.
    assert await logs(api) == {"execution_id": second, "logs": output_of[second], "source": "store"}
    assert await logs(api, execution_id=first) == {"execution_id": first, "logs": output_of[first], "source": "store"}
    assert (await logs(api, tail_bytes=4))["logs"] == "☃\n"
    assert (await logs(api, tail_bytes=3))["logs"] == "\n"  # the cut falls inside ☃: from the next character
    outputs = (await api.client.get(OUTPUTS)).json()["outputs"]
    assert [(kept["execution_id"], kept["bytes"]) for kept in outputs] == [(first, 20), (second, 20)]
    assert all(kept["ended_at"].endswith("Z") for kept in outputs)


async def test_missing_output_is_a_404_that_says_why(start_api: StartApi, tmp_path: Path) -> None:
    settings = api_settings(tmp_path, runner="docker", container_grace_period=timedelta(hours=1), output_tail_bytes=0)
    api = await start_api(settings=settings)
    try:
        await api.create_workflow(docker_image=TEST_IMAGE, docker_args=JOB, schedule="days")
        never_ran = await api.client.get(f"{API}/status/logs/{COMPONENT}/{WORKFLOW}/2016-03-12")
        assert never_ran.status_code == 404
        assert never_ran.json()["message"] == "Workflow instance has no execution"

        execution_id = await run(api, "one")
        unknown = await api.client.get(LOGS, params={"execution_id": "styx-run-elsewhere"})
        assert unknown.status_code == 404
        assert unknown.json()["message"] == "Workflow instance has no execution styx-run-elsewhere"

        await remove_finished_containers(api)  # STYX_OUTPUT_TAIL_BYTES=0: nothing is kept
        gone = await api.client.get(LOGS)
        assert gone.status_code == 404
        assert gone.json()["message"] == (
            f"The container of execution {execution_id} no longer exists and none of its output is kept"
        )
        assert (await api.client.get(OUTPUTS)).json() == {"outputs": []}
    finally:
        remove_containers(settings.docker_installation_id)


async def test_over_long_ids_are_refused(api: Api) -> None:
    response = await api.client.get(LOGS, params={"execution_id": "x" * 257})
    assert response.status_code == 400
    assert response.json()["message"] == "query.execution_id: String should have at most 256 characters"
    for route in ("logs", "outputs"):
        response = await api.client.get(f"{API}/status/{route}/{'c' * 257}/{WORKFLOW}/{PARAMETER}")
        assert response.status_code == 400
        assert response.json()["message"] == "path.component_id: String should have at most 256 characters"
