"""Status endpoints: active states with their filters, and the event log of an instance (docs/api.md#status)."""

from __future__ import annotations

from tests.api.conftest import API, COMPONENT, WORKFLOW, Api


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
