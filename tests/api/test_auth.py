"""Authentication and service-account authorization as the routes use them (docs/auth.md).

The Google implementations are tested on their own; here the protocols are implemented by small policies
with Styx's texts, so the tests show which calls authenticate, which authorize, and with what.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from api.security import Forbidden, Principal, Unauthorized, UsageDecision
from styx_actors.errors import BadRequest
from styx_server.auth_mode import AuthChoice
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi, store_contents, workflow_config

SA = "runner@project.iam.gserviceaccount.com"
OTHER_SA = "other@project.iam.gserviceaccount.com"
WORKFLOW_KEY = f"{COMPONENT}#{WORKFLOW}"
INSTANCE = f"{COMPONENT}/{WORKFLOW}/2016-03-14T10"


class TokenAuthenticator:
    """Bearer tokens that are simply the caller's email."""

    async def authenticate(self, authorization: str | None) -> Principal | None:
        if authorization is None:
            return None
        if not authorization.startswith("Bearer "):
            raise BadRequest("Authorization token must be of type Bearer")
        token = authorization.removeprefix("Bearer ")
        if "@" not in token:
            raise Unauthorized("Authorization token is invalid")
        return Principal(email=token)


class GrantAuthorizer:
    """Allows the (principal, service account) pairs granted; records every question."""

    def __init__(self, grants: set[tuple[str, str]]) -> None:
        self.grants = grants
        self.asked: list[tuple[str | None, str, str]] = []

    async def authorize(self, principal: Principal | None, service_account: str, workflow_key: str) -> None:
        email = principal.email if principal else None
        self.asked.append((email, service_account, workflow_key))
        if (email, service_account) not in self.grants:
            raise Forbidden(
                f"The principal {email} must have the role roles/iam.serviceAccountUser on {service_account}"
            )

    async def decide(self, principal: str, service_account: str) -> UsageDecision:
        return UsageDecision(authorized=(principal, service_account) in self.grants, message=None)


@pytest.fixture
def authorizer() -> GrantAuthorizer:
    return GrantAuthorizer({("alice@example.com", SA)})


@pytest.fixture
async def secured(start_api: StartApi, authorizer: GrantAuthorizer) -> Api:
    return await start_api(auth=AuthChoice(TokenAuthenticator(), authorizer, enabled=True))


def as_user(email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {email}"}


ALICE = as_user("alice@example.com")
MALLORY = as_user("mallory@example.com")
JSON = {"Content-Type": "application/json"}


async def test_reads_need_no_credentials(secured: Api) -> None:
    assert (await secured.client.get(f"{API}/workflows")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/workflows/{COMPONENT}", workflow_config()),
        ("POST", "/resources", {"id": "r", "concurrency": 1}),
        ("DELETE", "/resources/r", None),
        ("POST", "/config?enabled=false", None),
        ("POST", "/scheduler/halt", {"workflow_instance": INSTANCE}),
    ],
)
async def test_changes_need_an_authenticated_caller(secured: Api, method: str, path: str, body: Any) -> None:
    before = await store_contents(secured.store)
    content = json.dumps(body) if body else None
    response = await secured.client.request(method, API + path, content=content, headers=JSON)
    assert response.status_code == 401 and response.json()["message"] == "Unauthorized access"
    assert await store_contents(secured.store) == before


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"Authorization": "Basic abc"}, 400, "Authorization token must be of type Bearer"),
        ({"Authorization": "Bearer not-an-email"}, 401, "Authorization token is invalid"),
    ],
)
async def test_bad_credentials_are_refused_even_on_reads(
    secured: Api, headers: dict[str, str], status: int, message: str
) -> None:
    response = await secured.client.get(f"{API}/workflows", headers=headers)
    assert (response.status_code, response.json()["message"]) == (status, message)


async def test_workflows_without_service_account_need_no_authorization(
    secured: Api, authorizer: GrantAuthorizer
) -> None:
    response = await secured.client.post(f"{API}/workflows/{COMPONENT}", json=workflow_config(), headers=MALLORY)
    assert response.status_code == 200
    assert authorizer.asked == []


async def test_deploying_a_workflow_needs_both_the_new_and_the_existing_service_account(
    secured: Api, authorizer: GrantAuthorizer
) -> None:
    created = await secured.client.post(
        f"{API}/workflows/{COMPONENT}", json=workflow_config(service_account=SA), headers=ALICE
    )
    assert created.status_code == 200
    assert authorizer.asked == [("alice@example.com", SA, WORKFLOW_KEY)]

    authorizer.asked.clear()
    authorizer.grants.add(("mallory@example.com", OTHER_SA))
    before = await store_contents(secured.store)
    takeover = await secured.client.post(
        f"{API}/workflows/{COMPONENT}", json=workflow_config(service_account=OTHER_SA), headers=MALLORY
    )
    assert takeover.status_code == 403
    assert authorizer.asked == [
        ("mallory@example.com", OTHER_SA, WORKFLOW_KEY),
        ("mallory@example.com", SA, WORKFLOW_KEY),
    ]
    assert await store_contents(secured.store) == before


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("PATCH", f"/workflows/{COMPONENT}/{WORKFLOW}/state", {}, {"enabled": True}),
        ("DELETE", f"/workflows/{COMPONENT}/{WORKFLOW}", {}, None),
        (
            "POST",
            "/scheduler/trigger",
            {},
            {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": "2016-03-14T10"},
        ),
        ("POST", "/scheduler/retry", {}, {"workflow_instance": INSTANCE}),
        ("POST", "/scheduler/halt", {}, {"workflow_instance": INSTANCE}),
        ("POST", "/scheduler/events", {}, {"@type": "halt", "workflow_instance": INSTANCE}),
        (
            "POST",
            "/backfills",
            {},
            {
                "start": "2016-03-13T00:00:00Z",
                "end": "2016-03-13T02:00:00Z",
                "component": COMPONENT,
                "workflow": WORKFLOW,
                "concurrency": 1,
            },
        ),
    ],
)
async def test_workflow_commands_are_authorized_against_its_service_account(
    secured: Api, authorizer: GrantAuthorizer, method: str, path: str, params: dict[str, str], body: Any
) -> None:
    await secured.client.post(f"{API}/workflows/{COMPONENT}", json=workflow_config(service_account=SA), headers=ALICE)
    authorizer.asked.clear()
    before = await store_contents(secured.store)
    content = json.dumps(body) if body else None
    refused = await secured.client.request(
        method, API + path, params=params, content=content, headers={**MALLORY, **JSON}
    )
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("The principal mallory@example.com must have the role")
    assert authorizer.asked == [("mallory@example.com", SA, WORKFLOW_KEY)]
    assert await store_contents(secured.store) == before
    allowed = await secured.client.request(
        method, API + path, params=params, content=content, headers={**ALICE, **JSON}
    )
    assert allowed.status_code in (200, 204), allowed.text


async def test_backfill_edit_and_halt_are_authorized_against_the_workflow(
    secured: Api, authorizer: GrantAuthorizer
) -> None:
    await secured.client.post(f"{API}/workflows/{COMPONENT}", json=workflow_config(service_account=SA), headers=ALICE)
    request = {
        "start": "2016-03-13T00:00:00Z",
        "end": "2016-03-13T02:00:00Z",
        "component": COMPONENT,
        "workflow": WORKFLOW,
        "concurrency": 1,
    }
    backfill = (await secured.client.post(f"{API}/backfills", json=request, headers=ALICE)).json()
    path = f"{API}/backfills/{backfill['id']}"
    edit = await secured.client.put(path, json={"id": backfill["id"], "concurrency": 9}, headers=MALLORY)
    halt = await secured.client.delete(path, headers=MALLORY)
    assert (edit.status_code, halt.status_code) == (403, 403)
    stored = await secured.store.get_backfill(backfill["id"])
    assert (stored.concurrency, stored.halted) == (1, False)
    assert (await secured.client.delete(path, headers=ALICE)).status_code == 200


async def test_the_audit_log_names_the_caller(secured: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="styx_actors.audit"):
        await secured.client.post(f"{API}/resources", json={"id": "r", "concurrency": 1}, headers=ALICE)
    [line] = [record.getMessage() for record in caplog.records if record.name == "styx_actors.audit"]
    record = json.loads(line.removeprefix("[AUDIT] "))
    assert (record["method"], record["uri"], record["by"]) == ("POST", f"{API}/resources", "alice@example.com")
    assert record["headers"]["authorization"] == "<hidden>" and "Bearer" not in line


async def test_without_authentication_anonymous_callers_may_change(api: Api) -> None:
    response = await api.client.post(f"{API}/resources", json={"id": "r", "concurrency": 1})
    assert response.status_code == 200
