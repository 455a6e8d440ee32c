"""Resource endpoints: Styx's texts for refused payloads, and that a refusal writes nothing (docs/api.md)."""

from __future__ import annotations

import pytest

from styx_actors.model import WorkflowInstance
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, store_contents
from tests.conftest import wait_until


@pytest.mark.parametrize(
    ("method", "path", "content", "message"),
    [
        ("POST", "/resources", b"", "Missing payload"),
        (
            "POST",
            "/resources",
            b"{",
            "Payload parsing failed: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ("POST", "/resources", b'{"id": "r"}', "Payload parsing failed: concurrency: Field required"),
        (
            "POST",
            "/resources",
            b'{"id": "r", "concurrency": "lots"}',
            "Payload parsing failed: concurrency: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        ("POST", "/resources", b'{"id": "", "concurrency": 1}', "resource id cannot be empty"),
        (
            "POST",
            "/resources",
            b'{"id": "' + b"r" * 257 + b'", "concurrency": 1}',
            "resource id too long: 257, limit = 256",
        ),
        ("PUT", "/resources/r", b"", "Missing payload"),
        ("PUT", "/resources/r", b'{"id": "other", "concurrency": 1}', "ID of payload does not match ID in uri."),
    ],
)
async def test_refused_resource_payloads(api: Api, method: str, path: str, content: bytes, message: str) -> None:
    before = await store_contents(api.store)
    response = await api.client.request(
        method, API + path, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": message}
    assert await store_contents(api.store) == before


async def test_post_overwrites_an_existing_resource(api: Api) -> None:
    await api.client.post(f"{API}/resources", json={"id": "r", "concurrency": 1})
    await api.client.post(f"{API}/resources", json={"id": "r", "concurrency": 9})
    assert (await api.client.get(f"{API}/resources")).json() == {"resources": [{"id": "r", "concurrency": 9}]}


async def test_lowering_a_limit_reaches_the_resource_broker(api: Api) -> None:
    """A changed limit is applied by the actors, not only stored: an instance waiting on a zero-limit
    resource runs once the limit is raised."""
    await api.create_blocked_workflow()
    assert (await api.trigger("2016-03-14T10")).status_code == 200
    await api.wait_queued("2016-03-14T10")
    raised = await api.client.put(f"{API}/resources/blocker", json={"id": "blocker", "concurrency": 1})
    assert raised.status_code == 200
    assert (await api.wait_finished("2016-03-14T10"))[-1] == "success"


async def test_waiters_learn_that_their_resource_was_deleted(api: Api) -> None:
    """An instance queued at the broker asks again when a resource goes away: a runError naming it."""
    await api.create_blocked_workflow()
    assert (await api.trigger("2016-03-14T10")).status_code == 200
    await api.wait_queued("2016-03-14T10")
    assert (await api.client.delete(f"{API}/resources/blocker")).status_code == 204

    async def run_error() -> bool:
        return "runError" in await api.event_names("2016-03-14T10")

    await wait_until(run_error, timeout=10, message="the waiter's runError")
    state = await api.store.active_state(WorkflowInstance.of(COMPONENT, WORKFLOW, "2016-03-14T10"))
    assert state is not None
    assert any(m.line == "Referenced resources not found: [blocker]" for m in state.data.messages)


async def test_waiters_follow_their_workflows_new_resources(api: Api) -> None:
    """A queued instance whose workflow no longer needs the depleted resource runs without waiting for a release."""
    await api.create_blocked_workflow()
    assert (await api.trigger("2016-03-14T10")).status_code == 200
    await api.wait_queued("2016-03-14T10")
    await api.create_workflow(resources=[])
    assert (await api.wait_finished("2016-03-14T10"))[-1] == "success"
