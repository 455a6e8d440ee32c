"""What wraps every request: request ids, the 500 text, the store-down 503, the client blacklist, the audit
log and the body size limit (docs/api.md#errors)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator

import pytest

from api.deps import ClientBlacklist
from styx_actors.model import GlobalConfig
from tests.api.conftest import API, Api, StartApi, api_settings, store_contents

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/ping"), ("GET", f"{API}/resources"), ("GET", f"{API}/nowhere"), ("POST", f"{API}/resources")],
)
async def test_every_response_carries_a_generated_request_id(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path)
    assert HEX_ID.fullmatch(response.headers["X-Styx-Request-Id"])


async def test_a_given_request_id_is_echoed(api: Api) -> None:
    response = await api.client.get(f"{API}/resources", headers={"X-Styx-Request-Id": "my-request-7"})
    assert response.headers["X-Styx-Request-Id"] == "my-request-7"


async def test_unknown_routes_and_methods_answer_in_the_error_format(api: Api) -> None:
    assert (await api.client.get(f"{API}/nowhere")).json() == {"code": 404, "message": "Not Found"}
    wrong_method = await api.client.put(f"{API}/status/activeStates")
    assert wrong_method.json() == {"code": 405, "message": "Method Not Allowed"}


async def test_an_unexpected_exception_is_a_500_that_names_only_the_request(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise KeyError("/srv/secret/path\nline two")

    api.service.app.add_api_route("/broken", broken)
    with caplog.at_level(logging.ERROR):
        response = await api.client.get("/broken", headers={"X-Styx-Request-Id": "abc123"})
    assert response.status_code == 500
    assert response.content == b'{"code":500,"message":"Internal Server Error (Request ID: abc123)"}'
    assert response.headers["X-Styx-Request-Id"] == "abc123"
    # The service log has it all, under the request id.
    [failure] = [record for record in caplog.records if record.getMessage().startswith("request GET '/broken' failed")]
    assert failure.getMessage().endswith("(request id abc123)")
    assert failure.exc_info is not None and "/srv/secret/path" in str(failure.exc_info[1])


async def test_an_unreachable_store_is_a_503(api: Api) -> None:
    await api.store.close()
    response = await api.client.get(f"{API}/workflows")
    assert response.status_code == 503
    assert response.json()["message"].startswith("Store unavailable, try again later: ")
    ready = await api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["message"].startswith("Store unavailable: ")
    assert (await api.client.get("/healthz")).status_code == 200  # the process itself is alive


async def test_blacklisted_clients_are_refused(api: Api) -> None:
    await api.store.put_config(GlobalConfig(client_blacklist=["Styx Client 1.0"]))
    refused = await api.client.get(f"{API}/workflows", headers={"User-Agent": "Styx Client 1.0"})
    assert refused.status_code == 406
    assert refused.json() == {"code": 406, "message": "blacklisted client version, please upgrade"}
    before = await store_contents(api.store)
    write = await api.client.post(
        f"{API}/resources", json={"id": "r", "concurrency": 1}, headers={"User-Agent": "Styx Client 1.0"}
    )
    assert write.status_code == 406
    assert await store_contents(api.store) == before
    allowed = await api.client.get(f"{API}/workflows", headers={"User-Agent": "Styx Client 2.0"})
    assert allowed.status_code == 200


async def test_changes_are_audited_with_credentials_hidden(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        await api.client.post(
            f"{API}/resources?x=1", json={"id": "r", "concurrency": 1}, headers={"Authorization": "Bearer secret-token"}
        )
        await api.client.get(f"{API}/resources")
    [line] = [record.getMessage() for record in caplog.records if record.name == "styx_actors.audit"]
    assert line.startswith("[AUDIT] {") and "secret-token" not in line
    record = json.loads(line.removeprefix("[AUDIT] "))
    assert (record["method"], record["uri"], record["by"]) == ("POST", f"{API}/resources?x=1", "anonymous")
    assert record["headers"]["authorization"] == "<hidden>"
    assert (record["parameters"], record["payload"], record["status"]) == ("x=1", '{"id":"r","concurrency":1}', 200)


@pytest.fixture
async def small_api(start_api: StartApi, tmp_path) -> AsyncIterator[Api]:
    yield await start_api(settings=api_settings(tmp_path, max_body_bytes=100))


async def test_a_declared_oversized_body_is_refused_before_it_is_read(small_api: Api) -> None:
    before = await store_contents(small_api.store)
    body = {"id": "r" * 200, "concurrency": 1}
    response = await small_api.client.post(f"{API}/resources", json=body)
    assert response.status_code == 413
    assert response.json() == {"code": 413, "message": "Request body too large: limit = 100 bytes"}
    assert HEX_ID.fullmatch(response.headers["X-Styx-Request-Id"])
    assert await store_contents(small_api.store) == before


async def test_a_streamed_oversized_body_is_refused_while_read(small_api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"id": "'
        for _ in range(10):
            yield b"r" * 20
        yield b'", "concurrency": 1}'

    before = await store_contents(small_api.store)
    response = await small_api.client.post(  # chunked: no Content-Length
        f"{API}/resources", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert await store_contents(small_api.store) == before


async def test_a_body_within_the_limit_is_accepted(small_api: Api) -> None:
    response = await small_api.client.post(f"{API}/resources", json={"id": "r", "concurrency": 1})
    assert response.status_code == 200


async def test_the_openapi_document_describes_the_errors_really_given(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if path.startswith(API):
                error = operation["responses"]["400"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, (method, path)


async def test_the_client_blacklist_is_read_again_after_its_ttl(api: Api) -> None:
    now = [0.0]
    blacklist = ClientBlacklist(api.store, ttl=1.0, monotonic=lambda: now[0])
    assert not await blacklist.contains("Styx Client 1.0")  # read now: empty
    await api.store.put_config(GlobalConfig(client_blacklist=["Styx Client 1.0"]))
    now[0] = 1.0
    assert not await blacklist.contains("Styx Client 1.0")  # within the ttl: what was read before
    now[0] = 1.5
    assert await blacklist.contains("Styx Client 1.0")
