"""May a principal run workflows as a service account? The decision procedure of
docs/auth.md#service-account-usage-iam, whatever the source of grants (Google IAM in api/auth/iam.py, a
static policy file in api/auth/policy_file.py).

Per (principal, service account), cached 60 s, lookup errors included (as Styx caches them):
blocklisted ⇒ denied; administrator ⇒ allowed; the role granted in the service account's project or on the
service account itself (directly or via a group) ⇒ allowed; else denied. A denial is raised (403) only when
the workflow is enforced (`require_all`, or its key listed); otherwise it is only logged. Lookup errors
(BadRequest) are raised either way; an unreachable Google API is a 503 when enforced and allowed otherwise.

Administrators are checked before the role, as Styx's ServiceAccountUsageAuthorizer does at HEAD, so an
administrator costs no API calls.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta

from api.auth.cache import TtlCache
from api.auth.gcp import GoogleApiError
from api.auth.groups import GroupResolver, membership, validate_members
from api.security import Forbidden, Principal, Unauthorized, UsageDecision
from styx_actors.clock import Clock
from styx_actors.errors import BadRequest, Unavailable
from styx_actors.settings import Settings

log = logging.getLogger(__name__)

DECISION_CACHE_TTL = timedelta(seconds=60)
DECISION_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class UsageRules:
    """The configuration both authorizers share (settings `authorization_*`)."""

    role: str
    administrators: tuple[str, ...] = ()
    blocklist: tuple[str, ...] = ()
    message: str = ""
    require_all: bool = False
    require_workflows: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        validate_members(self.administrators)
        validate_members(self.blocklist)

    @classmethod
    def from_settings(cls, settings: Settings, role: str) -> UsageRules:
        return cls(
            role=role,
            administrators=tuple(settings.authorization_admins),
            blocklist=tuple(settings.authorization_blocklist),
            message=settings.authorization_message,
            require_all=settings.authorization_require_all,
            require_workflows=frozenset(settings.authorization_require_workflows),
        )

    def enforces(self, workflow_key: str) -> bool:
        return self.require_all or workflow_key in self.require_workflows

    def blocklisted_message(self, principal: str) -> str:
        return f"The principal {principal} is blacklisted. Please use another one. {self.message}"

    def denial_message(self, principal: str, project: str, service_account: str) -> str:
        return (
            f"The principal {principal} must have the role {self.role} in the project {project} or on the "
            f"service account {service_account}, either through a group membership or directly. {self.message}"
        )


def _unavailable(error: GoogleApiError) -> Unavailable:
    return Unavailable(f"Service account authorization is unavailable: {error.message}")


class ServiceAccountUsageAuthorizer(ABC):
    """The `Authorizer` of api/security.py; subclasses say where the service account's grants come from."""

    def __init__(self, rules: UsageRules, groups: GroupResolver, clock: Clock) -> None:
        self.rules = rules
        self._groups = groups
        self._decisions: TtlCache[tuple[str, str], UsageDecision | BadRequest] = TtlCache(
            DECISION_CACHE_SIZE, DECISION_CACHE_TTL, clock
        )

    @property
    def groups(self) -> GroupResolver:
        """Where group membership comes from (scheduler administrators use it too, api/auth/admins.py)."""
        return self._groups

    @abstractmethod
    async def project_of(self, service_account: str) -> str:
        """The service account's project; BadRequest `Service account does not exist: <sa>` if unknown."""

    @abstractmethod
    def role_grants(self, service_account: str, project: str) -> AsyncIterator[tuple[str, Iterable[str]]]:
        """The members granted the role, place by place: (`in project <p>` | `on service account <sa>`,
        members). Lazy, so the service account's own policy is only read if the project's does not grant."""

    async def authorize(self, principal: Principal | None, service_account: str, workflow_key: str) -> None:
        enforce = self.rules.enforces(workflow_key)
        if principal is None:
            log.info(
                "[AUDIT] Anonymous use of service account %s in workflow %s (Enforcing: %s)",
                service_account,
                workflow_key,
                enforce,
            )
            if enforce:
                raise Unauthorized("Unauthorized access")
            return
        key = (principal.email, service_account)
        outcome = self._decisions.get(key)
        cache = "hit" if outcome is not None else "miss"
        if outcome is None:
            try:
                outcome = await self._decision(principal.email, service_account)
            except BadRequest as error:
                outcome = error
            except GoogleApiError as error:
                log.warning(
                    "Authorization failure for service account %s used by %s (enforce: %s): %s",
                    service_account,
                    principal.email,
                    enforce,
                    error,
                )
                if enforce:
                    raise _unavailable(error) from error
                return
            self._decisions.put(key, outcome)
        if isinstance(outcome, BadRequest):
            raise BadRequest(outcome.message)
        if outcome.authorized:
            log.info(
                "[AUDIT] %s, authorizing use of service account %s in workflow %s (Enforcing: %s, Cache: %s)",
                outcome.message,
                service_account,
                workflow_key,
                enforce,
                cache,
            )
            return
        log.info(
            "[AUDIT] Principal %s denied use of service account %s in workflow %s (Enforcing: %s, Cache: %s)",
            principal.email,
            service_account,
            workflow_key,
            enforce,
            cache,
        )
        if enforce:
            raise Forbidden(outcome.message or "")

    async def decide(self, principal: str, service_account: str) -> UsageDecision:
        """The uncached decision for the status endpoint (Styx's `checkServiceAccountUsageAuthorization`);
        unreachable Google APIs are a 503 there whatever the enforcement."""
        try:
            return await self._decision(principal, service_account)
        except GoogleApiError as error:
            raise _unavailable(error) from error

    async def _decision(self, principal: str, service_account: str) -> UsageDecision:
        if await membership(principal, self.rules.blocklist, self._groups) is not None:
            return UsageDecision(False, self.rules.blocklisted_message(principal), blocklisted=True)
        admin = await membership(principal, self.rules.administrators, self._groups)
        if admin is not None:
            return UsageDecision(True, f"Principal {principal} is an admin {admin}")
        project = await self.project_of(service_account)
        async for place, members in self.role_grants(service_account, project):
            how = await membership(principal, members, self._groups)
            if how is not None:
                return UsageDecision(True, f"Principal {principal} has role {self.rules.role} {place} {how}")
        return UsageDecision(False, self.rules.denial_message(principal, project, service_account))
