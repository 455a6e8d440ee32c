"""Who is calling, and may they act on a workflow: the contracts the routers depend on (docs/auth.md).

Routers never look at tokens themselves. `Authenticator.authenticate` turns the Authorization header into a
Principal (or None for an anonymous caller); `Authorizer.authorize` decides whether a principal may act on a
workflow that runs as a service account, and `Authorizer.decide` answers that question without enforcing
anything (the status endpoint `testServiceAccountUsageAuthorization`). Implementations live in api/auth/
(Google ID tokens, Google IAM, a static policy file) and are chosen by `styx serve` from settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from styx_actors.errors import CommandError


@dataclass(frozen=True)
class Principal:
    email: str


@dataclass(frozen=True)
class UsageDecision:
    """May a principal use a service account, and why (Styx's ServiceAccountUsageAuthorizationResult)."""

    authorized: bool
    message: str | None  # None when the authorizer has nothing to say (authorization not configured)
    blocklisted: bool = False


class Unauthorized(CommandError):
    status_code = 401


class Forbidden(CommandError):
    status_code = 403


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> Principal | None:
        """None for a request without an Authorization header. Raises BadRequest for a header that is not
        `Bearer <token>` (`Authorization token must be of type Bearer`) or an unparsable token (`Failed to
        parse Authorization token`), and Unauthorized (`Authorization token is invalid`) for a rejected one."""
        ...


class Authorizer(Protocol):
    async def authorize(self, principal: Principal | None, service_account: str, workflow_key: str) -> None:
        """Raise Forbidden (or BadRequest for lookup errors, docs/auth.md#service-account-usage-iam) unless
        `principal` may use `service_account` for the workflow `component#workflow`."""
        ...

    async def decide(self, principal: str, service_account: str) -> UsageDecision:
        """The decision for (principal email, service account) as of now, uncached, whether or not it would be
        enforced: a denial is an answer, not an error. Raises BadRequest for lookup errors (`Service account
        does not exist: <sa>`, `Project does not exist: <p>`) and Unavailable when the grants cannot be read."""
        ...


class NoAuthentication:
    """Embedded single-machine mode on loopback: every caller is anonymous and allowed."""

    async def authenticate(self, authorization: str | None) -> Principal | None:
        return None


class AllowAll:
    """Service-account authorization not configured: everything is allowed (Styx's no-op authorizer)."""

    async def authorize(self, principal: Principal | None, service_account: str, workflow_key: str) -> None:
        return None

    async def decide(self, principal: str, service_account: str) -> UsageDecision:
        return UsageDecision(authorized=True, message=None)
