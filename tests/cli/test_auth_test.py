"""`styx auth test`: the service's answer to "may this principal use this service account?", printed as
Styx's CLI prints it, exit status 1 when not authorized (docs/cli.md#authorization).

The service authorizes with a real policy file (api/auth/policy_file.py): no Google needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth.policy_file import PolicyFileAuthorizer, ServiceAccountPolicy
from api.auth.usage import UsageRules
from api.security import NoAuthentication
from styx_actors.cli.errors import ExitStatus
from styx_actors.clock import SystemClock
from styx_server.auth_mode import AuthChoice
from tests.cli.conftest import Styx, serve

ROLE = "roles/iam.serviceAccountUser"
SA = "etl@analytics.iam.gserviceaccount.com"
HELP = "Ask #data-eng."
GRANTED = f"Principal alice@example.com has role {ROLE} in project analytics directly"
AUTHORIZED = f"The principal alice@example.com is authorized to use the service account {SA}. {GRANTED}"
DENIED = (
    f"The principal bob@example.com must have the role {ROLE} in the project analytics or on the service account "
    f"{SA}, either through a group membership or directly. {HELP}"
)


@pytest.fixture(scope="module")
def styx(tmp_path_factory: pytest.TempPathFactory, cli_home: Path) -> Iterator[Styx]:
    """A service whose policy lets alice (only) use the analytics project's service accounts."""
    policy = ServiceAccountPolicy(role=ROLE, projects={"analytics": ["user:alice@example.com"]})
    authorizer = PolicyFileAuthorizer(policy, UsageRules(role=ROLE, message=HELP), SystemClock())
    auth = AuthChoice(NoAuthentication(), authorizer, enabled=False)
    with serve(tmp_path_factory.mktemp("service"), auth=auth) as url:
        yield Styx(url, cli_home)


@pytest.mark.parametrize("arguments", [(SA, "alice@example.com"), ("-a", SA, "-u", "alice@example.com")])
def test_an_authorized_principal_is_told_why_and_exits_0(styx: Styx, arguments: tuple[str, ...]) -> None:
    result = styx("auth", "test", *arguments)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == f"{AUTHORIZED}\n"


def test_a_denied_principal_is_told_why_and_exits_1(styx: Styx) -> None:
    result = styx("auth", "test", SA, "bob@example.com", "--json")
    assert (result.code, result.stderr) == (ExitStatus.UNKNOWN_ERROR, "")
    assert result.json() == f"The principal bob@example.com is not authorized to use the service account {SA}. {DENIED}"


@pytest.mark.parametrize(
    "arguments",
    [
        (SA,),  # no principal
        ("-u", "alice@example.com"),  # no service account
        (SA, "alice@example.com", "-a", SA),  # the service account twice
    ],
)
def test_the_service_account_and_the_principal_are_needed_once_each(styx: Styx, arguments: tuple[str, ...]) -> None:
    result = styx("auth", "test", *arguments)
    assert result.code == ExitStatus.ARGUMENT_ERROR
    assert result.stderr.startswith("give the ")
