"""Backfill endpoints: creation checks in Styx's order, reading with statuses, editing and halting
(docs/semantics.md#backfills)."""

from __future__ import annotations

from typing import Any

import pytest

from styx_actors.model import Workflow, WorkflowConfiguration, WorkflowState
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, store_contents
from tests.conftest import wait_until


def backfill_request(start: str = "2016-03-13T00", end: str = "2016-03-13T03", **extra: Any) -> dict[str, Any]:
    return {
        "start": f"{start}:00:00Z",
        "end": f"{end}:00:00Z",
        "component": COMPONENT,
        "workflow": WORKFLOW,
        "concurrency": 2,
        **extra,
    }


async def create_backfill(api: Api, **extra: Any) -> dict[str, Any]:
    response = await api.client.post(f"{API}/backfills", json=backfill_request(**extra))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "Missing payload"),
        (
            b"{}",
            400,
            "Payload parsing failed: start: Field required; end: Field required; "
            "component: Field required; workflow: Field required",
        ),
        (backfill_request(workflow="unknown"), 404, "workflow not found"),
        (backfill_request(start="2016-03-13T03", end="2016-03-13T03"), 400, "start must be before end"),
        (
            backfill_request(start="2016-03-13T00:30", end="2016-03-13T03"),
            400,
            "start parameter not aligned with schedule",
        ),
        (backfill_request(end="2016-03-13T03:30"), 400, "end parameter not aligned with schedule"),
        (backfill_request(start="2016-03-14T15", end="2016-03-14T17"), 400, "Cannot backfill future partitions"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_creation_refusals(shared_api: Api, body: bytes | dict[str, Any], status: int, message: str) -> None:
    api = shared_api  # its workflow is already created
    before = await store_contents(api.store)
    if isinstance(body, bytes):
        response = await api.client.post(f"{API}/backfills", content=body, headers={"Content-Type": "application/json"})
    else:
        response = await api.client.post(f"{API}/backfills", json=body)
    assert (response.status_code, response.json()) == (status, {"code": status, "message": message})
    assert await store_contents(api.store) == before


async def test_future_partitions_need_allow_future(api: Api) -> None:
    await api.create_workflow()
    response = await api.client.post(
        f"{API}/backfills",
        params={"allowFuture": "True"},
        json=backfill_request(start="2016-03-14T15", end="2016-03-14T17"),
    )
    assert response.status_code == 200, response.text


async def test_a_backfill_is_bounded_in_partitions(api: Api) -> None:
    await api.create_workflow()
    everything = backfill_request(start="0001-01-01T00", end="9999-12-31T00")
    response = await api.client.post(f"{API}/backfills", params={"allowFuture": "true"}, json=everything)
    assert (response.status_code, response.json()["message"]) == (
        400,
        "backfill covers too many partitions, limit = 100000",
    )
    assert await api.store.backfills(include_finished=True) == []


async def test_a_workflow_that_cannot_run_cannot_be_backfilled(api: Api) -> None:
    cannot_run = Workflow.create(COMPONENT, WorkflowConfiguration(id=WORKFLOW, schedule="hours"))
    await api.store.put_workflow(cannot_run, WorkflowState())
    response = await api.client.post(f"{API}/backfills", json=backfill_request())
    assert (response.status_code, response.json()["message"]) == (
        400,
        "Workflow is missing docker image and flyte execution config",
    )


async def test_partitions_already_active_are_a_conflict(api: Api) -> None:
    await api.create_blocked_workflow()
    for parameter in ("2016-03-13T01", "2016-03-13T02"):
        assert (await api.trigger(parameter)).status_code == 200
    response = await api.client.post(f"{API}/backfills", json=backfill_request())
    assert response.status_code == 409
    assert response.json()["message"] == "these partitions are already active: 2016-03-13T01, 2016-03-13T02"
    assert await api.store.backfills(include_finished=True) == []


async def test_reading_unknown_backfills(api: Api) -> None:
    assert (await api.client.get(f"{API}/backfills/backfill-1-2")).json() == {
        "code": 404,
        "message": "backfill not found",
    }
    edit = await api.client.put(f"{API}/backfills/backfill-1-2", json={"id": "backfill-1-2", "concurrency": 1})
    assert (edit.status_code, edit.json()["message"]) == (404, "Backfill backfill-1-2 not found.")
    halt = await api.client.delete(f"{API}/backfills/backfill-1-2")
    assert (halt.status_code, halt.json()["message"]) == (404, "backfill not found")


async def test_edit_refuses_a_different_id(api: Api) -> None:
    await api.create_workflow()
    backfill = await create_backfill(api)
    response = await api.client.put(f"{API}/backfills/{backfill['id']}", json={"id": "backfill-0-0", "concurrency": 9})
    assert (response.status_code, response.json()["message"]) == (400, "ID of payload does not match ID in uri.")
    assert (await api.store.get_backfill(backfill["id"])).concurrency == 2


async def test_statuses_follow_the_partitions(api: Api) -> None:
    """Partitions show their active state, then their replayed final state; the rest wait."""
    await api.create_blocked_workflow()
    backfill = await create_backfill(api, concurrency=1)
    path = f"{API}/backfills/{backfill['id']}"
    await api.wait_queued("2016-03-13T00")

    async def states() -> list[str]:
        body = (await api.client.get(path)).json()
        return [status["state"] for status in body["statuses"]["active_states"]]

    assert await states() == ["QUEUED", "WAITING", "WAITING"]
    without = (await api.client.get(path, params={"status": "false"})).json()
    assert without["statuses"] is None and without["backfill"]["id"] == backfill["id"]

    await api.client.put(f"{API}/resources/blocker", json={"id": "blocker", "concurrency": 1})
    await wait_until(
        lambda: _states_are(states, ["DONE", "DONE", "DONE"]), timeout=20, message="every partition to be DONE"
    )


async def test_listing_filters(api: Api) -> None:
    await api.create_blocked_workflow()  # the backfills stay unfinished, so they are listed
    await api.create_blocked_workflow(workflow="other")
    first = await create_backfill(api)
    second = await create_backfill(api, workflow="other", start="2016-03-10T00", end="2016-03-10T03")

    async def ids(**params: str) -> list[str]:
        response = await api.client.get(f"{API}/backfills", params=params)
        assert response.status_code == 200, response.text
        return [entry["backfill"]["id"] for entry in response.json()["backfills"]]

    assert sorted(await ids()) == sorted([first["id"], second["id"]])
    assert await ids(workflow="other") == [second["id"]]
    assert sorted(await ids(component=COMPONENT)) == sorted([first["id"], second["id"]])
    assert await ids(component="nobody") == []
    # `start` (a date) only applies with both component and workflow.
    assert await ids(component=COMPONENT, workflow=WORKFLOW, start="2016-03-13") == [first["id"]]
    assert await ids(component=COMPONENT, workflow=WORKFLOW, start="2016-03-14") == []
    assert sorted(await ids(start="2016-03-14")) == sorted([first["id"], second["id"]])

    async def other_states() -> list[str]:
        response = await api.client.get(f"{API}/backfills", params={"workflow": "other", "status": "true"})
        return [s["state"] for s in response.json()["backfills"][0]["statuses"]["active_states"]]

    # The backfill's driver triggers its first partitions by itself, soon after the creation answered.
    await wait_until(
        lambda: _states_are(other_states, ["QUEUED", "QUEUED", "WAITING"]), timeout=10, message="two partitions QUEUED"
    )


async def _states_are(states: Any, expected: list[str]) -> bool:
    return await states() == expected


async def test_listing_refuses_a_bad_start_date(api: Api) -> None:
    response = await api.client.get(
        f"{API}/backfills", params={"component": COMPONENT, "workflow": WORKFLOW, "start": "13/03/2016"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid start: '13/03/2016' is not a date (yyyy-MM-dd)"


async def test_halting_stops_the_active_instances_unless_graceful(api: Api) -> None:
    await api.create_blocked_workflow()
    backfill = await create_backfill(api)
    await api.tick()
    await api.wait_queued("2016-03-13T00")
    await api.wait_queued("2016-03-13T01")

    response = await api.client.delete(f"{API}/backfills/{backfill['id']}")
    assert response.status_code == 200 and response.content == b""
    assert (await api.store.get_backfill(backfill["id"])).halted is True
    assert (await api.wait_finished("2016-03-13T00"))[-1] == "halt"
    assert (await api.wait_finished("2016-03-13T01"))[-1] == "halt"


async def test_graceful_halt_leaves_the_active_instances(api: Api) -> None:
    await api.create_blocked_workflow()
    backfill = await create_backfill(api, concurrency=1)
    await api.tick()
    await api.wait_queued("2016-03-13T00")

    response = await api.client.delete(f"{API}/backfills/{backfill['id']}", params={"graceful": "TRUE"})
    assert response.status_code == 200
    assert (await api.store.get_backfill(backfill["id"])).halted is True
    assert [s.workflow_instance.parameter for s in await api.store.active_states()] == ["2016-03-13T00"]


async def test_a_workflow_failing_validation_cannot_be_backfilled(api: Api) -> None:
    config = WorkflowConfiguration(id=WORKFLOW, schedule="hours", docker_image="x", running_timeout=1)
    await api.store.put_workflow(Workflow.create(COMPONENT, config), WorkflowState())  # stored before the rules
    response = await api.client.post(f"{API}/backfills", json=backfill_request())
    assert response.status_code == 400
    message = "Invalid workflow configuration: running timeout is too small: PT1S, limit = PT1M"
    assert response.json()["message"] == message


async def test_editing_or_halting_a_backfill_of_a_deleted_workflow(api: Api) -> None:
    await api.create_workflow()
    backfill = await create_backfill(api)
    await api.client.delete(f"{API}/workflows/{COMPONENT}/{WORKFLOW}")
    path = f"{API}/backfills/{backfill['id']}"
    edit = await api.client.put(path, json={"id": backfill["id"], "concurrency": 9})
    halt = await api.client.delete(path)
    assert (edit.status_code, edit.json()["message"]) == (404, "workflow not found")
    assert (halt.status_code, halt.json()["message"]) == (404, "workflow not found")
    stored = await api.store.get_backfill(backfill["id"])
    # Refused: the edit wrote nothing (the backfill loop itself halts backfills of deleted workflows:
    # docs/semantics.md#backfills).
    assert stored.concurrency == 2 and stored.last_modified == stored.created
