"""Service-account usage authorized by Google IAM policies (docs/auth.md#service-account-usage-iam, Styx's
ServiceAccountUsageAuthorizer): the configured role in the IAM policy of the service account's project
(Cloud Resource Manager) or of the service account itself (IAM), directly or through a Workspace group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from api.auth.gcp import Binding, GoogleApiError, GoogleCloudApis, project_in_email
from api.auth.groups import GroupResolver
from api.auth.usage import ServiceAccountUsageAuthorizer, UsageRules
from styx_actors.clock import Clock
from styx_actors.errors import BadRequest


def _members_with_role(bindings: list[Binding], role: str) -> list[str]:
    return [member for binding in bindings if binding.role == role for member in binding.members]


class IamAuthorizer(ServiceAccountUsageAuthorizer):
    def __init__(self, apis: GoogleCloudApis, rules: UsageRules, groups: GroupResolver, clock: Clock) -> None:
        super().__init__(rules, groups, clock)
        self._apis = apis

    async def project_of(self, service_account: str) -> str:
        project = project_in_email(service_account)
        if project is not None:
            return project
        try:
            return await self._apis.service_account_project(service_account)
        except GoogleApiError as error:
            if error.status == 404:
                raise BadRequest(f"Service account does not exist: {service_account}") from error
            raise

    async def role_grants(self, service_account: str, project: str) -> AsyncIterator[tuple[str, Iterable[str]]]:
        try:
            project_policy = await self._apis.project_iam_policy(project)
        except GoogleApiError as error:
            # Google answers 403 rather than 404 for a project the caller cannot see, so as not to reveal it.
            if error.status in (403, 404):
                raise BadRequest(f"Project does not exist: {project}") from error
            raise
        yield f"in project {project}", _members_with_role(project_policy, self.rules.role)
        try:
            account_policy = await self._apis.service_account_iam_policy(service_account)
        except GoogleApiError as error:
            if error.status == 404:
                raise BadRequest(f"Service account does not exist: {service_account}") from error
            raise
        yield f"on service account {service_account}", _members_with_role(account_policy, self.rules.role)
