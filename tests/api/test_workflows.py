"""Workflow endpoints: filters, payload errors, state patching and instance histories (docs/api.md#workflows)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from styx_actors.model import Workflow, WorkflowConfiguration, WorkflowState, WorkflowStatePatch
from styx_actors.timeutil import UTC
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, store_contents, workflow_config, workflow_id

WORKFLOW_PATH = f"{API}/workflows/{COMPONENT}/{WORKFLOW}"


async def test_list_filters_by_deployment_source_and_time(api: Api) -> None:
    await api.create_workflow(workflow_id="early", deployment_source={"source": "ci", "repository": "r"})
    api.clock.advance(timedelta(hours=1))
    await api.create_workflow(workflow_id="late", deployment_source={"source": "manual"})
    # A workflow stored without a deployment time (written by an older version) has no place in time filters.
    legacy = Workflow.create(COMPONENT, WorkflowConfiguration(id="legacy", schedule="days", docker_image="x"))
    await api.store.put_workflow(legacy, WorkflowState())

    async def listed(**params: str) -> list[str]:
        response = await api.client.get(f"{API}/workflows", params=params)
        assert response.status_code == 200, response.text
        return sorted(w["workflow_id"] for w in response.json())

    assert await listed() == ["early", "late", "legacy"]
    assert await listed(deployment_type="ci") == ["early"]
    assert await listed(deployment_time_after="2016-03-14T15:30:00Z") == ["late"]  # strictly after
    assert await listed(deployment_time_before="2016-03-14T16:30:00Z") == ["early"]  # strictly before
    assert await listed(deployment_time_after="2016-03-14T15:00:00Z", deployment_type="manual") == ["late"]


async def test_list_refuses_an_unparsable_time_filter(api: Api) -> None:
    response = await api.client.get(f"{API}/workflows", params={"deployment_time_before": "yesterday"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Invalid deployment_time_before: ")


@pytest.mark.parametrize("query", ["?full", "?full=true", "?full=false"])
async def test_full_is_a_presence_flag(api: Api, query: str) -> None:
    await api.create_workflow()
    [entry] = (await api.client.get(f"{API}/workflows{query}")).json()
    assert entry["workflow"]["workflow_id"] == WORKFLOW
    assert entry["state"]["enabled"] == "false"


async def test_component_listing_is_empty_for_an_unknown_component(api: Api) -> None:
    response = await api.client.get(f"{API}/workflows/nobody")
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Missing payload."),
        (b"   ", "Missing payload."),
        (
            b'{"id": "x",',
            "Invalid payload. Expecting property name enclosed in double quotes: line 1 column 12 (char 11)",
        ),
        (b'{"id": "x"}', "Invalid payload. schedule: Field required"),
        (b'["x"]', "Invalid payload. Input should be a valid dictionary or instance of WorkflowConfiguration"),
        (
            b'{"id": "x", "schedule": "hours", "docker_args": [1]}',
            "Invalid payload. docker_args.0: Input should be a valid string",
        ),
        (b'{"id": "x", "schedule": "hours", "docker_image": "busybox", "running_timeout": "long"}', None),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_create_refuses_bad_payloads(shared_api: Api, content: bytes, message: str | None) -> None:
    api = shared_api
    before = await store_contents(api.store)
    response = await api.client.post(
        f"{API}/workflows/{COMPONENT}", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    if message is not None:
        assert response.json() == {"code": 400, "message": message}
    else:
        assert response.json()["message"].startswith("Invalid payload. running_timeout: ")
    assert await store_contents(api.store) == before


async def test_create_refuses_invalid_configurations_with_every_error(api: Api) -> None:
    config = workflow_config(schedule="every minute", running_timeout="PT10S")
    response = await api.client.post(f"{API}/workflows/{COMPONENT}", json=config)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "Invalid workflow configuration: [invalid schedule, running timeout is too small: PT10S, limit = PT1M]"
    )
    assert await api.store.workflows() == []


async def test_create_requires_a_docker_image(api: Api) -> None:
    response = await api.client.post(f"{API}/workflows/{COMPONENT}", json={"id": WORKFLOW, "schedule": "days"})
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid workflow configuration: [docker image cannot be empty]"
    assert await api.store.workflows() == []


async def test_component_ids_with_hash_are_refused(api: Api) -> None:
    response = await api.client.post(f"{API}/workflows/a%23b", json=workflow_config())
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid workflow configuration: [component id cannot contain #]"


async def test_create_accepts_lenient_json(api: Api) -> None:
    """Styx's conventions: a single value for a list, numbers for env strings, ISO or seconds durations,
    and (for the contract's own examples) a trailing comma."""
    content = (
        b'{"id": "w", "schedule": "days", "docker_image": "busybox", "docker_args": "run", "env": {"N": 3},'
        b' "running_timeout": 7200,}'
    )
    response = await api.client.post(
        f"{API}/workflows/{COMPONENT}", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    config = response.json()["configuration"]
    assert (config["docker_args"], config["env"], config["running_timeout"]) == (["run"], {"N": "3"}, "PT2H")


async def test_state_of_an_unknown_workflow_is_disabled(api: Api) -> None:
    response = await api.client.get(f"{API}/workflows/nobody/nothing/state")
    assert response.status_code == 200
    assert response.json() == {"enabled": "false", "next_natural_trigger": None, "next_natural_offset_trigger": None}


async def test_full_of_an_unknown_workflow_is_404(api: Api) -> None:
    response = await api.client.get(f"{API}/workflows/nobody/nothing/full")
    assert response.status_code == 404 and response.json()["message"] == "Workflow does not exist"


async def test_patch_overwrites_only_the_fields_present(api: Api) -> None:
    await api.create_workflow()
    response = await api.client.patch(f"{WORKFLOW_PATH}/state", json={"next_natural_trigger": "2016-03-15T00:00:00Z"})
    assert response.status_code == 200
    assert response.json() == {
        "enabled": "false",
        "next_natural_trigger": "2016-03-15T00:00:00Z",
        "next_natural_offset_trigger": "2016-03-14T16:00:00Z",  # Styx quirk: left as it was
    }
    enabled = await api.client.patch(f"{WORKFLOW_PATH}/state", json={"enabled": True})
    assert enabled.json()["enabled"] == "true" and enabled.json()["next_natural_trigger"] == "2016-03-15T00:00:00Z"


@pytest.mark.parametrize(
    ("path", "content", "status", "message"),
    [
        (WORKFLOW_PATH, b"", 400, "Missing payload."),
        (f"{API}/workflows/{COMPONENT}/unknown", b'{"enabled": true}', 404, "workflow not found"),
        # Not JSON: Styx's bare text, without the parser's detail (which only creating a workflow gives).
        (WORKFLOW_PATH, b"{enabled}", 400, "Invalid payload."),
        (WORKFLOW_PATH, b'{"enabled": tru', 400, "Invalid payload."),
        (WORKFLOW_PATH, b'{"enabled": NaN}', 400, "Invalid payload."),
        (WORKFLOW_PATH, b'{"enabled": "maybe"}', 400, "Invalid payload. enabled: Value error, must be true or false"),
        (WORKFLOW_PATH, b'{"next_natural_trigger": "soon"}', 400, None),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_patch_refusals(shared_api: Api, path: str, content: bytes, status: int, message: str | None) -> None:
    api = shared_api  # its workflow is already created
    before = await store_contents(api.store)
    response = await api.client.patch(f"{path}/state", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    if message is not None:
        assert response.json()["message"] == message
    assert await store_contents(api.store) == before


async def test_patch_on_a_missing_workflow_checks_the_payload_is_present_first(api: Api) -> None:
    response = await api.client.patch(f"{API}/workflows/{COMPONENT}/unknown/state")
    assert response.status_code == 400 and response.json()["message"] == "Missing payload."


# ---------------------------------------------------------------------------------------------------------
# Instances


@pytest.fixture
async def five_instances(api: Api) -> Api:
    """Hourly workflow created at 15:30 (next natural trigger: instance 15:00); instances 11:00-15:00 ran."""
    await api.create_workflow()
    for hour in range(11, 16):
        assert (await api.trigger(f"2016-03-14T{hour}")).status_code == 200
    for hour in range(11, 16):
        assert (await api.wait_finished(f"2016-03-14T{hour}"))[-1] == "success"
    return api


async def _parameters(api: Api, **params: str) -> list[str]:
    response = await api.client.get(f"{WORKFLOW_PATH}/instances", params=params)
    assert response.status_code == 200, response.text
    return [entry["workflow_instance"]["parameter"] for entry in response.json()]


async def test_instances_in_each_query_style(five_instances: Api) -> None:
    api = five_instances
    all_hours = [f"2016-03-14T{hour}" for hour in range(11, 16)]
    assert await _parameters(api) == all_hours
    assert await _parameters(api, offset="2016-03-14T13", limit="2") == ["2016-03-14T13", "2016-03-14T14"]
    assert await _parameters(api, limit="0") == []
    assert await _parameters(api, start="2016-03-14T12", stop="2016-03-14T14") == ["2016-03-14T12", "2016-03-14T13"]
    assert await _parameters(api, start="2016-03-14T14") == ["2016-03-14T14", "2016-03-14T15"]
    # tail: the `limit` natural periods before the next natural trigger (15:00), i.e. 12:00-14:00.
    assert await _parameters(api, tail="TRUE", limit="3") == ["2016-03-14T12", "2016-03-14T13", "2016-03-14T14"]


async def test_instance_history_shape(five_instances: Api) -> None:
    response = await five_instances.client.get(f"{WORKFLOW_PATH}/instances/2016-03-14T12")
    assert response.status_code == 200
    body = response.json()
    assert body["workflow_instance"] == {
        "workflow": {"component_id": COMPONENT, "id": WORKFLOW},
        "parameter": "2016-03-14T12",
    }
    [trigger] = body["triggers"]
    assert trigger["trigger_id"].startswith("ad-hoc-cli-") and trigger["complete"] is True
    [execution] = trigger["executions"]
    assert execution["execution_id"].startswith("styx-run-")
    assert [status["status"] for status in execution["statuses"]][-1] == "SUCCESS"


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"limit": "many"}, 400, "query.limit: Input should be a valid integer, unable to parse string as an integer"),
        ({"limit": "-1"}, 400, "query.limit: Input should be greater than or equal to 0"),
        ({"limit": "10001"}, 400, "query.limit: Input should be less than or equal to 10000"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_instances_refuse_bad_limits(shared_api: Api, params: dict[str, str], status: int, message: str) -> None:
    response = await shared_api.client.get(f"{WORKFLOW_PATH}/instances", params=params)
    assert (response.status_code, response.json()["message"]) == (status, message)


async def test_tail_needs_the_workflow_and_its_next_trigger(api: Api) -> None:
    unknown = await api.client.get(f"{WORKFLOW_PATH}/instances", params={"tail": "true"})
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Could not find workflow.")
    never_scheduled = Workflow.create(COMPONENT, WorkflowConfiguration(id=WORKFLOW, schedule="hours", docker_image="x"))
    await api.store.put_workflow(never_scheduled, WorkflowState())
    response = await api.client.get(f"{WORKFLOW_PATH}/instances", params={"tail": "true"})
    assert (response.status_code, response.json()["message"]) == (404, "No next natural trigger for workflow.")


async def test_tail_from_a_trigger_off_the_schedule_is_a_clear_400(api: Api) -> None:
    await api.create_workflow()
    off_schedule = datetime(2016, 3, 14, 15, 17, tzinfo=UTC)
    await api.store.patch_workflow_state(workflow_id(), WorkflowStatePatch(next_natural_trigger=off_schedule))
    response = await api.client.get(f"{WORKFLOW_PATH}/instances", params={"tail": "true"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Cannot compute the tail of the workflow: ")


async def test_an_instance_without_events_is_404(api: Api) -> None:
    response = await api.client.get(f"{WORKFLOW_PATH}/instances/2016-03-14T12")
    assert response.status_code == 404 and response.json()["message"] == "Workflow instance not found"
