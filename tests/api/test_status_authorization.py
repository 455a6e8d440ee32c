"""`POST /status/testServiceAccountUsageAuthorization`: the configured authorizer's decision for a service
account and a principal, as Styx's StatusResource answers it (docs/api.md, docs/auth.md).

Authorization on is the real IamAuthorizer against the fake IAM / Resource Manager / Directory of
tests/auth/conftest.py, served over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import httpx
import pytest

from api.auth.gcp import GoogleCloudApis, GoogleRestClient
from api.auth.groups import DirectoryGroupResolver
from api.auth.iam import IamAuthorizer
from api.auth.usage import UsageRules
from api.security import NoAuthentication
from styx_actors.clock import ManualClock
from styx_server.auth_mode import AuthChoice
from tests.api.conftest import API, Api, StartApi
from tests.api.test_auth import GrantAuthorizer, TokenAuthenticator
from tests.auth.conftest import NO_RETRIES, FakeGoogle, fake_google, google_apis, google_key, http  # noqa: F401

pytestmark = pytest.mark.local_only("the answer comes from the authorizer in the API process; no actor is asked")

PATH = f"{API}/status/testServiceAccountUsageAuthorization"
ROLE = "roles/iam.serviceAccountUser"
PROJECT = "team-project"
SA = f"etl@{PROJECT}.iam.gserviceaccount.com"
UNKNOWN_SA = "123456-compute@developer.gserviceaccount.com"  # names no project: looked up, and not found
HELP = "Ask #styx-support for access."
PARSING_FAILED = "Payload parsing failed: "


def question(service_account: str = SA, principal: str = "alice@example.com") -> dict[str, str]:
    return {"service_account": service_account, "principal": principal}


def denial(principal: str) -> str:
    return (
        f"The principal {principal} must have the role {ROLE} in the project {PROJECT} or on the service "
        f"account {SA}, either through a group membership or directly. {HELP}"
    )


@pytest.fixture
async def iam_api(
    start_api: StartApi,
    fake_google: FakeGoogle,
    http: httpx.AsyncClient,
    google_apis: GoogleCloudApis,
    clock: ManualClock,
) -> Api:
    """Authorization by Google IAM (not enforced for any workflow: the check answers regardless)."""
    fake_google.service_accounts[SA] = PROJECT
    fake_google.project_roles[PROJECT] = {ROLE: ["group:data-eng@example.com"]}
    fake_google.groups["data-eng@example.com"] = {"alice@example.com"}
    rules = UsageRules(role=ROLE, message=HELP, blocklist=("user:mallory@example.com",))
    groups = DirectoryGroupResolver(GoogleRestClient(http, NO_RETRIES), fake_google.base_url)
    authorizer = IamAuthorizer(google_apis, rules, groups, clock)
    return await start_api(auth=AuthChoice(NoAuthentication(), authorizer, enabled=False))


async def test_without_authorization_configured_every_principal_is_authorized(api: Api) -> None:
    response = await api.client.post(PATH, json=question())
    assert response.status_code == 200
    assert response.json() == {
        "service_account": SA,
        "principal": "alice@example.com",
        "authorized": True,
        "blacklisted": False,
        "message": None,
    }


@pytest.mark.parametrize(
    ("principal", "authorized", "blacklisted", "message"),
    [
        (
            "alice@example.com",
            True,
            False,
            f"Principal alice@example.com has role {ROLE} in project {PROJECT} via group data-eng@example.com",
        ),
        ("bob@example.com", False, False, denial("bob@example.com")),
        (
            "mallory@example.com",
            False,
            True,
            f"The principal mallory@example.com is blacklisted. Please use another one. {HELP}",
        ),
    ],
)
async def test_the_answer_is_the_authorizers_decision(
    iam_api: Api, principal: str, authorized: bool, blacklisted: bool, message: str
) -> None:
    response = await iam_api.client.post(PATH, json=question(principal=principal))
    assert response.status_code == 200  # a denial is an answer, not a refusal
    assert response.json() == {
        "service_account": SA,
        "principal": principal,
        "authorized": authorized,
        "blacklisted": blacklisted,
        "message": message,
    }


async def test_the_decision_is_taken_now_not_from_the_authorization_cache(
    iam_api: Api,
    fake_google: FakeGoogle,
) -> None:
    assert (await iam_api.client.post(PATH, json=question(principal="bob@example.com"))).json()["authorized"] is False
    fake_google.groups["data-eng@example.com"].add("bob@example.com")
    assert (await iam_api.client.post(PATH, json=question(principal="bob@example.com"))).json()["authorized"] is True


@pytest.mark.parametrize(
    ("service_account", "status", "message"),
    [
        (UNKNOWN_SA, 400, f"Service account does not exist: {UNKNOWN_SA}"),
        ("etl@gone-project.iam.gserviceaccount.com", 400, "Project does not exist: gone-project"),
    ],
)
async def test_lookup_errors_answer_with_their_status(
    iam_api: Api, service_account: str, status: int, message: str
) -> None:
    response = await iam_api.client.post(PATH, json=question(service_account=service_account))
    assert (response.status_code, response.json()) == (status, {"code": status, "message": message})


async def test_an_unreachable_google_api_is_a_503(iam_api: Api, fake_google: FakeGoogle) -> None:
    fake_google.fail(f"{PROJECT}:getIamPolicy", 500)
    response = await iam_api.client.post(PATH, json=question())
    assert response.status_code == 503
    assert response.json()["message"].startswith("Service account authorization is unavailable: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Missing payload"),
        (b'{"service_account": ', f"{PARSING_FAILED}Expecting value: line 1 column 21 (char 20)"),
        (b'{"service_account": "x"}', f"{PARSING_FAILED}principal: Field required"),
        (
            b'{"service_account": 1, "principal": "p"}',
            f"{PARSING_FAILED}service_account: Input should be a valid string",
        ),
        (
            b'{"service_account": "", "principal": "p"}',
            f"{PARSING_FAILED}service_account and principal cannot be empty",
        ),
    ],
)
async def test_bad_bodies_are_400s_with_the_reason(api: Api, content: bytes, message: str) -> None:
    response = await api.client.post(PATH, content=content, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"code": 400, "message": message})


async def test_asking_needs_an_authenticated_caller_when_authentication_is_on(start_api: StartApi) -> None:
    granted = GrantAuthorizer({("alice@example.com", SA)})
    secured = await start_api(auth=AuthChoice(TokenAuthenticator(), granted, enabled=True))
    anonymous = await secured.client.post(PATH, json=question())
    assert (anonymous.status_code, anonymous.json()["message"]) == (401, "Unauthorized access")
    # Anyone signed in may ask about anyone: the answer is about the principal of the body, not the caller.
    signed_in = await secured.client.post(PATH, json=question(), headers={"Authorization": "Bearer bob@example.com"})
    assert (signed_in.status_code, signed_in.json()["authorized"]) == (200, True)
