"""Service-account usage authorized by a static policy file instead of Google IAM (docs/auth.md).

For installations without Google Cloud: the file (YAML, or JSON since JSON is YAML) says who may use which
service account, with the same decision procedure and messages as IAM (api/auth/usage.py):

    role: roles/iam.serviceAccountUser       # optional, named in denial messages
    groups:                                  # group email -> member emails
      data-eng@example.com: [alice@example.com, bob@example.com]
    projects:                                # the role in a project: every service account of it
      analytics: [group:data-eng@example.com]
    service_accounts:                        # the role on one service account
      reporter@analytics.iam.gserviceaccount.com: [user:carol@example.com]

It is read once, when the service starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from api.auth.gcp import project_in_email
from api.auth.groups import StaticGroupResolver, validate_members
from api.auth.usage import ServiceAccountUsageAuthorizer, UsageRules
from styx_actors.clock import Clock

DEFAULT_ROLE = "roles/iam.serviceAccountUser"
# A Google-managed account (e.g. <number>-compute@developer.gserviceaccount.com) does not name its
# project, and the file cannot look it up: only grants on the account itself apply to it.
UNKNOWN_PROJECT = "unknown"


class PolicyFileError(ValueError):
    pass


class ServiceAccountPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = DEFAULT_ROLE
    groups: dict[str, list[str]] = {}
    projects: dict[str, list[str]] = {}
    service_accounts: dict[str, list[str]] = {}

    @field_validator("projects", "service_accounts")
    @classmethod
    def _typed_members(cls, grants: dict[str, list[str]]) -> dict[str, list[str]]:
        for members in grants.values():
            validate_members(members)
        return grants


def load_policy(path: Path) -> ServiceAccountPolicy:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise PolicyFileError(f"Cannot read the authorization policy file {path}: {error}") from error
    try:
        return ServiceAccountPolicy.model_validate(document or {})
    except ValidationError as error:
        raise PolicyFileError(f"Invalid authorization policy file {path}: {error}") from error


class PolicyFileAuthorizer(ServiceAccountUsageAuthorizer):
    def __init__(self, policy: ServiceAccountPolicy, rules: UsageRules, clock: Clock) -> None:
        super().__init__(rules, StaticGroupResolver(policy.groups), clock)
        self._policy = policy

    async def project_of(self, service_account: str) -> str:
        return project_in_email(service_account) or UNKNOWN_PROJECT

    async def role_grants(self, service_account: str, project: str) -> AsyncIterator[tuple[str, Iterable[str]]]:
        if project != UNKNOWN_PROJECT:
            yield f"in project {project}", self._policy.projects.get(project, [])
        yield f"on service account {service_account}", self._policy.service_accounts.get(service_account, [])
