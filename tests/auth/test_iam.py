"""IamAuthorizer against a fake IAM, Cloud Resource Manager and Admin Directory on 127.0.0.1
(docs/auth.md#service-account-usage-iam)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.auth.gcp import GoogleCloudApis, GoogleRestClient
from api.auth.groups import DirectoryGroupResolver
from api.auth.iam import IamAuthorizer
from api.auth.usage import UsageRules
from api.security import Forbidden, Principal, Unauthorized
from styx_actors.clock import ManualClock
from styx_actors.errors import BadRequest, Unavailable
from tests.auth.conftest import NO_RETRIES, FakeGoogle

ROLE = "roles/iam.serviceAccountUser"
PROJECT = "team-project"
SA = f"etl@{PROJECT}.iam.gserviceaccount.com"
COMPUTE_SA = "123456-compute@developer.gserviceaccount.com"
ALICE = Principal("alice@example.com")
DEPLOYER = Principal(f"deployer@{PROJECT}.iam.gserviceaccount.com")
WORKFLOW = "component#workflow"
HELP = "Ask #styx-support for access."

MakeAuthorizer = Callable[..., IamAuthorizer]


@pytest.fixture
def fake(fake_google: FakeGoogle) -> FakeGoogle:
    fake_google.service_accounts[SA] = PROJECT
    fake_google.project_roles[PROJECT] = {"roles/viewer": ["user:alice@example.com"]}
    return fake_google


@pytest.fixture
def make_authorizer(
    fake: FakeGoogle, http: httpx.AsyncClient, google_apis: GoogleCloudApis, clock: ManualClock
) -> MakeAuthorizer:
    def make(**rules: Any) -> IamAuthorizer:
        rules.setdefault("require_all", True)
        groups = DirectoryGroupResolver(GoogleRestClient(http, NO_RETRIES), fake.base_url)
        return IamAuthorizer(google_apis, UsageRules(role=ROLE, message=HELP, **rules), groups, clock)

    return make


async def refusal(authorizer: IamAuthorizer, principal: Principal | None, service_account: str = SA) -> str:
    with pytest.raises(Forbidden) as denied:
        await authorizer.authorize(principal, service_account, WORKFLOW)
    assert denied.value.status_code == 403
    return denied.value.message


def denial(principal: Principal, project: str = PROJECT, service_account: str = SA) -> str:
    return (
        f"The principal {principal.email} must have the role {ROLE} in the project {project} or on the service "
        f"account {service_account}, either through a group membership or directly. {HELP}"
    )


async def test_role_in_the_project_directly(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    fake.project_roles[PROJECT][ROLE] = ["user:alice@example.com"]
    authorizer = make_authorizer()

    await authorizer.authorize(ALICE, SA, WORKFLOW)

    decision = await authorizer.decide(ALICE.email, SA)
    assert decision.message == f"Principal alice@example.com has role {ROLE} in project {PROJECT} directly"
    assert fake.count(f"{SA}:getIamPolicy") == 0  # the project's policy sufficed


async def test_role_in_the_project_via_a_group(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    fake.project_roles[PROJECT][ROLE] = ["group:strangers@example.com", "group:data-eng@example.com"]
    fake.groups["strangers@example.com"] = {"bob@example.com"}
    fake.groups["data-eng@example.com"] = {"alice@example.com"}
    authorizer = make_authorizer()

    await authorizer.authorize(ALICE, SA, WORKFLOW)

    decision = await authorizer.decide(ALICE.email, SA)
    assert decision.message.endswith(f"in project {PROJECT} via group data-eng@example.com")


async def test_role_on_the_service_account(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    fake.service_account_roles[SA] = {ROLE: ["user:alice@example.com"]}
    authorizer = make_authorizer()

    await authorizer.authorize(ALICE, SA, WORKFLOW)

    decision = await authorizer.decide(ALICE.email, SA)
    assert decision.message == f"Principal alice@example.com has role {ROLE} on service account {SA} directly"


async def test_other_roles_do_not_count(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    fake.service_account_roles[SA] = {"roles/iam.serviceAccountTokenCreator": ["user:alice@example.com"]}
    assert await refusal(make_authorizer(), ALICE) == denial(ALICE)


async def test_service_account_principals_are_serviceaccount_members(
    make_authorizer: MakeAuthorizer, fake: FakeGoogle
) -> None:
    fake.project_roles[PROJECT][ROLE] = [f"user:{DEPLOYER.email}"]
    authorizer = make_authorizer()
    assert await refusal(authorizer, DEPLOYER) == denial(DEPLOYER)

    fake.service_account_roles[SA] = {ROLE: [f"serviceAccount:{DEPLOYER.email}"]}
    await make_authorizer().authorize(DEPLOYER, SA, WORKFLOW)


async def test_administrator_needs_no_grant_and_no_lookup(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    authorizer = make_authorizer(administrators=("user:alice@example.com",))

    await authorizer.authorize(ALICE, SA, WORKFLOW)

    assert fake.count(":getIamPolicy") == 0
    assert (await authorizer.decide(ALICE.email, SA)).message == "Principal alice@example.com is an admin directly"


async def test_administrator_via_a_group(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    fake.groups["styx-admins@example.com"] = {"alice@example.com"}
    authorizer = make_authorizer(administrators=("group:styx-admins@example.com",))

    await authorizer.authorize(ALICE, SA, WORKFLOW)


async def test_blocklisted_principal_is_denied_despite_a_grant(
    make_authorizer: MakeAuthorizer, fake: FakeGoogle
) -> None:
    fake.project_roles[PROJECT][ROLE] = ["user:alice@example.com"]
    authorizer = make_authorizer(blocklist=("user:alice@example.com",), administrators=("user:alice@example.com",))

    message = await refusal(authorizer, ALICE)

    assert message == f"The principal alice@example.com is blacklisted. Please use another one. {HELP}"
    assert (await authorizer.decide(ALICE.email, SA)).blocklisted


async def test_blocklisted_via_a_group(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    fake.project_roles[PROJECT][ROLE] = [f"serviceAccount:{DEPLOYER.email}"]
    fake.groups["retired-robots@example.com"] = {DEPLOYER.email}
    authorizer = make_authorizer(blocklist=("group:unknown@example.com", "group:retired-robots@example.com"))

    message = await refusal(authorizer, DEPLOYER)

    assert message == f"The principal {DEPLOYER.email} is blacklisted. Please use another one. {HELP}"


async def test_denial_names_role_project_and_service_account(make_authorizer: MakeAuthorizer) -> None:
    assert await refusal(make_authorizer(), ALICE) == (
        "The principal alice@example.com must have the role roles/iam.serviceAccountUser in the project "
        "team-project or on the service account etl@team-project.iam.gserviceaccount.com, either through a group "
        "membership or directly. Ask #styx-support for access."
    )


async def test_google_managed_service_account_project_is_looked_up(
    make_authorizer: MakeAuthorizer, fake: FakeGoogle
) -> None:
    fake.service_accounts[COMPUTE_SA] = PROJECT
    fake.project_roles[PROJECT][ROLE] = ["user:alice@example.com"]

    await make_authorizer().authorize(ALICE, COMPUTE_SA, WORKFLOW)

    assert fake.count(f"/v1/projects/-/serviceAccounts/{COMPUTE_SA}") == 1


@pytest.mark.parametrize("require_all", [True, False])
async def test_unknown_service_account_is_a_bad_request_even_when_not_enforced(
    make_authorizer: MakeAuthorizer, require_all: bool
) -> None:
    authorizer = make_authorizer(require_all=require_all)
    with pytest.raises(BadRequest) as error:
        await authorizer.authorize(ALICE, COMPUTE_SA, WORKFLOW)
    assert error.value.message == f"Service account does not exist: {COMPUTE_SA}"


async def test_service_account_without_policy_is_a_bad_request(
    make_authorizer: MakeAuthorizer, fake: FakeGoogle
) -> None:
    missing = f"deleted@{PROJECT}.iam.gserviceaccount.com"  # its project exists, the account does not
    with pytest.raises(BadRequest) as error:
        await make_authorizer().authorize(ALICE, missing, WORKFLOW)
    assert error.value.message == f"Service account does not exist: {missing}"


async def test_unreadable_project_is_a_bad_request(make_authorizer: MakeAuthorizer) -> None:
    # The fake answers 403 for a project it does not know, as Google does.
    with pytest.raises(BadRequest) as error:
        await make_authorizer().authorize(ALICE, "etl@gone-project.iam.gserviceaccount.com", WORKFLOW)
    assert error.value.message == "Project does not exist: gone-project"


async def test_decisions_are_cached_for_60_seconds(
    make_authorizer: MakeAuthorizer, fake: FakeGoogle, clock: ManualClock
) -> None:
    authorizer = make_authorizer()
    assert await refusal(authorizer, ALICE) == denial(ALICE)
    calls = len(fake.requests)

    fake.service_account_roles[SA] = {ROLE: ["user:alice@example.com"]}
    clock.advance(timedelta(seconds=59))
    assert await refusal(authorizer, ALICE) == denial(ALICE)
    assert len(fake.requests) == calls

    clock.advance(timedelta(seconds=1))
    await authorizer.authorize(ALICE, SA, WORKFLOW)
    assert len(fake.requests) > calls


async def test_lookup_errors_are_cached_too(make_authorizer: MakeAuthorizer, fake: FakeGoogle) -> None:
    authorizer = make_authorizer()
    for _ in range(2):
        with pytest.raises(BadRequest):
            await authorizer.authorize(ALICE, COMPUTE_SA, WORKFLOW)
    assert fake.count(COMPUTE_SA) == 1


async def test_only_listed_workflows_are_enforced(make_authorizer: MakeAuthorizer) -> None:
    authorizer = make_authorizer(require_all=False, require_workflows=frozenset({WORKFLOW}))

    await authorizer.authorize(ALICE, SA, "component#other-workflow")  # denied, but only logged
    assert await refusal(authorizer, ALICE) == denial(ALICE)


async def test_nothing_is_enforced_without_require_settings(make_authorizer: MakeAuthorizer) -> None:
    await make_authorizer(require_all=False).authorize(ALICE, SA, WORKFLOW)


async def test_anonymous_caller_is_unauthorized_where_enforced(make_authorizer: MakeAuthorizer) -> None:
    authorizer = make_authorizer(require_all=False, require_workflows=frozenset({WORKFLOW}))
    await authorizer.authorize(None, SA, "component#other-workflow")
    with pytest.raises(Unauthorized) as error:
        await authorizer.authorize(None, SA, WORKFLOW)
    assert error.value.message == "Unauthorized access"


async def test_google_outage_is_unavailable_when_enforced_and_allowed_otherwise(
    make_authorizer: MakeAuthorizer, fake: FakeGoogle
) -> None:
    fake.fail(f"{PROJECT}:getIamPolicy", 500, 500)
    with pytest.raises(Unavailable):
        await make_authorizer().authorize(ALICE, SA, WORKFLOW)
    await make_authorizer(require_all=False).authorize(ALICE, SA, WORKFLOW)


async def test_server_errors_are_retried(fake: FakeGoogle, http: httpx.AsyncClient, clock: ManualClock) -> None:
    fake.project_roles[PROJECT][ROLE] = ["user:alice@example.com"]
    fake.fail(f"{PROJECT}:getIamPolicy", 503, 502)
    patient = GoogleRestClient(http, retry_deadline=timedelta(seconds=30))
    apis = GoogleCloudApis(patient, fake.base_url, fake.base_url)
    authorizer = IamAuthorizer(
        apis, UsageRules(role=ROLE, require_all=True), DirectoryGroupResolver(patient, fake.base_url), clock
    )

    await authorizer.authorize(ALICE, SA, WORKFLOW)

    assert fake.count(f"{PROJECT}:getIamPolicy") == 3


def test_misconfigured_member_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="alice@example.com"):
        UsageRules(role=ROLE, administrators=("alice@example.com",))
