"""Bounded, well-checked input (docs/api.md, "Bounds"): a pathological body does not hold the event loop,
text that could not be stored is a 400, and every id, count, env and page has a ceiling. Every refusal
writes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from api.bounds import MAX_COMPONENTS_PER_QUERY, MAX_CONCURRENCY
from api.routers.backfills import MAX_STATUS_PAGE
from styx_actors.timeutil import UTC, format_instant
from styx_actors.validation import MAX_ENV_SIZE, MAX_ENV_VARS, MAX_ID_LENGTH
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, store_contents, workflow_config

# Writes carry JSON (the service refuses other content types before reading the body).
JSON = {"Content-Type": "application/json"}
SHARED = pytest.mark.asyncio(loop_scope="module")
TOO_LONG = "x" * (MAX_ID_LENGTH + 1)
LONGEST = "x" * MAX_ID_LENGTH
LONE_SURROGATE = "\ud800"
WORKFLOW_PATH = f"{API}/workflows/{COMPONENT}/{WORKFLOW}"


def instance_body(parameter: str = "2016-03-14T10", component: str = COMPONENT, **extra: Any) -> dict[str, Any]:
    return {"workflow_id": {"component_id": component, "id": WORKFLOW}, "parameter": parameter, **extra}


def backfill_body(**extra: Any) -> dict[str, Any]:
    return {"start": "2016-03-13T00:00:00Z", "end": "2016-03-13T03:00:00Z", "component": COMPONENT,
            "workflow": WORKFLOW, "concurrency": 2, **extra}  # fmt: skip


def env_of(count: int, value_size: int = 1) -> dict[str, str]:
    return {f"K{index:05}": "v" * value_size for index in range(count)}


async def refused(api: Api, method: str, path: str, body: Any = None, **params: str) -> str:
    """Send a request that must be refused with a 400 and change nothing; its message."""
    before = await store_contents(api.store)
    content = None if body is None else json.dumps(body).encode()  # ASCII: lone surrogates as \\u escapes
    response = await api.client.request(method, API + path, content=content, params=params, headers=JSON)
    assert response.status_code == 400, response.text
    assert await store_contents(api.store) == before
    return str(response.json()["message"])


# ---------------------------------------------------------------------------------------------------------
# A pathological body and the event loop

HEALTHZ_SECONDS = 3.0  # the quadratic reader held it ~9 s of CPU for this body


@pytest.mark.local_only(reason="the body is read by the API process whatever system runs the actors")
async def test_healthz_answers_promptly_while_a_pathological_body_is_read(api: Api) -> None:
    """`/healthz` is asked again and again, through the same app, while a 1 MB `[1,1,1,…` is read. Each call
    first yields to the event loop, as a server does between reading requests from its sockets: the reading
    runs then, and the call that waited for it measures how long the loop was held."""
    body = b"[" + b"1," * 500_000
    before = await store_contents(api.store)
    pathological = asyncio.create_task(api.client.post(f"{API}/resources", content=body, headers=JSON))
    latencies: list[float] = []
    while True:
        started = time.monotonic()
        await asyncio.sleep(0)  # a yield, not a wait: whatever is ready runs before this call is answered
        health = await api.client.get("/healthz")
        latencies.append(time.monotonic() - started)
        assert health.status_code == 200
        if pathological.done():
            break
    response = await pathological
    assert response.status_code == 400
    assert response.json()["message"].startswith("Payload parsing failed: Expecting value: line 1 column 1000002")
    assert max(latencies) < HEALTHZ_SECONDS, f"/healthz waited {max(latencies):.2f}s"
    assert await store_contents(api.store) == before


# ---------------------------------------------------------------------------------------------------------
# Text that cannot be encoded

SURROGATE_CASES = {
    "workflow id": ("POST", f"/workflows/{COMPONENT}", workflow_config(workflow_id=LONE_SURROGATE), "id"),
    "env key": ("POST", f"/workflows/{COMPONENT}", workflow_config(env={LONE_SURROGATE: "v"}), "env"),
    "env value": ("POST", f"/workflows/{COMPONENT}", workflow_config(env={"K": LONE_SURROGATE}), "env.K"),
    "docker arg": (
        "POST", f"/workflows/{COMPONENT}", workflow_config(docker_args=["a", LONE_SURROGATE]), "docker_args.1",
    ),
    "commit sha": ("POST", f"/workflows/{COMPONENT}", workflow_config(commit_sha=LONE_SURROGATE), "commit_sha"),
    "resource id": ("POST", "/resources", {"id": LONE_SURROGATE, "concurrency": 1}, "id"),
    "resource id (update)": ("PUT", "/resources/r", {"id": f"r{LONE_SURROGATE}", "concurrency": 1}, "id"),
    "backfill description": ("POST", "/backfills", backfill_body(description=LONE_SURROGATE), "description"),
    "backfill trigger env": (
        "POST", "/backfills", backfill_body(trigger_parameters={"env": {"K": LONE_SURROGATE}}),
        "trigger_parameters.env.K",
    ),
    "backfill edit description": (
        "PUT", "/backfills/backfill-1-1", {"id": "backfill-1-1", "description": LONE_SURROGATE}, "description",
    ),
    "trigger parameter": ("POST", "/scheduler/trigger", instance_body(LONE_SURROGATE), "parameter"),
    "trigger component": (
        "POST", "/scheduler/trigger", instance_body(component=LONE_SURROGATE), "workflow_id.component_id",
    ),
    "trigger env key": (
        "POST", "/scheduler/trigger", instance_body(trigger_parameters={"env": {LONE_SURROGATE: "v"}}),
        "trigger_parameters.env",
    ),
    "trigger env value": (
        "POST", "/scheduler/trigger", instance_body(trigger_parameters={"env": {"K": LONE_SURROGATE}}),
        "trigger_parameters.env.K",
    ),
    "retried instance": ("POST", "/scheduler/retry", {"workflow_instance": f"{COMPONENT}/{WORKFLOW}/{LONE_SURROGATE}"},
                         "workflow_instance"),
    "halted instance": ("POST", "/scheduler/halt", instance_body(LONE_SURROGATE), "parameter"),
    "injected event": ("POST", "/scheduler/events", {"@type": "halt", "workflow_instance": f"c/{LONE_SURROGATE}/p"},
                       "workflow_instance"),
}  # fmt: skip


@SHARED
@pytest.mark.parametrize(("method", "path", "body", "where"), list(SURROGATE_CASES.values()), ids=list(SURROGATE_CASES))
async def test_lone_surrogates_are_refused_naming_the_field(
    shared_api: Api, method: str, path: str, body: dict[str, Any], where: str
) -> None:
    message = await refused(shared_api, method, path, body)
    prefix = "Invalid payload. " if path.startswith("/workflows") else "Payload parsing failed: "
    what = "a key is " if where in ("env", "trigger_parameters.env") else ""  # the surrogate is in a key there
    assert message == f"{prefix}{where}: {what}not valid Unicode text (an unpaired surrogate)"


@SHARED
async def test_a_lone_surrogate_in_a_state_patch_is_an_invalid_payload(shared_api: Api) -> None:
    message = await refused(shared_api, "PATCH", f"/workflows/{COMPONENT}/{WORKFLOW}/state", {"enabled": "\udfff"})
    assert message == "Invalid payload."  # Styx's text for a state patch that cannot be read


# ---------------------------------------------------------------------------------------------------------
# Trigger env: a workflow's env limits


@SHARED
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (env_of(MAX_ENV_VARS + 1), f"trigger_parameters.env: too many env vars: 129, limit = {MAX_ENV_VARS}"),
        ({"K": "v" * MAX_ENV_SIZE}, f"trigger_parameters.env: env too big: 16385, limit = {MAX_ENV_SIZE}"),
        (
            env_of(20_000, 30),  # a body of ~900 KB, like the 20,000-variable env the audit saw stored
            (
                "trigger_parameters.env: too many env vars: 20000, limit = 128, "
                "trigger_parameters.env: env too big: 720000, limit = 16384"
            ),
        ),
    ],
    ids=["count", "size", "both"],
)
async def test_trigger_env_is_bounded_like_a_workflow_env(shared_api: Api, env: dict[str, str], message: str) -> None:
    parameters = {"env": env}
    trigger = instance_body(trigger_parameters=parameters)
    assert await refused(shared_api, "POST", "/scheduler/trigger", trigger) == message
    assert await refused(shared_api, "POST", "/backfills", backfill_body(trigger_parameters=parameters)) == message


async def test_trigger_env_at_the_limits_is_accepted(api: Api) -> None:
    await api.create_workflow()
    at_limit = env_of(MAX_ENV_VARS - 1) | {"BIG": "v" * (MAX_ENV_SIZE - (MAX_ENV_VARS - 1) * 7 - 3)}
    triggered = await api.trigger("2016-03-14T10", trigger_parameters={"env": at_limit})
    assert triggered.status_code == 200, triggered.text
    backfill = await api.client.post(f"{API}/backfills", json=backfill_body(trigger_parameters={"env": at_limit}))
    assert backfill.status_code == 200, backfill.text
    stored = await api.store.get_backfill(backfill.json()["id"])
    assert stored is not None and stored.trigger_parameters is not None
    assert stored.trigger_parameters.env == at_limit


# ---------------------------------------------------------------------------------------------------------
# Concurrency


@SHARED
@pytest.mark.parametrize(
    ("concurrency", "message"),
    [
        (-1, "concurrency is too small: -1, limit = 0"),
        (MAX_CONCURRENCY + 1, "concurrency is too big: 10001, limit = 10000"),
        (2**70, f"concurrency is too big: {2**70}, limit = 10000"),
    ],
)
async def test_resource_concurrency_is_bounded(shared_api: Api, concurrency: int, message: str) -> None:
    resource = {"id": "bounded", "concurrency": concurrency}
    assert await refused(shared_api, "POST", "/resources", resource) == message
    assert await refused(shared_api, "PUT", "/resources/bounded", resource) == message


@SHARED
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"concurrency": 0}, "concurrency is too small: 0, limit = 1"),
        ({"concurrency": -5}, "concurrency is too small: -5, limit = 1"),
        ({"concurrency": "10001"}, "concurrency is too big: 10001, limit = 10000"),
        ({"description": "d" * 1025}, "description too long: 1025, limit = 1024"),
    ],
)
async def test_backfill_concurrency_and_description_are_bounded(
    shared_api: Api, edit: dict[str, Any], message: str
) -> None:
    assert await refused(shared_api, "POST", "/backfills", backfill_body(**edit)) == message
    assert await refused(shared_api, "PUT", "/backfills/backfill-1-1", {"id": "backfill-1-1", **edit}) == message


@SHARED
async def test_a_backfill_without_concurrency_is_refused(shared_api: Api) -> None:
    """Styx defaults it to 0, a backfill that never triggers anything."""
    body = backfill_body()
    del body["concurrency"]
    assert await refused(shared_api, "POST", "/backfills", body) == "concurrency is too small: 0, limit = 1"


async def test_concurrency_at_the_limits_is_accepted(api: Api) -> None:
    await api.create_workflow()
    for concurrency in (0, MAX_CONCURRENCY):
        saved = await api.client.post(f"{API}/resources", json={"id": "r", "concurrency": concurrency})
        assert (saved.status_code, saved.json()["concurrency"]) == (200, concurrency)
    created = await api.client.post(f"{API}/backfills", json=backfill_body(concurrency=1, description="d" * 1024))
    assert created.status_code == 200, created.text
    backfill_id = created.json()["id"]
    edited = await api.client.put(f"{API}/backfills/{backfill_id}", json={"id": backfill_id, "concurrency": 10_000})
    assert (edited.status_code, edited.json()["concurrency"]) == (200, MAX_CONCURRENCY)
    described = await api.client.put(f"{API}/backfills/{backfill_id}", json={"id": backfill_id, "description": "x"})
    assert (described.status_code, described.json()["concurrency"]) == (200, MAX_CONCURRENCY)  # kept


# ---------------------------------------------------------------------------------------------------------
# Ids


@SHARED
@pytest.mark.parametrize(
    ("method", "template", "name"),
    [
        ("GET", "/workflows/{s}", "component_id"),
        ("POST", "/workflows/{s}", "component_id"),
        ("GET", "/workflows/c/{s}", "workflow_id"),
        ("GET", "/workflows/{s}/w/full", "component_id"),
        ("GET", "/workflows/c/{s}/state", "workflow_id"),
        ("PATCH", "/workflows/c/{s}/state", "workflow_id"),
        ("DELETE", "/workflows/{s}/w", "component_id"),
        ("GET", "/workflows/c/{s}/instances", "workflow_id"),
        ("GET", "/workflows/c/w/instances/{s}", "parameter"),
        ("GET", "/resources/{s}", "resource_id"),
        ("PUT", "/resources/{s}", "resource_id"),
        ("DELETE", "/resources/{s}", "resource_id"),
        ("GET", "/backfills/{s}", "backfill_id"),
        ("PUT", "/backfills/{s}", "backfill_id"),
        ("DELETE", "/backfills/{s}", "backfill_id"),
    ],
)
async def test_ids_in_paths_are_at_most_256_characters(shared_api: Api, method: str, template: str, name: str) -> None:
    body = {"id": TOO_LONG, "concurrency": 1} if method in ("POST", "PUT", "PATCH") else None
    message = await refused(shared_api, method, template.replace("{s}", TOO_LONG), body)
    assert message == f"path.{name}: String should have at most {MAX_ID_LENGTH} characters"
    longest = await shared_api.client.get(API + template.replace("{s}", LONGEST)) if method == "GET" else None
    assert longest is None or longest.status_code in (200, 404), longest.text


@SHARED
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/backfills", "component"),
        ("/backfills", "workflow"),
        (f"/workflows/{COMPONENT}/{WORKFLOW}/instances", "offset"),
        (f"/workflows/{COMPONENT}/{WORKFLOW}/instances", "start"),
        (f"/workflows/{COMPONENT}/{WORKFLOW}/instances", "stop"),
        ("/status/activeStates", "component"),
        ("/status/activeStates", "workflow"),
    ],
)
async def test_ids_in_query_strings_are_at_most_256_characters(shared_api: Api, path: str, name: str) -> None:
    message = await refused(shared_api, "GET", path, **{name: TOO_LONG})
    assert message == f"query.{name}: String should have at most {MAX_ID_LENGTH} characters"


@SHARED
@pytest.mark.parametrize(
    ("components", "message"),
    [
        (
            ",".join(f"c{index}" for index in range(MAX_COMPONENTS_PER_QUERY + 1)),
            "too many components: 101, limit = 100",
        ),
        (f"{COMPONENT},{TOO_LONG}", f"component id too long: {len(TOO_LONG)}, limit = {MAX_ID_LENGTH}"),
    ],
    ids=["count", "length"],
)
async def test_active_states_of_components_are_bounded(shared_api: Api, components: str, message: str) -> None:
    assert await refused(shared_api, "GET", "/status/activeStates", components=components) == message
    most = ",".join(f"c{index}" for index in range(MAX_COMPONENTS_PER_QUERY - 1))
    response = await shared_api.client.get(f"{API}/status/activeStates", params={"components": f"{most},{COMPONENT}"})
    assert response.status_code == 200 and response.json() == {"active_states": []}


@SHARED
@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        # Styx's own message for a workflow id.
        (
            f"/workflows/{COMPONENT}",
            workflow_config(workflow_id=TOO_LONG),
            "Invalid workflow configuration: [id too long: 257, limit = 256]",
        ),
        # 200 characters outside the Basic Multilingual Plane pass the path's bound but count as 400 UTF-16
        # units, as Styx counts the workflow id.
        (
            "/workflows/" + "\U0001f600" * 200,
            workflow_config(),
            "Invalid workflow configuration: [component id too long: 400, limit = 256]",
        ),
        ("/resources", {"id": TOO_LONG, "concurrency": 1}, "resource id too long: 257, limit = 256"),
        ("/scheduler/trigger", instance_body(TOO_LONG), "parameter too long: 257, limit = 256"),
        ("/scheduler/trigger", instance_body(component=TOO_LONG), "component id too long: 257, limit = 256"),
        ("/scheduler/retry", {"workflow_instance": f"{TOO_LONG}/w/p"}, "component id too long: 257, limit = 256"),
        ("/scheduler/halt", instance_body(TOO_LONG), "parameter too long: 257, limit = 256"),
        (
            "/scheduler/events",
            {"@type": "timeout", "workflow_instance": f"c/{TOO_LONG}/p"},
            "workflow id too long: 257, limit = 256",
        ),
    ],
    ids=["workflow id", "component id in UTF-16", "resource id", "parameter", "component", "retry", "halt", "event"],
)  # fmt: skip
async def test_ids_in_bodies_are_at_most_256_characters(
    shared_api: Api, path: str, body: dict[str, Any], message: str
) -> None:
    assert await refused(shared_api, "POST", path, body) == message


async def test_the_longest_ids_are_accepted(api: Api) -> None:
    created = await api.client.post(f"{API}/workflows/{LONGEST}", json=workflow_config(workflow_id=LONGEST))
    assert created.status_code == 200, created.text
    fetched = await api.client.get(f"{API}/workflows/{LONGEST}/{LONGEST}")
    assert fetched.status_code == 200 and fetched.json()["workflow_id"] == LONGEST
    resource = await api.client.put(f"{API}/resources/{LONGEST}", json={"id": LONGEST, "concurrency": 1})
    assert resource.status_code == 200, resource.text


# ---------------------------------------------------------------------------------------------------------
# Instances: `limit` in every query style


async def test_instances_honour_limit_in_every_query_style(api: Api) -> None:
    await api.create_blocked_workflow()
    hours = [f"2016-03-14T{hour}" for hour in range(10, 14)]
    for parameter in hours:
        assert (await api.trigger(parameter)).status_code == 200
        await api.wait_queued(parameter)

    async def parameters(**params: str) -> list[str]:
        response = await api.client.get(f"{WORKFLOW_PATH}/instances", params=params)
        assert response.status_code == 200, response.text
        return [entry["workflow_instance"]["parameter"] for entry in response.json()]

    assert await parameters(start=hours[0], limit="2") == hours[:2]
    assert await parameters(start=hours[1], stop=hours[3], limit="1") == hours[1:2]
    assert await parameters(start=hours[1], limit="0") == []
    assert await parameters(start=hours[1]) == hours[1:]  # no limit given: the whole range, up to the maximum
    assert await parameters(offset=hours[1], limit="2") == hours[1:3]
    assert await parameters(limit="3") == hours[:3]
    # tail: the `limit` natural periods before the next natural trigger (15:00).
    assert await parameters(tail="true", limit="3") == hours[2:]
    too_many = await api.client.get(f"{WORKFLOW_PATH}/instances", params={"start": hours[0], "limit": "10001"})
    assert too_many.json() == {"code": 400, "message": "query.limit: Input should be less than or equal to 10000"}


# ---------------------------------------------------------------------------------------------------------
# Backfill statuses: a page at a time

HOUR = timedelta(hours=1)


def partition(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H")


async def create_backfill(api: Api, start: datetime, end: datetime, **extra: Any) -> str:
    body = {"start": format_instant(start), "end": format_instant(end), "component": COMPONENT,
            "workflow": WORKFLOW, "concurrency": 2, **extra}  # fmt: skip
    response = await api.client.post(f"{API}/backfills", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def status_page(api: Api, backfill_id: str, **params: str) -> dict[str, Any]:
    response = await api.client.get(f"{API}/backfills/{backfill_id}", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json()["statuses"])


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
async def test_backfill_statuses_are_read_a_page_at_a_time(api: Api, reverse: bool) -> None:
    """Following `next_status_from` page by page gives the same list, in the same order, as one page."""
    await api.create_blocked_workflow()
    start = datetime(2016, 3, 13, tzinfo=UTC)
    backfill_id = await create_backfill(api, start, start + 30 * HOUR, reverse=reverse)
    await api.tick()  # two partitions triggered (concurrency 2): they wait QUEUED behind the blocker
    for hour in (28, 29) if reverse else (0, 1):  # settled (refused by the broker) before the pages are read
        await api.wait_queued(partition(start + hour * HOUR))
    whole = await status_page(api, backfill_id)
    assert whole["next_status_from"] is None and len(whole["active_states"]) == 30
    assert [s["state"] for s in whole["active_states"]].count("QUEUED") == 2

    paged: list[dict[str, Any]] = []
    page = await status_page(api, backfill_id, statusLimit="7")
    while True:
        paged.extend(page["active_states"])
        if page["next_status_from"] is None:
            break
        assert page["next_status_from"] == format_instant(start + len(paged) * HOUR)
        page = await status_page(api, backfill_id, statusLimit="7", statusFrom=page["next_status_from"])
    assert paged == whole["active_states"]


async def test_a_status_page_starts_at_the_first_partition_at_or_after_status_from(api: Api) -> None:
    await api.create_workflow()
    start = datetime(2016, 3, 13, tzinfo=UTC)
    backfill_id = await create_backfill(api, start, start + 5 * HOUR)

    async def parameters(**params: str) -> tuple[list[str], str | None]:
        page = await status_page(api, backfill_id, **params)
        return [s["workflow_instance"]["parameter"] for s in page["active_states"]], page["next_status_from"]

    assert await parameters(statusFrom="2016-03-13T02:30:00Z", statusLimit="2") == (
        ["2016-03-13T03", "2016-03-13T04"],
        None,
    )
    assert await parameters(statusFrom="2016-03-13T01:00:00Z", statusLimit="1") == (
        ["2016-03-13T01"],
        "2016-03-13T02:00:00Z",
    )
    assert await parameters(statusFrom="2000-01-01T00:00:00Z", statusLimit="1") == (
        ["2016-03-13T00"],
        "2016-03-13T01:00:00Z",
    )
    assert await parameters(statusFrom="2016-03-13T05:00:00Z") == ([], None)
    assert await parameters(statusFrom="9999-12-31T23:59:59Z") == ([], None)
    listed = await api.client.get(f"{API}/backfills", params={"status": "true"})
    assert listed.json()["backfills"][0]["statuses"]["next_status_from"] is None


@SHARED
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"statusLimit": "0"}, "query.statusLimit: Input should be greater than or equal to 1"),
        ({"statusLimit": "10001"}, "query.statusLimit: Input should be less than or equal to 10000"),
        ({"statusFrom": "yesterday"}, "Invalid statusFrom: "),
    ],
)
async def test_status_pages_refuse_bad_bounds(shared_api: Api, params: dict[str, str], message: str) -> None:
    assert (await refused(shared_api, "GET", "/backfills/backfill-1-1", **params)).startswith(message)


async def test_the_statuses_of_a_100k_partition_backfill_come_a_bounded_page_at_a_time(api: Api) -> None:
    """The status list of such a backfill was 43 MB in one answer."""
    await api.create_workflow()
    end = datetime(2016, 3, 14, tzinfo=UTC)
    start = end - 100_000 * HOUR
    backfill_id = await create_backfill(api, start, end)
    response = await api.client.get(f"{API}/backfills/{backfill_id}")
    assert response.status_code == 200
    statuses = response.json()["statuses"]
    assert len(statuses["active_states"]) == MAX_STATUS_PAGE
    assert len(response.content) < 5_000_000
    assert statuses["active_states"][-1]["workflow_instance"]["parameter"] == partition(start + 9_999 * HOUR)
    assert statuses["next_status_from"] == format_instant(start + MAX_STATUS_PAGE * HOUR)
    last = await status_page(api, backfill_id, statusFrom=format_instant(end - 3 * HOUR))
    assert [s["workflow_instance"]["parameter"] for s in last["active_states"]] == [
        partition(end - n * HOUR) for n in (3, 2, 1)
    ]
    assert last["next_status_from"] is None
