"""Scheduler administrators (STYX_SCHEDULER_ADMINS): with authentication on, only they change the global config
and resources; with it off nothing changes (docs/auth.md).

The service runs as `styx serve` builds it (build_security from settings) with Google ID-token authentication
against the fake Google of tests/auth/conftest.py, so callers present real signed tokens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import build_security
from api.auth.admins import SchedulerAdministrators
from api.auth.gcp import GoogleRestClient
from api.auth.groups import DirectoryGroupResolver
from api.security import Forbidden, Principal
from styx_actors.clock import ManualClock
from styx_actors.errors import Unavailable
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_server.auth_mode import AuthChoice
from tests.api.conftest import (
    API,
    COMPONENT,
    Api,
    api_settings,
    close_api,
    open_api,
    open_test_store,
    store_contents,
    workflow_config,
)
from tests.auth.conftest import CERTS_PATH, NO_RETRIES, FakeGoogle, SigningKey, id_token_claims

ADMIN = "alice@example.com"
GROUP_ADMIN = "carol@example.com"  # an administrator through group:ops@example.com (the policy file's groups)
OTHER = "mallory@example.com"
ACCESS_MESSAGE = "Ask #styx-ops for access."
JSON = {"Content-Type": "application/json"}

# Every change of what all workflows share: (method, path, body, the action named in the refusal).
SHARED_CHANGES = [
    ("POST", "/config?enabled=false", None, "change the global config"),
    ("POST", "/resources", {"id": "gpu", "concurrency": 0}, "change resources"),
    ("PUT", "/resources/gpu", {"id": "gpu", "concurrency": 0}, "change resources"),
    ("DELETE", "/resources/gpu", None, "change resources"),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_test_store("sqlite", tmp_path)
    yield opened
    await opened.close()


def secured_settings(tmp_path: Path, fake_google: FakeGoogle, **overrides: Any) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps({"groups": {"ops@example.com": [GROUP_ADMIN]}}))
    values: dict[str, Any] = {
        "auth": "google",
        "auth_certs_url": fake_google.base_url + CERTS_PATH,
        "auth_domain_whitelist": ["example.com"],
        "authorization_policy_file": policy,
        "authorization_message": ACCESS_MESSAGE,
        "scheduler_admins": [f"user:{ADMIN}", "group:ops@example.com"],
    }
    values.update(overrides)
    return api_settings(tmp_path, **values)


@dataclass
class SecuredApi:
    """The app with authentication on, and callers holding Google ID tokens signed by the fake Google."""

    api: Api
    google_key: SigningKey

    async def send(self, method: str, path: str, body: Any = None, email: str | None = None) -> httpx.Response:
        headers = dict(JSON)
        if email is not None:
            headers["Authorization"] = f"Bearer {self.google_key.sign(id_token_claims(email))}"
        content = json.dumps(body) if body is not None else None
        return await self.api.client.request(method, API + path, content=content, headers=headers)


@pytest.fixture
async def secured(
    tmp_path: Path, store: Store, clock: ManualClock, fake_google: FakeGoogle, google_key: SigningKey
) -> AsyncIterator[SecuredApi]:
    settings = secured_settings(tmp_path, fake_google)
    authenticator, authorizer = build_security(settings, clock)
    secured = SecuredApi(
        await open_api(settings, store, clock, AuthChoice(authenticator, authorizer, enabled=True)), google_key
    )
    # A resource for PUT and DELETE to change (the config is on), so that every refusal would show.
    created = await secured.send("POST", "/resources", {"id": "gpu", "concurrency": 2}, ADMIN)
    assert created.status_code == 200, created.text
    yield secured
    await close_api(secured.api)


@pytest.mark.parametrize(("method", "path", "body", "action"), SHARED_CHANGES)
async def test_other_principals_may_not_change_what_every_workflow_shares(
    secured: SecuredApi, method: str, path: str, body: Any, action: str
) -> None:
    before = await store_contents(secured.api.store)

    refused = await secured.send(method, path, body, OTHER)

    assert refused.status_code == 403
    assert refused.json()["message"] == (
        f"The principal {OTHER} may not {action}: only scheduler administrators (STYX_SCHEDULER_ADMINS) may. "
        f"{ACCESS_MESSAGE}"
    )
    assert await store_contents(secured.api.store) == before


@pytest.mark.parametrize("administrator", [ADMIN, GROUP_ADMIN])
@pytest.mark.parametrize(("method", "path", "body", "action"), SHARED_CHANGES)
async def test_administrators_directly_or_through_a_group_may(
    secured: SecuredApi, administrator: str, method: str, path: str, body: Any, action: str
) -> None:
    before = await store_contents(secured.api.store)

    allowed = await secured.send(method, path, body, administrator)

    assert allowed.status_code in (200, 204), allowed.text
    assert await store_contents(secured.api.store) != before


async def test_anonymous_changes_are_still_unauthenticated_not_forbidden(secured: SecuredApi) -> None:
    response = await secured.send("POST", "/config?enabled=false")
    assert (response.status_code, response.json()["message"]) == (401, "Unauthorized access")


async def test_reading_and_changing_workflows_are_not_reserved(secured: SecuredApi) -> None:
    assert (await secured.send("GET", "/config", email=OTHER)).status_code == 200
    assert (await secured.send("GET", "/resources/gpu", email=OTHER)).status_code == 200
    created = await secured.send("POST", f"/workflows/{COMPONENT}", workflow_config(), OTHER)
    assert created.status_code == 200, created.text


@pytest.mark.parametrize(("method", "path", "body", "action"), SHARED_CHANGES)
async def test_without_authentication_anyone_may_as_before(
    tmp_path: Path, store: Store, clock: ManualClock, method: str, path: str, body: Any, action: str
) -> None:
    # Administrators listed, but authentication off (the embedded default): the list plays no part.
    api = await open_api(api_settings(tmp_path, scheduler_admins=[f"user:{ADMIN}"]), store, clock)
    # As a local client reaches the embedded service: without authentication only loopback names are served.
    local = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.service.app), base_url="http://127.0.0.1:8080")
    try:
        await local.post(f"{API}/resources", json={"id": "gpu", "concurrency": 2})
        content = json.dumps(body) if body is not None else None
        response = await local.request(method, API + path, content=content, headers=JSON)
        assert response.status_code in (200, 204), response.text
    finally:
        await local.aclose()
        await close_api(api)


def test_group_entries_without_a_source_of_groups_are_refused_at_start_up(
    tmp_path: Path, fake_google: FakeGoogle
) -> None:
    settings = secured_settings(tmp_path, fake_google, authorization_policy_file=None)
    with pytest.raises(ValueError, match="STYX_SCHEDULER_ADMINS names groups \\(group:ops@example.com\\)"):
        build_security(settings)
    with pytest.raises(ValueError, match="'alice@example.com' is not an IAM member"):
        build_security(secured_settings(tmp_path, fake_google, scheduler_admins=[ADMIN]))


def test_authentication_off_ignores_the_list(tmp_path: Path, fake_google: FakeGoogle) -> None:
    build_security(api_settings(tmp_path, scheduler_admins=["group:ops@example.com"]))  # nothing to refuse


async def test_directory_groups_are_asked_once_a_minute_and_an_outage_is_503(
    fake_google: FakeGoogle, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    fake_google.groups["ops@example.com"] = {GROUP_ADMIN}
    directory = DirectoryGroupResolver(GoogleRestClient(http, NO_RETRIES), fake_google.base_url)
    administrators = SchedulerAdministrators(["group:ops@example.com"], directory, clock)

    await administrators.authorize(Principal(GROUP_ADMIN), "change resources")
    await administrators.authorize(Principal(GROUP_ADMIN), "change resources")
    with pytest.raises(Forbidden):
        await administrators.authorize(Principal(OTHER), "change resources")
    assert fake_google.count("/hasMember/") == 2  # one per principal: the second answer came from the cache

    fake_google.fail("/hasMember/", 503)
    with pytest.raises(Unavailable, match="Cannot check scheduler administrators"):
        await administrators.authorize(Principal("dave@example.com"), "change resources")
