"""Scheduler commands: trigger, retry, halt and event injection, with the scheduler's texts (docs/api.md#scheduler)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import pytest_asyncio

from styx_actors.model import Workflow, WorkflowConfiguration, WorkflowInstance, WorkflowState
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, store_contents

INSTANCE = f"{COMPONENT}/{WORKFLOW}/2016-03-14T10"
INSTANCE_ID = WorkflowInstance.of(COMPONENT, WORKFLOW, "2016-03-14T10")
STYX_INSTANCE = {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": "2016-03-14T10"}


async def _queued_instance(api: Api) -> None:
    """INSTANCE active and QUEUED behind the blocker. Idempotent: the resource and the workflow are upserts,
    and triggering the instance again while it waits is refused (409) and changes nothing."""
    await api.create_blocked_workflow()
    assert (await api.trigger("2016-03-14T10")).status_code in (200, 409)
    await api.wait_queued("2016-03-14T10")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def queued_api(shared_api: Api) -> Api:
    """The module's shared app with INSTANCE QUEUED (its workflow now uses the blocker), for refusals that
    must leave a waiting instance as it was."""
    await _queued_instance(shared_api)
    return shared_api


async def test_trigger_echoes_the_request_with_a_new_trigger_id(api: Api) -> None:
    await api.create_workflow()
    response = await api.trigger("2016-03-14T10:15", trigger_parameters={"env": {"FOO": "bar"}})
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"ad-hoc-cli-1457969400000-\d{5}", body.pop("trigger_id"))
    assert body == {
        "workflow_id": {"component_id": COMPONENT, "id": WORKFLOW},
        "parameter": "2016-03-14T10:15",  # the caller's text; the instance is the floored hour
        "trigger_parameters": {"env": {"FOO": "bar"}},
    }
    assert (await api.wait_finished("2016-03-14T10"))[0] == "triggerExecution"


async def test_trigger_works_on_disabled_workflows_and_refuses_duplicates(api: Api) -> None:
    await api.create_blocked_workflow()
    assert (await api.trigger("2016-03-14T10")).status_code == 200
    again = await api.trigger("2016-03-14T10")
    assert again.status_code == 409
    assert again.json()["message"] == (
        "This workflow instance is already triggered. Did you want to `retry` running it instead?"
    )


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("yesterday", "Cannot parse time parameter yesterday - Text 'yesterday' could not be parsed at index 0"),
        ("2016-03-14T16", "Cannot trigger an instance of the future"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_trigger_refuses_bad_parameters(shared_api: Api, parameter: str, message: str) -> None:
    api = shared_api  # its workflow is already created
    before = await store_contents(api.store)
    response = await api.trigger(parameter)
    assert (response.status_code, response.json()["message"]) == (400, message)
    assert await store_contents(api.store) == before
    assert await api.event_names("2016-03-14T16") == []


async def test_trigger_of_the_future_with_allow_future(api: Api) -> None:
    await api.create_workflow()
    body = {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": "2016-03-14T16"}
    response = await api.client.post(f"{API}/scheduler/trigger", params={"allowFuture": "true"}, json=body)
    assert response.status_code == 200


async def test_trigger_refusals_about_the_workflow(api: Api) -> None:
    unknown = await api.trigger("2016-03-14T10")
    assert (unknown.status_code, unknown.json()["message"]) == (
        400,
        "The specified workflow is not found in the scheduler",
    )
    cannot_run = Workflow.create(COMPONENT, WorkflowConfiguration(id=WORKFLOW, schedule="hours"))
    await api.store.put_workflow(cannot_run, WorkflowState())
    response = await api.trigger("2016-03-14T10")
    assert (response.status_code, response.json()["message"]) == (400, "Workflow is missing execution configuration")


async def test_trigger_refuses_a_workflow_failing_validation(api: Api) -> None:
    config = WorkflowConfiguration(id=WORKFLOW, schedule="hours", docker_image="x", running_timeout=1)
    await api.store.put_workflow(Workflow.create(COMPONENT, config), WorkflowState())  # stored before the rules
    response = await api.trigger("2016-03-14T10")
    assert response.status_code == 400
    assert (
        response.json()["message"] == "Invalid workflow configuration: running timeout is too small: PT1S, limit = PT1M"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Missing payload"),
        (b"{", "Payload parsing failed: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b'{"parameter": "2016-03-14"}', "Payload parsing failed: workflow_id: Field required"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_trigger_payload_refusals(shared_api: Api, content: bytes, message: str) -> None:
    response = await shared_api.client.post(
        f"{API}/scheduler/trigger", content=content, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["message"]) == (400, message)


@pytest.mark.parametrize("body", [{"workflow_instance": INSTANCE}, STYX_INSTANCE], ids=["contract", "styx"])
async def test_retry_in_both_body_forms_echoes_the_body(api: Api, body: dict[str, Any]) -> None:
    await api.create_blocked_workflow()
    await api.trigger("2016-03-14T10")
    await api.wait_queued("2016-03-14T10")
    response = await api.client.post(f"{API}/scheduler/retry", params={"delay": "60000"}, json=body)
    assert response.status_code == 200 and response.json() == body
    events = await api.store.events(INSTANCE_ID)
    assert json.loads(events[-1].event_json) == {
        "@type": "retryAfter",
        "workflow_instance": f"{COMPONENT}#{WORKFLOW}#2016-03-14T10",
        "delay_millis": 60000,
    }


@pytest.mark.parametrize("body", [{"workflow_instance": INSTANCE}, STYX_INSTANCE], ids=["contract", "styx"])
async def test_halt_in_both_body_forms_echoes_the_body(api: Api, body: dict[str, Any]) -> None:
    await api.create_blocked_workflow()
    await api.trigger("2016-03-14T10")
    await api.wait_queued("2016-03-14T10")
    response = await api.client.post(f"{API}/scheduler/halt", json=body)
    assert response.status_code == 200 and response.json() == body
    assert (await api.wait_finished("2016-03-14T10"))[-1] == "halt"


async def test_retry_and_halt_of_an_inactive_instance_do_nothing(api: Api) -> None:
    await api.create_workflow()
    for command in ("retry", "halt"):
        response = await api.client.post(f"{API}/scheduler/{command}", json={"workflow_instance": INSTANCE})
        assert response.status_code == 200
    assert await api.event_names("2016-03-14T10") == []


@pytest.mark.parametrize(
    ("command", "params", "body", "status", "message"),
    [
        ("retry", {"delay": "soon"}, {"workflow_instance": INSTANCE}, 400, "Delay parameter could not be parsed"),
        ("retry", {"delay": "1.5"}, {"workflow_instance": INSTANCE}, 400, "Delay parameter could not be parsed"),
        ("retry", {"delay": str(2**63)}, {"workflow_instance": INSTANCE}, 400, "Delay parameter could not be parsed"),
        ("retry", {}, {"workflow_instance": "nobody/nothing/2016"}, 404, "workflow not found"),
        ("halt", {}, {"workflow_instance": "nobody/nothing/2016"}, 404, "workflow not found"),
        (
            "halt",
            {},
            {"workflow_instance": "no-separators"},
            400,
            "Payload parsing failed: workflow_instance must be \"component/workflow/parameter\", got 'no-separators'",
        ),
        (
            "halt",
            {},
            {"workflow_instance": 7},
            400,
            'Payload parsing failed: workflow_instance must be "component/workflow/parameter", got 7',
        ),
        ("halt", {}, {"parameter": "x"}, 400, "Payload parsing failed: workflow_id: Field required"),
        ("halt", {}, None, 400, "Missing payload"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_retry_and_halt_refusals(
    queued_api: Api, command: str, params: dict[str, str], body: Any, status: int, message: str
) -> None:
    api = queued_api
    names_before = await api.event_names("2016-03-14T10")
    content = b"" if body is None else json.dumps(body).encode()
    response = await api.client.post(
        f"{API}/scheduler/{command}", params=params, content=content, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert await api.event_names("2016-03-14T10") == names_before


# ---------------------------------------------------------------------------------------------------------
# Event injection


@pytest.mark.parametrize("instance_form", [INSTANCE, f"{COMPONENT}#{WORKFLOW}#2016-03-14T10"], ids=["contract", "styx"])
async def test_injected_halt_stops_the_instance(api: Api, instance_form: str) -> None:
    await _queued_instance(api)
    response = await api.client.post(
        f"{API}/scheduler/events", json={"@type": "halt", "workflow_instance": instance_form}
    )
    assert response.status_code == 200 and response.content == b""
    assert (await api.wait_finished("2016-03-14T10"))[-1] == "halt"


async def test_injected_timeout_fails_the_instance(api: Api) -> None:
    await _queued_instance(api)
    response = await api.client.post(
        f"{API}/scheduler/events", json={"@type": "timeout", "workflow_instance": INSTANCE}
    )
    assert response.status_code == 200
    assert "timeout" in await api.event_names("2016-03-14T10")


async def test_injected_dequeue_becomes_a_retry_without_delay(api: Api) -> None:
    await _queued_instance(api)
    event = {"@type": "dequeue", "workflow_instance": INSTANCE, "resource_ids": []}
    response = await api.client.post(f"{API}/scheduler/events", json=event)
    assert response.status_code == 200 and response.json() == event
    last = json.loads((await api.store.events(INSTANCE_ID))[-1].event_json)
    assert (last["@type"], last["delay_millis"]) == ("retryAfter", 0)


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (
            {"@type": "success", "workflow_instance": INSTANCE},
            400,
            "This API for injecting generic events is deprecated, "
            "refer to the specific API for the event you want to send to the scheduler",
        ),
        (
            {"@type": "explode", "workflow_instance": INSTANCE},
            400,
            "Payload parsing failed: unknown event type: 'explode'",
        ),
        (
            {"@type": "halt"},
            400,
            'Payload parsing failed: workflow_instance must be "component/workflow/parameter", got None',
        ),
        ({"@type": "halt", "workflow_instance": "nobody/nothing/2016"}, 404, "workflow not found"),
        (None, 400, "Missing payload"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_injection_refusals(queued_api: Api, event: Any, status: int, message: str) -> None:
    api = queued_api
    names_before = await api.event_names("2016-03-14T10")
    content = b"" if event is None else json.dumps(event).encode()
    response = await api.client.post(
        f"{API}/scheduler/events", content=content, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert await api.event_names("2016-03-14T10") == names_before


async def test_injection_into_an_inactive_instance_is_ignored(api: Api) -> None:
    await _queued_instance(api)
    await api.client.post(f"{API}/scheduler/halt", json={"workflow_instance": INSTANCE})
    names = await api.wait_finished("2016-03-14T10")
    response = await api.client.post(
        f"{API}/scheduler/events", json={"@type": "timeout", "workflow_instance": INSTANCE}
    )
    assert response.status_code == 200
    assert await api.event_names("2016-03-14T10") == names
