"""Every example request of the v3 contract, sent to a server seeded with the example's data, gets a
response of the example's shape.

The shapes are checked the way dredd's validator (gavel) checks a JSON example: every key of the example
must be present, recursively (objects must be objects, arrays arrays; the first element of a non-empty
example array is matched against the first actual element), and values may differ. Here types are
checked too where the contract fixes them (e.g. `enabled` is a string).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from styx_actors.clock import ManualClock
from styx_actors.events import TriggerExecution, event_to_json_text
from styx_actors.model import (
    Backfill,
    ExecutionDescription,
    Message,
    RunState,
    State,
    StateData,
    Trigger,
    WorkflowId,
    WorkflowInstance,
)
from styx_actors.store.base import Transition
from styx_actors.timeutil import UTC
from tests.api.conftest import API, BLOCKER, Api

COMPONENT, WORKFLOW = "styx-canary", "StyxCanary"
BACKFILL_ID = "backfill-1489054446085-52684"
NOW = datetime(2017, 1, 2, 0, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


# ---------------------------------------------------------------------------------------------------------
# Seeds: the data each example assumes


async def seed_workflow(api: Api, *, resources: list[str] | None = None) -> None:
    config = {
        "id": WORKFLOW,
        "schedule": "hours",
        "docker_image": "styx-canary-dummy:dummy",
        "docker_args": ["luigi", "--module", "canary_job", "CanaryJob"],
        "env": {"FOO": "bar"},
        "resources": resources or [],
        "running_timeout": "PT2H",
        "retry_condition": "#tries < 3",
    }
    response = await api.client.post(f"{API}/workflows/{COMPONENT}", json=config)
    assert response.status_code == 200, response.text


async def seed_resource(api: Api) -> None:
    await api.client.post(f"{API}/resources", json={"id": "styx-canary-resource", "concurrency": 20})


async def seed_finished_instance(api: Api, parameter: str) -> None:
    await seed_workflow(api)
    response = await api.trigger(parameter, trigger_parameters={"env": {"FOO": "bar"}})
    assert response.status_code == 200, response.text
    await api.wait_finished(parameter)


async def seed_queued_instance(api: Api) -> None:
    await api.client.post(f"{API}/resources", json={"id": BLOCKER, "concurrency": 0})
    await seed_workflow(api, resources=[BLOCKER])
    await api.trigger("2017-01-01T01", trigger_parameters={"env": {"FOO": "bar"}})
    await api.wait_queued("2017-01-01T01")


async def seed_running_snapshot(api: Api) -> None:
    """The example's RUNNING instance, as the store holds it (the noop runner cannot keep one running)."""
    await seed_workflow(api)
    instance = WorkflowInstance.of(COMPONENT, WORKFLOW, "2017-01-01T01")
    data = StateData(
        tries=2,
        retry_cost=0.2,
        retry_delay_millis=600000,
        last_exit=20,
        trigger=Trigger.natural(),
        trigger_id="natural-trigger",
        execution_id="styx-run-6b1962c6-23ba-4245-a13b-ec3baa4b21d5",
        execution_description=ExecutionDescription(
            docker_image="styx-canary-dummy:dummy",
            docker_args=["luigi", "--module", "canary_job", "CanaryJob"],
            commit_sha="f043333085fa87738ac24f04d64fb58ecc845111",
        ),
        messages=[Message.warning("Exit code: 20")],
    )
    state = RunState(workflow_instance=instance, state=State.RUNNING, timestamp=1536838486185, data=data, counter=0)
    event = event_to_json_text(TriggerExecution(trigger=Trigger.natural()), instance)
    assert await api.store.commit([Transition(state=state, event_json=event, insert=True)]) == [True]


async def seed_backfill(api: Api) -> None:
    """The example's backfill id (ids are generated, so it is written to the store as a test hook would);
    its driver then runs the first partition, the example's DONE status."""
    await seed_workflow(api)
    backfill = Backfill(
        id=BACKFILL_ID,
        start=datetime(2017, 1, 1, tzinfo=UTC),
        end=datetime(2017, 1, 1, 2, tzinfo=UTC),
        workflow_id=WorkflowId(component_id=COMPONENT, id=WORKFLOW),
        concurrency=1,
        description="fixed bug and reproduce data",
        next_trigger=datetime(2017, 1, 1, tzinfo=UTC),
        schedule="hours",
        trigger_parameters={"env": {"FOO": "bar"}},
        created=NOW,
        last_modified=NOW,
    )
    await api.store.put_backfill(backfill)
    await api.tick()
    await api.wait_finished("2017-01-01T00")


# ---------------------------------------------------------------------------------------------------------
# Shapes


CONFIGURATION = {
    "id": str, "schedule": str, "offset": None, "docker_image": None, "docker_args": [str],
    "docker_termination_logging": bool, "env": {"FOO": str}, "service_account": None, "resources": list,
    "running_timeout": None, "retry_condition": None,
}  # fmt: skip
WORKFLOW_SHAPE = {"component_id": str, "workflow_id": str, "component_uri": None, "configuration": CONFIGURATION}
STATE_SHAPE = {"enabled": str, "next_natural_trigger": None, "next_natural_offset_trigger": None}
RESOURCE = {"concurrency": int, "id": str}
BACKFILL = {
    "all_triggered": bool, "concurrency": int, "end": str, "halted": bool, "id": str, "next_trigger": str,
    "schedule": str, "start": str, "trigger_parameters": {"env": {"FOO": str}},
    "workflow_id": {"component_id": str, "id": str}, "created": str, "last_modified": str, "description": None,
}  # fmt: skip
STATE_DATA = {
    "consecutive_failures": int,
    "execution_description": {
        "commit_sha": None, "docker_args": [str], "docker_image": str, "docker_termination_logging": bool,
    },
    "execution_id": str, "last_exit": int, "messages": [{"level": str, "line": str}], "retry_cost": float,
    "retry_delay_millis": None, "tries": int, "trigger": {"@type": str}, "trigger_id": str,
}  # fmt: skip
RUN_STATE = {
    "latest_timestamp": int,
    "state": str,
    "state_data": STATE_DATA,
    "workflow_instance": {"parameter": str, "workflow_id": {"component_id": str, "id": str}},
}
INSTANCE_HISTORY = {
    "workflow_instance": {"workflow": {"component_id": str, "id": str}, "parameter": str},
    "triggers": [{
        "trigger_id": str, "timestamp": str, "complete": bool,
        "executions": [{
            "execution_id": str, "docker_image": str, "commit_sha": None, "runner_id": str,
            "statuses": [{"timestamp": str, "status": str}],
        }],
    }],
}  # fmt: skip
INSTANCE_REFERENCE = {"workflow_instance": str}
WORKFLOW_ID = {"component_id": str, "id": str}


def assert_shape(actual: Any, expected: Any, where: str = "") -> None:
    if expected is None:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where or '/'}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}/{key}: missing"
            assert_shape(actual[key], value, f"{where}/{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where or '/'}: expected an array, got {actual!r}"
        if expected:
            assert actual, f"{where or '/'}: expected a non-empty array"
            assert_shape(actual[0], expected[0], f"{where}/0")
    elif expected is float:
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{where}: {actual!r} is not a number"
    elif expected is int:
        assert isinstance(actual, int) and not isinstance(actual, bool), f"{where}: {actual!r} is not an integer"
    else:
        assert isinstance(actual, expected), f"{where}: {actual!r} is not {expected.__name__}"


# ---------------------------------------------------------------------------------------------------------
# The examples


Seed = Callable[[Api], Awaitable[None]]


@dataclass(frozen=True)
class Example:
    name: str
    method: str
    path: str  # under /api/v3, with the example's query
    seed: Seed | None = None
    body: str | None = None  # sent verbatim, as dredd sends the example
    status: int = 200
    shape: Any = field(default=None)


EXAMPLES = [
    Example("list workflows", "GET", "/workflows", seed_workflow, shape=[WORKFLOW_SHAPE]),
    Example("list workflows with state", "GET", "/workflows?full=true", seed_workflow,
            shape=[{"workflow": WORKFLOW_SHAPE, "state": STATE_SHAPE}]),
    Example("list component workflows", "GET", f"/workflows/{COMPONENT}", seed_workflow, shape=[WORKFLOW_SHAPE]),
    Example("create workflow", "POST", f"/workflows/{COMPONENT}", body="""{
        "id": "StyxCanary", "schedule": "days", "offset": null, "docker_image": "styx-canary-dummy:dummy",
        "docker_args": ["luigi", "--module", "canary_job", "CanaryJob"], "docker_termination_logging": false,
        "env": {"FOO": "bar"}, "service_account": null, "resources": [], "running_timeout": "PT2H",
        "retry_condition": "#tries < 3"}""", shape={**WORKFLOW_SHAPE, "__from_api": str}),
    Example("get workflow", "GET", f"/workflows/{COMPONENT}/{WORKFLOW}", seed_workflow, shape=WORKFLOW_SHAPE),
    Example("delete workflow", "DELETE", f"/workflows/{COMPONENT}/{WORKFLOW}", seed_workflow, status=204),
    Example("workflow with state", "GET", f"/workflows/{COMPONENT}/{WORKFLOW}/full", seed_workflow,
            shape={"workflow": WORKFLOW_SHAPE, "state": STATE_SHAPE}),
    Example("workflow instances", "GET",
            f"/workflows/{COMPONENT}/{WORKFLOW}/instances?offset=2017-01-01&limit=10&tail=true&start=2017-01-01&stop=2017-01-03",
            lambda api: seed_finished_instance(api, "2017-01-01T20"), shape=[INSTANCE_HISTORY]),
    Example("workflow instance", "GET", f"/workflows/{COMPONENT}/{WORKFLOW}/instances/2016-07-13T08",
            lambda api: seed_finished_instance(api, "2016-07-13T08"), shape=INSTANCE_HISTORY),
    Example("workflow state", "GET", f"/workflows/{COMPONENT}/{WORKFLOW}/state", seed_workflow, shape=STATE_SHAPE),
    Example("set workflow state", "PATCH", f"/workflows/{COMPONENT}/{WORKFLOW}/state", seed_workflow, body="""{
        "enabled": "false", "next_natural_trigger": "2017-01-01T01:00:00Z",
        "next_natural_offset_trigger": "2017-01-01T02:00:00Z"}""", shape=STATE_SHAPE),
    Example("list resources", "GET", "/resources", seed_resource, shape={"resources": [RESOURCE]}),
    Example("create resource", "POST", "/resources", body='{"concurrency": "20", "id": "styx-canary-resource"}',
            shape=RESOURCE),
    Example("get resource", "GET", "/resources/styx-canary-resource", seed_resource, shape={"resources": [RESOURCE]}),
    Example("delete resource", "DELETE", "/resources/styx-canary-resource", seed_resource, status=204),
    Example("modify resource", "PUT", "/resources/styx-canary-resource", seed_resource,
            body='{"concurrency": "30", "id": "styx-canary-resource"}', shape=RESOURCE),
    Example("list backfills", "GET", f"/backfills?component={COMPONENT}&workflow={WORKFLOW}&status=true&showAll=true",
            seed_backfill, shape={"backfills": [{"backfill": BACKFILL, "statuses": {"active_states": [RUN_STATE]}}]}),
    Example("create backfill", "POST", "/backfills?allowFuture=false", seed_workflow, body="""{
        "start": "2017-01-01T00:00:00Z", "end": "2017-01-02T00:00:00Z", "component": "styx-canary",
        "concurrency": "10", "reverse": true, "description": "fixed bug and reproduce data",
        "trigger_parameters": {"env": {"FOO": "bar"}}, "workflow": "StyxCanary",
    }""", shape=BACKFILL),
    Example("get backfill", "GET", f"/backfills/{BACKFILL_ID}?status=true", seed_backfill,
            shape={"backfill": BACKFILL, "statuses": {"active_states": [RUN_STATE]}}),
    Example("modify backfill", "PUT", f"/backfills/{BACKFILL_ID}", seed_backfill, body="""{
        "concurrency": 20, "description": "fixed bug and reproduce data", "id": "backfill-1489054446085-52684",
    }""", shape=BACKFILL),
    Example("delete backfill", "DELETE", f"/backfills/{BACKFILL_ID}", seed_backfill),
    Example("active states", "GET",
            f"/status/activeStates?component={COMPONENT}&workflow={WORKFLOW}&components=styx-canary%2Cstyx-canary1%2Cstyx-canary3",
            seed_running_snapshot, shape={"active_states": [RUN_STATE]}),
    Example("instance events", "GET", f"/status/events/{COMPONENT}/{WORKFLOW}/2017-01-01T01", seed_queued_instance,
            shape={"events": [{"event": {"@type": str, "trigger": {"@type": str}, "workflow_instance": str,
                                         "parameters": {"env": {"FOO": str}}}, "timestamp": int}]}),
    Example("retry", "POST", "/scheduler/retry?delay=0", seed_queued_instance,
            body='{"workflow_instance": "styx-canary/StyxCanary/2017-01-01T01"}', shape=INSTANCE_REFERENCE),
    Example("halt", "POST", "/scheduler/halt", seed_queued_instance,
            body='{"workflow_instance": "styx-canary/StyxCanary/2017-01-01T01"}', shape=INSTANCE_REFERENCE),
    Example("trigger", "POST", "/scheduler/trigger?allowFuture=false", seed_workflow, body="""{
        "parameter": "2017-01-01T01", "trigger_parameters": {"env": {"FOO": "bar"}},
        "workflow_id": {"component_id": "styx-canary", "id": "StyxCanary"}}""",
            shape={"parameter": str, "trigger_parameters": {"env": {"FOO": str}}, "workflow_id": WORKFLOW_ID,
                   "trigger_id": str}),
    Example("get global enabled", "GET", "/config", shape={"enabled": str}),
    Example("set global enabled", "POST", "/config?enabled=true", shape={"enabled": str}),
]  # fmt: skip


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
async def test_contract_example(api: Api, example: Example) -> None:
    if example.seed is not None:
        await example.seed(api)
    headers = {"Content-Type": "application/json"} if example.body is not None else {}
    response = await api.client.request(example.method, API + example.path, content=example.body, headers=headers)
    assert response.status_code == example.status, response.text
    if example.shape is not None:
        assert response.headers["content-type"] == "application/json"
        assert_shape(response.json(), example.shape)
