"""What every route depends on: the services of the process, who the caller is, and whether they may act.

Reads go to `Services.store`; everything that changes what the actors do goes through `Services.commands`.
Authentication runs for every /api/v3 request that carries an Authorization header
(docs/auth.md#google-id-tokens); service-account authorization is asked per workflow by the routes that
change one (docs/auth.md#service-account-usage-iam).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request

from api.errors import NotAcceptable
from api.security import AllowAll, Authenticator, Authorizer, NoAuthentication, Principal, Unauthorized
from styx_actors.actors.commands import Commands
from styx_actors.clock import Clock
from styx_actors.model import Workflow
from styx_actors.settings import Settings
from styx_actors.store.base import Store

API_PREFIX = "/api/v3"

# Methods that only read: Styx lets anonymous callers use them.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# How stale the client blacklist may be. Styx edits it out of band (in the store) and refreshes it
# periodically too; a store read per request would cost a third of a GET.
CLIENT_BLACKLIST_TTL_SECONDS = 1.0


class ClientBlacklist:
    """The global config's client blacklist, read from the store at most once a `ttl`."""

    def __init__(
        self, store: Store, ttl: float = CLIENT_BLACKLIST_TTL_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._monotonic = monotonic
        self._entries: frozenset[str] = frozenset()
        self._read_at = -math.inf

    async def contains(self, user_agent: str) -> bool:
        if self._monotonic() - self._read_at > self._ttl:
            self._entries = frozenset((await self._store.get_config()).client_blacklist)
            self._read_at = self._monotonic()
        return user_agent in self._entries


class Administrators(Protocol):
    async def authorize(self, principal: Principal, action: str) -> None:
        """Raise Forbidden unless `principal` may `action` (e.g. `change resources`): the changes every
        workflow shares, reserved to scheduler administrators when authentication is on (docs/auth.md)."""
        ...


@dataclass
class Services:
    store: Store
    commands: Commands
    settings: Settings
    clock: Clock
    authenticator: Authenticator = field(default_factory=NoAuthentication)
    authorizer: Authorizer = field(default_factory=AllowAll)
    auth_enabled: bool = False
    # Checked only with authentication on; None there means: built from STYX_SCHEDULER_ADMINS.
    administrators: Administrators | None = None
    client_blacklist: ClientBlacklist = field(init=False)

    def __post_init__(self) -> None:
        self.client_blacklist = ClientBlacklist(self.store)
        if self.auth_enabled and self.administrators is None:
            from api.auth.admins import scheduler_administrators  # Google's libraries: only with authentication

            self.administrators = scheduler_administrators(self.settings, self.authorizer, self.clock)


async def get_services(request: Request) -> Services:  # async: FastAPI runs a plain def in a thread
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def reject_blacklisted_clients(request: Request, services: ServicesDep) -> None:
    """Styx's client blacklist: User-Agent strings listed in the global config get a 406."""
    user_agent = request.headers.get("user-agent")
    if user_agent is not None and await services.client_blacklist.contains(user_agent):
        raise NotAcceptable("blacklisted client version, please upgrade")


async def authenticate(request: Request, services: ServicesDep) -> Principal | None:
    """The caller, or None when anonymous. Anonymous callers may only read when authentication is on."""
    header = request.headers.get("authorization")
    principal = await services.authenticator.authenticate(header) if header is not None else None
    request.state.principal = principal
    if principal is None and services.auth_enabled and request.method not in READ_METHODS:
        raise Unauthorized("Unauthorized access")
    request.state.authenticated = True  # the audit log tells requests that got this far from refused ones
    return principal


PrincipalDep = Annotated[Principal | None, Depends(authenticate)]


def require_administrator(action: str) -> Callable[[Services, Principal | None], Awaitable[None]]:
    """A route dependency: with authentication on, only scheduler administrators may `action`."""

    async def check_administrator(services: ServicesDep, principal: PrincipalDep) -> None:
        if not services.auth_enabled or services.administrators is None:
            return
        if principal is None:  # `authenticate` refuses anonymous changes already; reads never get here
            raise Unauthorized("Unauthorized access")
        await services.administrators.authorize(principal, action)

    return check_administrator


async def authorize_workflow(services: Services, principal: Principal | None, workflow: Workflow | None) -> None:
    """Ask the authorizer whether the caller may act as the workflow's service account (only when it has one)."""
    if workflow is None:
        return
    service_account = workflow.configuration.service_account
    if service_account:
        await services.authorizer.authorize(principal, service_account, workflow.id.key())


def parse_boolean(value: str | None) -> bool:
    """Java's Boolean.parseBoolean, which Styx uses for flags such as `allowFuture`: "true" in any case."""
    return value is not None and value.lower() == "true"
