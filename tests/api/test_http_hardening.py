"""The HTTP layer's defences, through the app (docs/security.md, "HTTP layer"): JSON-only writes, the Host and
Origin checks without authentication, tame request ids, 500s that tell nothing, and an audit log that cannot
be forged nor leak credentials. The limits uvicorn enforces on real sockets are in test_http_limits.py."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api.middleware import AUDIT_PREFIX, AUDIT_REFUSED_PREFIX, REQUEST_ID_HEADER
from api.security import AllowAll, NoAuthentication
from styx_server.auth_mode import AuthChoice
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi, api_settings, store_contents

pytestmark = pytest.mark.local_only("the HTTP layer is the same over both actor systems")

TEST_HOST = "styx.test"  # the tests' base_url; a name the service must be told to serve
RESOURCE = {"id": "r", "concurrency": 1}
RESOURCE_BODY = json.dumps(RESOURCE).encode()
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def api(start_api: StartApi, tmp_path: Path) -> Api:
    return await start_api(settings=api_settings(tmp_path, allowed_hosts=[TEST_HOST]))


@pytest.fixture
async def secured(start_api: StartApi, tmp_path: Path) -> Api:
    """Authentication on, nobody authenticates: every change is a 401."""
    auth = AuthChoice(NoAuthentication(), AllowAll(), enabled=True)
    return await start_api(auth=auth, settings=api_settings(tmp_path))


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "styx_actors.audit"]


def audit_record(line: str) -> dict[str, Any]:
    prefix, _, record = line.partition(" {")
    assert prefix in (AUDIT_PREFIX, AUDIT_REFUSED_PREFIX), line
    parsed: dict[str, Any] = json.loads("{" + record)
    return parsed


# 1. Writes carry JSON only


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/json; foo=bar",
        "application/jsonp",
        None,  # a body without a type: what a browser sends for a Blob, without a preflight
    ],
)
async def test_write_bodies_of_other_types_are_refused_without_writing(api: Api, content_type: str | None) -> None:
    before = await store_contents(api.store)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await api.client.post(f"{API}/resources", content=RESOURCE_BODY, headers=headers)
    assert response.status_code == 415
    assert response.json() == {
        "code": 415,
        "message": "Unsupported Media Type: request bodies must be application/json (Content-Type given: "
        + ("none" if content_type is None else repr(content_type))
        + ")",
    }
    assert await store_contents(api.store) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/resources/r"), ("PATCH", f"/workflows/{COMPONENT}/{WORKFLOW}/state"), ("POST", "/scheduler/trigger")],
)
async def test_every_write_method_is_held_to_json(api: Api, method: str, path: str) -> None:
    await api.create_workflow()
    before = await store_contents(api.store)
    response = await api.client.request(
        method, API + path, content=b'{"enabled": true}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert await store_contents(api.store) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", 'Application/JSON;Charset="UTF-8"']
)
async def test_json_bodies_are_accepted(api: Api, content_type: str) -> None:
    response = await api.client.post(f"{API}/resources", content=RESOURCE_BODY, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert [resource.id for resource in await api.store.resources()] == ["r"]


async def test_writes_without_a_body_need_no_content_type(api: Api) -> None:
    assert (await api.client.post(f"{API}/resources", json=RESOURCE)).status_code == 200
    deleted = await api.client.delete(f"{API}/resources/r")
    assert deleted.status_code in (200, 204), deleted.text
    assert await api.store.resources() == []
    missing = await api.client.post(f"{API}/resources")
    assert (missing.status_code, missing.json()["message"]) == (400, "Missing payload")


# 2. Host and Origin without authentication


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1", "127.1.2.3:9000", "[::1]:8080", TEST_HOST])
async def test_loopback_and_allowed_host_names_are_served(api: Api, host: str) -> None:
    assert (await api.client.get(f"{API}/workflows", headers={"Host": host})).status_code == 200


async def test_a_rebound_host_name_is_refused_reads_and_writes(api: Api) -> None:
    before = await store_contents(api.store)
    for method, body in (("GET", None), ("POST", RESOURCE)):
        response = await api.client.request(method, f"{API}/resources", json=body, headers={"Host": "evil.example"})
        assert response.status_code == 403
        message = response.json()["message"]
        assert message.startswith("Host 'evil.example' is not served") and "STYX_ALLOWED_HOSTS" in message
        assert REQUEST_ID_HEADER in response.headers
    assert await store_contents(api.store) == before


async def test_probes_answer_whatever_host_an_orchestrator_uses(api: Api) -> None:
    for path in ("/ping", "/healthz", "/metrics"):
        assert (await api.client.get(path, headers={"Host": "10.1.2.3:8080"})).status_code == 200, path


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:3000", "null"])
async def test_cross_origin_writes_are_refused_without_writing(api: Api, origin: str) -> None:
    await api.create_workflow()
    before = await store_contents(api.store)
    trigger = {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": "2016-03-14T10"}
    for path, body in (("/resources", RESOURCE), ("/scheduler/trigger", trigger)):
        response = await api.client.post(API + path, json=body, headers={"Origin": origin})
        assert response.status_code == 403
        assert response.json()["message"].startswith(f"Cross-origin request refused: Origin {origin!r}")
    assert await store_contents(api.store) == before


async def test_same_origin_writes_go_on_and_foreign_reads_get_no_cors_headers(api: Api) -> None:
    """The dashboard's own fetches are same-origin; a foreign page may send a read but not see the answer."""
    created = await api.client.post(f"{API}/resources", json=RESOURCE, headers={"Origin": f"http://{TEST_HOST}"})
    assert created.status_code == 200, created.text
    read = await api.client.get(f"{API}/resources", headers={"Origin": "http://evil.example"})
    assert read.status_code == 200
    assert not [name for name in read.headers if name.lower().startswith("access-control-")]


async def test_with_authentication_on_hosts_and_origins_are_left_to_the_credentials(secured: Api) -> None:
    assert (await secured.client.get(f"{API}/workflows", headers={"Host": "evil.example"})).status_code == 200
    anonymous = await secured.client.post(f"{API}/resources", json=RESOURCE, headers={"Origin": "http://evil.example"})
    assert anonymous.status_code == 401


# 4. Request ids


@pytest.mark.parametrize("given", ["x" * 129, "a b", "a/b", "<script>", "id;drop", "é", ""])
async def test_unacceptable_request_ids_are_replaced_and_never_logged(
    api: Api, caplog: pytest.LogCaptureFixture, given: str
) -> None:
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        response = await api.client.post(
            f"{API}/resources", json=RESOURCE, headers={REQUEST_ID_HEADER: given.encode("utf-8")}
        )
    answered = response.headers[REQUEST_ID_HEADER]
    assert len(answered) == 32 and answered != given
    [line] = audit_lines(caplog)
    record = audit_record(line)
    assert record["request_id"] == answered and REQUEST_ID_HEADER.lower() not in record["headers"]
    assert not given or json.dumps(given)[1:-1] not in line


async def test_a_tame_request_id_of_128_characters_is_kept(api: Api) -> None:
    given = "Az09._-" * 18 + "ab"
    assert len(given) == 128
    assert (await api.client.get("/ping", headers={REQUEST_ID_HEADER: given})).headers[REQUEST_ID_HEADER] == given


# 6. The audit log


async def test_audit_records_cannot_be_forged_with_control_characters(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    forged = '\n[AUDIT] {"method":"DELETE","by":"admin@example.com"}\r\x1b[2K\x07\x7f\x85\u2028'
    body = ('{"id": "r' + forged + '", "concurrency": 1}').encode()
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        await api.client.put(f"{API}/resources/r{quote(forged, safe='')}", content=body, headers=JSON)
    [line] = audit_lines(caplog)
    assert all(" " <= character <= "~" for character in line), repr(line)
    record = audit_record(line)
    assert (record["uri"], record["payload"]) == (f"{API}/resources/r{forged}", body.decode())


async def test_only_requests_that_passed_authentication_are_audited_as_actions(
    secured: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        unauthorized = await secured.client.post(f"{API}/resources", json=RESOURCE)
    assert unauthorized.status_code == 401
    [line] = audit_lines(caplog)
    assert line.startswith(f"{AUDIT_REFUSED_PREFIX} {{") and audit_record(line)["status"] == 401


async def test_refusals_before_authentication_are_audited_as_refused_and_actions_as_actions(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        await api.client.post(f"{API}/resources", content=RESOURCE_BODY, headers={"Content-Type": "text/plain"})
        await api.client.post(f"{API}/resources", json=RESOURCE, headers={"Origin": "http://evil.example"})
        await api.client.post(f"{API}/resources", json=RESOURCE)
    refused_type, refused_origin, performed = audit_lines(caplog)
    assert refused_type.startswith(f"{AUDIT_REFUSED_PREFIX} ") and audit_record(refused_type)["status"] == 415
    assert refused_origin.startswith(f"{AUDIT_REFUSED_PREFIX} ") and audit_record(refused_origin)["status"] == 403
    assert performed.startswith(f"{AUDIT_PREFIX} {{") and audit_record(performed)["status"] == 200


SECRET_HEADER_NAMES = [
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "X-Api-Key",
    "Service-Identity",
    "X-Auth-Token",
    "X-Client-Secret",
    "X-Db-Password",
    "X-Upstream-Credentials",
]
SECRET_HEADERS = {name: f"Bearer s3cr3t-of-{name}" for name in SECRET_HEADER_NAMES}


async def test_secret_bearing_headers_are_hidden_in_the_audit_log(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        await api.client.post(f"{API}/resources", json=RESOURCE, headers={**SECRET_HEADERS, "X-Trace": "visible"})
    [line] = audit_lines(caplog)
    headers = audit_record(line)["headers"]
    assert {name: headers[name.lower()] for name in SECRET_HEADERS} == {name: "<hidden>" for name in SECRET_HEADERS}
    assert headers["x-trace"] == "visible"
    assert "s3cr3t" not in line
