"""PolicyFileAuthorizer: service-account usage granted by a static YAML/JSON file (docs/auth.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.auth.policy_file import PolicyFileAuthorizer, PolicyFileError, load_policy
from api.auth.usage import UsageRules
from api.security import Forbidden, Principal
from styx_actors.clock import ManualClock

POLICY = """
role: roles/styx.runAs
groups:
  data-eng@example.com: [alice@example.com, loader@ingest.iam.gserviceaccount.com]
  retired@example.com: [mallory@example.com]
projects:
  analytics: [group:data-eng@example.com]
service_accounts:
  reporter@reports.iam.gserviceaccount.com: [user:carol@example.com]
  123456-compute@developer.gserviceaccount.com: [user:carol@example.com]
"""
ANALYTICS_SA = "etl@analytics.iam.gserviceaccount.com"
REPORTS_SA = "reporter@reports.iam.gserviceaccount.com"
COMPUTE_SA = "123456-compute@developer.gserviceaccount.com"
WORKFLOW = "component#workflow"


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "styx-policy.yaml"
    path.write_text(POLICY)
    return path


def authorizer_for(path: Path, clock: ManualClock, **rules: object) -> PolicyFileAuthorizer:
    policy = load_policy(path)
    rules.setdefault("require_all", True)
    return PolicyFileAuthorizer(policy, UsageRules(role=policy.role, message="See go/styx.", **rules), clock)


async def test_role_in_a_project_via_a_file_group(policy_path: Path, clock: ManualClock) -> None:
    authorizer = authorizer_for(policy_path, clock)

    await authorizer.authorize(Principal("alice@example.com"), ANALYTICS_SA, WORKFLOW)
    await authorizer.authorize(Principal("loader@ingest.iam.gserviceaccount.com"), ANALYTICS_SA, WORKFLOW)
    decision = await authorizer.decide("alice@example.com", ANALYTICS_SA)
    assert decision.message == (
        "Principal alice@example.com has role roles/styx.runAs in project analytics via group data-eng@example.com"
    )


async def test_role_on_one_service_account(policy_path: Path, clock: ManualClock) -> None:
    authorizer = authorizer_for(policy_path, clock)

    await authorizer.authorize(Principal("carol@example.com"), REPORTS_SA, WORKFLOW)
    with pytest.raises(Forbidden):
        await authorizer.authorize(Principal("carol@example.com"), ANALYTICS_SA, WORKFLOW)


async def test_denial_uses_the_files_role_and_styx_wording(policy_path: Path, clock: ManualClock) -> None:
    with pytest.raises(Forbidden) as denied:
        await authorizer_for(policy_path, clock).authorize(Principal("alice@example.com"), REPORTS_SA, WORKFLOW)
    assert denied.value.message == (
        "The principal alice@example.com must have the role roles/styx.runAs in the project reports or on the "
        "service account reporter@reports.iam.gserviceaccount.com, either through a group membership or "
        "directly. See go/styx."
    )


async def test_google_managed_account_only_has_its_own_grants(policy_path: Path, clock: ManualClock) -> None:
    authorizer = authorizer_for(policy_path, clock)

    await authorizer.authorize(Principal("carol@example.com"), COMPUTE_SA, WORKFLOW)
    with pytest.raises(Forbidden) as denied:
        await authorizer.authorize(Principal("alice@example.com"), COMPUTE_SA, WORKFLOW)
    assert "in the project unknown or on the service account" in denied.value.message


async def test_administrators_and_blocklist_may_name_file_groups(policy_path: Path, clock: ManualClock) -> None:
    authorizer = authorizer_for(
        policy_path,
        clock,
        administrators=("group:data-eng@example.com", "user:mallory@example.com"),
        blocklist=("group:retired@example.com",),
    )

    await authorizer.authorize(Principal("alice@example.com"), REPORTS_SA, WORKFLOW)
    with pytest.raises(Forbidden) as denied:  # the blocklist wins over being an administrator
        await authorizer.authorize(Principal("mallory@example.com"), REPORTS_SA, WORKFLOW)
    assert denied.value.message == (
        "The principal mallory@example.com is blacklisted. Please use another one. See go/styx."
    )


async def test_denials_outside_enforced_workflows_are_only_logged(policy_path: Path, clock: ManualClock) -> None:
    authorizer = authorizer_for(policy_path, clock, require_all=False, require_workflows=frozenset({WORKFLOW}))

    await authorizer.authorize(Principal("alice@example.com"), REPORTS_SA, "component#other")
    with pytest.raises(Forbidden):
        await authorizer.authorize(Principal("alice@example.com"), REPORTS_SA, WORKFLOW)


async def test_json_policy_file(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"service_accounts": {REPORTS_SA: ["user:carol@example.com"]}}))
    authorizer = authorizer_for(path, clock)

    await authorizer.authorize(Principal("carol@example.com"), REPORTS_SA, WORKFLOW)
    assert authorizer.rules.role == "roles/iam.serviceAccountUser"


async def test_an_empty_file_allows_nobody(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(Forbidden):
        await authorizer_for(path, clock).authorize(Principal("carol@example.com"), REPORTS_SA, WORKFLOW)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("service_accounts:\n  a@p.iam.gserviceaccount.com: [carol@example.com]\n", "not an IAM member"),
        ("project:\n  analytics: [user:carol@example.com]\n", "project\n  Extra inputs are not permitted"),
        ("projects: [analytics]\n", "projects\n  Input should be a valid dictionary"),
        ("projects: {analytics: [user:a@b.c]\n", "Cannot read"),
        ("- just a list\n", "Invalid authorization policy file"),
    ],
)
def test_invalid_policy_files_are_refused_with_the_reason(tmp_path: Path, content: str, complaint: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyFileError, match=complaint):
        load_policy(path)


def test_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="Cannot read the authorization policy file"):
        load_policy(tmp_path / "absent.yaml")
