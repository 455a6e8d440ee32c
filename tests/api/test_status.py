"""Status endpoints: active states with their filters, and the event log of an instance (docs/api.md#status)."""

from __future__ import annotations

import json
from pathlib import Path

from api.routers.status import streamed_active_states
from styx_actors.model import RunStateData, RunStateDataPayload
from styx_actors.store.sqlite import SqliteStore
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api
from tests.integration.test_store import instance, step


async def _active(api: Api, **params: str) -> list[str]:
    response = await api.client.get(f"{API}/status/activeStates", params=params)
    assert response.status_code == 200, response.text
    return [
        f"{s['workflow_instance']['workflow_id']['component_id']}/{s['workflow_instance']['workflow_id']['id']}/"
        f"{s['workflow_instance']['parameter']}"
        for s in response.json()["active_states"]
    ]


async def test_active_states_and_their_filters(api: Api) -> None:
    await api.create_blocked_workflow()
    await api.create_workflow(component="other", workflow_id="w", resources=["blocker"])
    await api.create_workflow(component="third", workflow_id="w", resources=["blocker"])
    for component, workflow in ((COMPONENT, WORKFLOW), ("other", "w"), ("third", "w")):
        assert (await api.trigger("2016-03-14T10", workflow=workflow, component=component)).status_code == 200
        await api.wait_queued("2016-03-14T10", workflow=workflow, component=component)

    every = ["other/w/2016-03-14T10", f"{COMPONENT}/{WORKFLOW}/2016-03-14T10", "third/w/2016-03-14T10"]
    assert await _active(api) == every
    assert await _active(api, component="other") == ["other/w/2016-03-14T10"]
    assert await _active(api, component=COMPONENT, workflow=WORKFLOW) == [f"{COMPONENT}/{WORKFLOW}/2016-03-14T10"]
    assert await _active(api, component=COMPONENT, workflow="nothing") == []
    # `components` wins over the other parameters.
    assert await _active(api, components="third,other,", component=COMPONENT) == [
        "other/w/2016-03-14T10",
        "third/w/2016-03-14T10",
    ]


async def test_active_state_shape(api: Api) -> None:
    await api.create_blocked_workflow()
    await api.trigger("2016-03-14T10")
    await api.wait_queued("2016-03-14T10")
    [state] = (await api.client.get(f"{API}/status/activeStates")).json()["active_states"]
    assert state["workflow_instance"] == {
        "workflow_id": {"component_id": COMPONENT, "id": WORKFLOW},
        "parameter": "2016-03-14T10",
    }
    assert state["state"] == "QUEUED"
    assert state["initial_timestamp"] is None and state["latest_timestamp"] == 1457969400000
    assert state["state_data"]["trigger"]["@type"] == "adhoc"
    assert state["state_data"]["messages"] == [{"level": "INFO", "line": "Resource limit reached for: [blocker]"}]


async def test_the_unfiltered_answer_is_the_filtered_ones_together(api: Api) -> None:
    await api.create_blocked_workflow()
    await api.create_workflow(component="other", workflow_id="w", resources=["blocker"])
    for parameter in ("2016-03-14T10", "2016-03-14T11"):
        for component, workflow in ((COMPONENT, WORKFLOW), ("other", "w")):
            assert (await api.trigger(parameter, workflow=workflow, component=component)).status_code == 200
            await api.wait_queued(parameter, workflow=workflow, component=component)

    streamed = await api.client.get(f"{API}/status/activeStates")
    listed = await api.client.get(f"{API}/status/activeStates", params={"components": f"{COMPONENT},other"})
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "application/json"
    assert len(streamed.json()["active_states"]) == 4
    assert streamed.json() == listed.json()


async def test_the_unfiltered_answer_is_written_a_page_at_a_time_as_one_json_document(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    try:
        assert await _streamed_body(store, page_size=2) == {"active_states": []}
        await store.commit([step(instance(p), 0, insert=True) for p in ("1", "2", "3", "4", "5")])
        expected = RunStateDataPayload(active_states=[RunStateData.of(s) for s in await store.active_states()])
        for page_size in (1, 2, 5, 1000):
            assert await _streamed_body(store, page_size) == json.loads(expected.model_dump_json(by_alias=True))
    finally:
        await store.close()


async def _streamed_body(store: SqliteStore, page_size: int) -> object:
    response = await streamed_active_states(store, page_size)
    chunks = [chunk async for chunk in response.body_iterator]
    assert len(chunks) >= 2  # the opening and the closing, with the pages between
    return json.loads(b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in chunks))


async def test_workflow_filter_needs_a_component(api: Api) -> None:
    response = await api.client.get(f"{API}/status/activeStates", params={"workflow": WORKFLOW})
    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": "No component id specified!"}


async def test_events_of_an_instance_in_order_with_the_contract_instance_form(api: Api) -> None:
    await api.create_workflow()
    await api.trigger("2016-03-14T10", trigger_parameters={"env": {"FOO": "bar"}})
    await api.wait_finished("2016-03-14T10")
    response = await api.client.get(f"{API}/status/events/{COMPONENT}/{WORKFLOW}/2016-03-14T10")
    assert response.status_code == 200
    events = response.json()["events"]
    assert [entry["event"]["@type"] for entry in events] == [
        "triggerExecution", "dequeue", "submit", "submitted", "started", "terminate", "success",
    ]  # fmt: skip
    assert {entry["event"]["workflow_instance"] for entry in events} == {f"{COMPONENT}/{WORKFLOW}/2016-03-14T10"}
    assert events[0]["event"]["parameters"] == {"env": {"FOO": "bar"}}
    assert events[0]["timestamp"] == 1457969400000
    assert events[5]["event"]["exit_code"] == 0


async def test_events_of_an_unknown_instance_are_empty(api: Api) -> None:
    response = await api.client.get(f"{API}/status/events/nobody/nothing/2016-03-14T10")
    assert response.status_code == 200 and response.json() == {"events": []}
