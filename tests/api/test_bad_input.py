"""Bad input never yields a 5xx and never writes anything: every body-reading route is sent every kind of
broken body, and every route odd path segments."""

from __future__ import annotations

import pytest

from styx_actors.validation import MAX_ID_LENGTH
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, store_contents, workflow_config

BODY_ROUTES = [
    ("POST", f"/workflows/{COMPONENT}"),
    ("PATCH", f"/workflows/{COMPONENT}/{WORKFLOW}/state"),
    ("POST", "/resources"),
    ("PUT", "/resources/r"),
    ("POST", "/backfills"),
    ("PUT", "/backfills/backfill-1-1"),
    ("POST", "/scheduler/trigger"),
    ("POST", "/scheduler/retry"),
    ("POST", "/scheduler/halt"),
    ("POST", "/scheduler/events"),
]

BAD_BODIES = {
    "truncated": b'{"id": ',
    "not json": b"hello",
    "array": b"[1, 2]",
    "string": b'"text"',
    "null": b"null",
    "number": b"12",
    "deeply nested": b"[" * 50_000 + b"]" * 50_000,
    "huge integer": b'{"id": "r", "concurrency": ' + b"9" * 5000 + b"}",
    "invalid utf-8": b'{"id": "\xff\xfe"}',
    "NaN": b'{"id": "r", "concurrency": NaN}',
    "wrong types": (
        b'{"id": 1, "schedule": [], "concurrency": {}, "start": 5, "end": true, "component": [], "workflow": {},'
        b' "workflow_id": "x", "parameter": {}, "enabled": "x", "@type": 3, "workflow_instance": 4}'
    ),
    "far-off dates": (
        b'{"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:00:00Z", "component": "styx-canary",'
        b' "workflow": "StyxCanary", "concurrency": 1, "next_natural_trigger": "0001-01-01T00:00:00+01:00"}'
    ),
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
@pytest.mark.asyncio(loop_scope="module")
async def test_broken_bodies_are_refused_without_writing(shared_api: Api, method: str, path: str, body: bytes) -> None:
    api = shared_api
    before = await store_contents(api.store)
    response = await api.client.request(method, API + path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"] == response.status_code
    assert await store_contents(api.store) == before


ODD_SEGMENTS = {
    "hash": "a%23b",
    "encoded slash": "a%2Fb",
    "dot dot": "%2E%2E",
    "dot": "%2E",
    "unicode": "ünïcødé-😀",
    "very long": "x" * 4000,
    "nul": "a%00b",
    "invalid utf-8": "%FF%FE",
    "space": "a%20b",
    "percent": "100%25",
}

READ_TEMPLATES = [
    "/workflows/{s}",
    "/workflows/{s}/{s}",
    "/workflows/{s}/{s}/full",
    "/workflows/{s}/{s}/state",
    "/workflows/{s}/{s}/instances",
    "/workflows/{s}/{s}/instances/{s}",
    "/resources/{s}",
    "/backfills/{s}",
    "/status/events/{s}/{s}/{s}",
]


@pytest.mark.parametrize("segment", list(ODD_SEGMENTS.values()), ids=list(ODD_SEGMENTS))
@pytest.mark.asyncio(loop_scope="module")
async def test_odd_path_segments_in_reads(shared_api: Api, segment: str) -> None:
    api = shared_api
    for template in READ_TEMPLATES:
        response = await api.client.get(API + template.replace("{s}", segment))
        # Ids longer than any that can be stored are refused (api/bounds.py); others are looked up.
        answers = (400,) if len(segment) > MAX_ID_LENGTH and not template.startswith("/status") else (200, 404)
        assert response.status_code in answers, (template, response.status_code, response.text)


@pytest.mark.parametrize("segment", list(ODD_SEGMENTS.values()), ids=list(ODD_SEGMENTS))
@pytest.mark.asyncio(loop_scope="module")
async def test_odd_path_segments_in_changes(shared_api: Api, segment: str) -> None:
    api = shared_api
    before = await store_contents(api.store)
    attempts = [
        ("PATCH", f"/workflows/{segment}/{segment}/state", {"enabled": True}),
        ("DELETE", f"/workflows/{segment}/{segment}", None),
        ("PUT", f"/resources/{segment}", {"id": "r", "concurrency": 1}),
        ("PUT", f"/backfills/{segment}", {"id": "other", "concurrency": 1}),
        ("DELETE", f"/backfills/{segment}", None),
    ]
    for method, path, body in attempts:
        response = await api.client.request(method, API + path, json=body)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
    assert await store_contents(api.store) == before


@pytest.mark.parametrize("segment", list(ODD_SEGMENTS.values()), ids=list(ODD_SEGMENTS))
async def test_odd_component_ids_are_stored_or_refused_cleanly(api: Api, segment: str) -> None:
    response = await api.client.post(f"{API}/workflows/{segment}", json=workflow_config())
    assert response.status_code in (200, 400, 404, 405), response.text  # 405: `a/b` names a workflow route
    if response.status_code == 200:
        component = response.json()["component_id"]
        shown = await api.client.get(f"{API}/workflows/{segment}/{WORKFLOW}")
        assert shown.status_code == 200 and shown.json()["component_id"] == component


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"limit": "1e3"}, f"/workflows/{COMPONENT}/{WORKFLOW}/instances"),
        ({"limit": "99999999999999999999999"}, f"/workflows/{COMPONENT}/{WORKFLOW}/instances"),
        ({"tail": "true", "limit": "10000"}, f"/workflows/{COMPONENT}/{WORKFLOW}/instances"),
        ({"deployment_time_after": "9999-99-99"}, "/workflows"),
        ({"deployment_time_after": "0001-01-01T00:00:00+01:00"}, "/workflows"),
        ({"start": "0000-01-01", "component": COMPONENT, "workflow": WORKFLOW}, "/backfills"),
        ({"workflow": "w"}, "/status/activeStates"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_odd_query_parameters(shared_api: Api, params: dict[str, str], path: str) -> None:
    api = shared_api
    response = await api.client.get(API + path, params=params)
    assert response.status_code < 500, response.text


async def test_instants_at_the_edges_of_the_calendar_are_stored_readably(api: Api) -> None:
    """Year 1 is a valid instant: what is accepted must read back (a year written unpadded could not)."""
    await api.create_workflow()
    state = {"next_natural_trigger": "0001-01-01T00:00:00Z", "next_natural_offset_trigger": "0001-01-01T01:00:00Z"}
    patched = await api.client.patch(f"{API}/workflows/{COMPONENT}/{WORKFLOW}/state", json=state)
    assert patched.status_code == 200 and patched.json() == {"enabled": "false", **state}
    backfill = {"start": "0001-01-01T00:00:00Z", "end": "0001-01-01T02:00:00Z", "component": COMPONENT,
                "workflow": WORKFLOW, "concurrency": 1}  # fmt: skip
    assert (await api.client.post(f"{API}/backfills", json=backfill)).status_code == 200
    listed = await api.client.get(f"{API}/backfills", params={"showAll": "true", "status": "true"})
    assert listed.status_code == 200 and listed.json()["backfills"][0]["backfill"]["start"] == "0001-01-01T00:00:00Z"
    assert (await api.client.get(f"{API}/workflows?full")).status_code == 200
