"""The core create/read/update/delete paths of every contract group, on both store backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from styx_actors.model import GlobalConfig
from styx_actors.store.base import Store
from tests.api.conftest import API, COMPONENT, IMAGE, WORKFLOW, Api, open_test_store, workflow_config, workflow_id


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    backend = await open_test_store(request.param, tmp_path, redis_url)
    yield backend
    await backend.close()


WORKFLOW_PATH = f"{API}/workflows/{COMPONENT}/{WORKFLOW}"


async def test_workflow_lifecycle(api: Api) -> None:
    created = await api.client.post(f"{API}/workflows/{COMPONENT}", json=workflow_config(env={"FOO": "bar"}))
    assert created.status_code == 200
    body = created.json()
    assert body["component_id"] == COMPONENT and body["workflow_id"] == WORKFLOW
    assert body["configuration"]["docker_image"] == IMAGE
    assert body["configuration"]["env"] == {"FOO": "bar"}
    assert body["configuration"]["deployment_time"] == "2016-03-14T15:30:00Z"  # the server's clock
    assert body["__from_api"] == "V3" and body["component_uri"] is None

    shown = (await api.client.get(WORKFLOW_PATH)).json()
    assert shown["configuration"] == body["configuration"]
    assert [w["workflow_id"] for w in (await api.client.get(f"{API}/workflows/{COMPONENT}")).json()] == [WORKFLOW]
    assert [w["workflow_id"] for w in (await api.client.get(f"{API}/workflows")).json()] == [WORKFLOW]

    # New workflows start disabled; hourly at 15:30 with the default offset: instance 15:00 fires at 16:00.
    state = {
        "enabled": "false",
        "next_natural_trigger": "2016-03-14T15:00:00Z",
        "next_natural_offset_trigger": "2016-03-14T16:00:00Z",
    }
    assert (await api.client.get(f"{WORKFLOW_PATH}/state")).json() == state
    assert (await api.client.get(f"{WORKFLOW_PATH}/full")).json() == {"workflow": shown, "state": state}

    patched = await api.client.patch(f"{WORKFLOW_PATH}/state", json={"enabled": "true"})
    assert patched.status_code == 200 and patched.json() == {**state, "enabled": "true"}
    assert (await api.store.get_workflow(workflow_id()))[1].enabled is True

    deleted = await api.client.delete(WORKFLOW_PATH)
    assert deleted.status_code == 204 and deleted.content == b""
    assert await api.store.get_workflow(workflow_id()) is None
    missing = await api.client.get(WORKFLOW_PATH)
    assert missing.status_code == 404 and missing.json() == {"code": 404, "message": "Workflow does not exist"}
    again = await api.client.delete(WORKFLOW_PATH)
    assert again.status_code == 404 and again.json()["message"] == "Workflow does not exist"


async def test_workflow_update_keeps_state_unless_the_schedule_changes(api: Api) -> None:
    await api.create_workflow()
    await api.enable()
    api.clock.advance(timedelta(hours=2))
    await api.create_workflow(docker_args=["other"])
    state = (await api.client.get(f"{WORKFLOW_PATH}/state")).json()
    assert state == {
        "enabled": "true",
        "next_natural_trigger": "2016-03-14T15:00:00Z",
        "next_natural_offset_trigger": "2016-03-14T16:00:00Z",
    }

    await api.create_workflow(schedule="days")  # 17:30: the next daily instance is today's, firing tomorrow
    state = (await api.client.get(f"{WORKFLOW_PATH}/state")).json()
    assert state == {
        "enabled": "true",
        "next_natural_trigger": "2016-03-14T00:00:00Z",
        "next_natural_offset_trigger": "2016-03-15T00:00:00Z",
    }


async def test_resource_lifecycle(api: Api) -> None:
    created = await api.client.post(f"{API}/resources", json={"id": "styx-canary-resource", "concurrency": "20"})
    assert created.status_code == 200 and created.json() == {"id": "styx-canary-resource", "concurrency": 20}
    assert (await api.client.get(f"{API}/resources")).json() == {
        "resources": [{"id": "styx-canary-resource", "concurrency": 20}]
    }
    one = await api.client.get(f"{API}/resources/styx-canary-resource")
    assert one.json() == {"resources": [{"id": "styx-canary-resource", "concurrency": 20}]}

    updated = await api.client.put(
        f"{API}/resources/styx-canary-resource", json={"id": "styx-canary-resource", "concurrency": 30}
    )
    assert updated.status_code == 200 and updated.json()["concurrency"] == 30
    assert (await api.store.get_resource("styx-canary-resource")).concurrency == 30

    assert (await api.client.delete(f"{API}/resources/styx-canary-resource")).status_code == 204
    assert await api.store.get_resource("styx-canary-resource") is None
    gone = await api.client.get(f"{API}/resources/styx-canary-resource")
    assert gone.status_code == 404 and gone.json() == {"code": 404, "message": "Resource not found"}
    assert (await api.client.delete(f"{API}/resources/styx-canary-resource")).status_code == 204  # even when absent


async def test_backfill_lifecycle(api: Api) -> None:
    await api.create_blocked_workflow()  # the backfill stays unfinished while it is looked at
    request = {
        "start": "2016-03-13T00:00:00Z",
        "end": "2016-03-13T03:00:00Z",
        "component": COMPONENT,
        "workflow": WORKFLOW,
        "concurrency": "2",
        "description": "fixed bug",
        "trigger_parameters": {"env": {"FOO": "bar"}},
    }
    created = await api.client.post(f"{API}/backfills", json=request)
    assert created.status_code == 200, created.text
    backfill = created.json()
    assert backfill["id"].startswith("backfill-1457969400000-")
    assert backfill | {"id": None} == {
        "id": None,
        "start": "2016-03-13T00:00:00Z",
        "end": "2016-03-13T03:00:00Z",
        "workflow_id": {"component_id": COMPONENT, "id": WORKFLOW},
        "concurrency": 2,
        "description": "fixed bug",
        "next_trigger": "2016-03-13T00:00:00Z",
        "schedule": "hours",
        "all_triggered": False,
        "halted": False,
        "reverse": False,
        "trigger_parameters": {"env": {"FOO": "bar"}},
        "created": "2016-03-14T15:30:00Z",
        "last_modified": "2016-03-14T15:30:00Z",
    }
    path = f"{API}/backfills/{backfill['id']}"
    shown = (await api.client.get(path)).json()
    assert shown["backfill"]["id"] == backfill["id"]
    assert [s["workflow_instance"]["parameter"] for s in shown["statuses"]["active_states"]] == [
        "2016-03-13T00",
        "2016-03-13T01",
        "2016-03-13T02",
    ]

    listed = (await api.client.get(f"{API}/backfills", params={"component": COMPONENT, "workflow": WORKFLOW})).json()
    assert [entry["backfill"]["id"] for entry in listed["backfills"]] == [backfill["id"]]
    assert listed["backfills"][0]["statuses"] is None

    edited = await api.client.put(path, json={"id": backfill["id"], "concurrency": 5, "description": "more"})
    assert edited.status_code == 200
    assert (edited.json()["concurrency"], edited.json()["description"]) == (5, "more")
    assert (await api.store.get_backfill(backfill["id"])).concurrency == 5

    halted = await api.client.delete(path, params={"graceful": "true"})
    assert halted.status_code == 200 and halted.content == b""
    assert (await api.store.get_backfill(backfill["id"])).halted is True
    assert (await api.client.get(f"{API}/backfills")).json() == {"backfills": []}
    with_halted = (await api.client.get(f"{API}/backfills", params={"showAll": "true"})).json()
    assert [entry["backfill"]["halted"] for entry in with_halted["backfills"]] == [True]


async def test_global_enabled_switch_keeps_the_other_settings(api: Api) -> None:
    await api.store.put_config(GlobalConfig(concurrency=7, client_blacklist=["old-cli"]))
    assert (await api.client.get(f"{API}/config")).json() == {"enabled": "true"}

    disabled = await api.client.post(f"{API}/config", params={"enabled": "false"})
    assert disabled.status_code == 200 and disabled.json() == {"enabled": "false"}
    assert (await api.client.get(f"{API}/config")).json() == {"enabled": "false"}
    assert await api.store.get_config() == GlobalConfig(enabled=False, concurrency=7, client_blacklist=["old-cli"])

    assert (await api.client.post(f"{API}/config", params={"enabled": "TRUE"})).json() == {"enabled": "true"}
    assert (await api.store.get_config()).enabled is True


@pytest.mark.asyncio(loop_scope="module")  # a refusal: the module's app (shared_api) serves it
@pytest.mark.parametrize("query", ["", "?enabled=", "?enabled=maybe"])
async def test_global_enabled_needs_true_or_false(shared_api: Api, query: str) -> None:
    response = await shared_api.client.post(f"{API}/config{query}")
    assert response.status_code == 400
    assert (await shared_api.store.get_config()).enabled is True
