"""Secrets stay out of the logs, ids cannot leave their namespace in the store, and containers run confined."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from urllib.parse import quote

import docker
import pytest

from api.middleware import redacted_payload
from styx_actors.runners.docker import TERMINATION_LOG_PATH, DockerRunner
from tests.api.conftest import API, Api
from tests.conftest import wait_for
from tests.integration.conftest import remove_containers, scenario_settings
from tests.integration.test_docker_runner import spec_for

SECRET = "s3cr3t-" + uuid.uuid4().hex
TOKEN = "Bearer token-" + uuid.uuid4().hex
WORKFLOW_ID = "wf#1..%"
# The service's own loggers; third-party ones (aiosqlite logs SQL parameters at DEBUG) must stay above DEBUG.
SERVICE_LOGGERS = ("styx_actors", "api", "uvicorn")


async def test_credentials_and_workflow_env_values_never_reach_the_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    for name in SERVICE_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    config = {"id": "with-secret", "schedule": "hours", "docker_image": "busybox:latest", "env": {"PASSWORD": SECRET}}
    response = await api.client.post(f"{API}/workflows/styx-secure", json=config, headers={"Authorization": TOKEN})
    assert response.status_code == 200, response.text
    trigger = {"workflow_id": {"component_id": "styx-secure", "id": "with-secret"}, "parameter": "2016-03-14T10"}
    assert (await api.client.post(f"{API}/scheduler/trigger", json=trigger)).status_code == 200
    await api.wait_finished("2016-03-14T10", workflow="with-secret", component="styx-secure")

    logged = [r.getMessage() for r in caplog.records if r.name.startswith(SERVICE_LOGGERS)]
    audit = [r.getMessage() for r in caplog.records if r.name == "styx_actors.audit"]
    assert any('"authorization":"<hidden>"' in line and '\\"PASSWORD\\":\\"<hidden>\\"' in line for line in audit), (
        audit
    )
    assert not [line for line in logged if SECRET in line or TOKEN.split()[1] in line]


def test_payloads_that_cannot_be_parsed_but_name_env_are_hidden_whole() -> None:
    assert redacted_payload(b'{"env": {"A": "' + SECRET.encode()) == "<hidden>"
    assert redacted_payload(b'[{"nested": {"env": {"A": "x"}}}]') == '[{"nested":{"env":{"A":"<hidden>"}}}]'
    assert redacted_payload(b"plain text") == "plain text"


@pytest.mark.parametrize(
    "component",
    ["a#b", "a/b", "..", "a:b:*", "ünï-çødé-组件", "x" * 2000, "%2e%2e", "a\\b", "styx-secure", "*"],
)
async def test_ids_are_stored_verbatim_or_refused_never_interpreted(api: Api, component: str) -> None:
    config = {"id": WORKFLOW_ID, "schedule": "hours", "docker_image": "busybox:latest"}
    created = await api.client.post(f"{API}/workflows/{quote(component, safe='')}", json=config)
    if created.status_code != 200:
        assert 400 <= created.status_code < 500, created.text
        assert await api.store.workflows() == []
        return
    stored = await api.store.workflows()
    assert [(w.component_id, w.workflow_id) for w, _ in stored] == [(component, WORKFLOW_ID)]
    fetched = await api.client.get(f"{API}/workflows/{quote(component, safe='')}/{quote(WORKFLOW_ID, safe='')}")
    assert fetched.status_code == 200 and fetched.json()["component_id"] == component
    # Neighbouring namespaces see nothing of it.
    for other in ("a", "styx", "*"):
        if other != component:
            listed = await api.client.get(f"{API}/workflows/{quote(other, safe='')}")
            assert listed.status_code in (200, 404, 405) and WORKFLOW_ID not in listed.text


@pytest.mark.docker
async def test_containers_run_as_the_configured_user_unprivileged_with_only_the_termination_log_mounted(
    tmp_path: Path,
) -> None:
    settings = scenario_settings(tmp_path, container_user="65534:65534")
    runner = DockerRunner(settings)
    spec = spec_for(["sleep", "30"])
    engine = docker.APIClient()
    try:
        await runner.start(spec)
        info = engine.inspect_container(spec.execution_id)
        assert info["Config"]["User"] == "65534:65534"
        host = info["HostConfig"]
        assert host["Privileged"] is False
        assert "no-new-privileges" in host["SecurityOpt"]
        assert not host.get("Binds") and not host.get("CapAdd") and host.get("PidMode", "") == ""
        mounts = info["Mounts"]
        assert [(m["Type"], m["Destination"], m["RW"]) for m in mounts] == [("bind", TERMINATION_LOG_PATH, True)]
        assert mounts[0]["Source"].startswith(str(settings.data_dir))
        wait_for(lambda: engine.inspect_container(spec.execution_id)["State"]["Running"], message="container running")
    finally:
        await runner.close()
        engine.close()
        remove_containers(runner.installation_id)
