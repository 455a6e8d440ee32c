"""Scheduler administrators: who may change what every workflow shares, when authentication is on.

The global config (`POST /api/v3/config`: scheduling on or off for everyone) and resources (the limits every
workflow that names them runs under) are not any one team's. Styx let every authenticated caller change
them; here only the members of `STYX_SCHEDULER_ADMINS` may, others get 403. Members are IAM member strings
(`user:`, `serviceAccount:`, `group:`), as for `STYX_AUTHORIZATION_ADMINS`, which is a different role: using
every service account, i.e. running code as anyone. Neither implies the other.

Groups are resolved where service-account authorization resolves them: Google's Admin Directory with
`STYX_AUTHORIZATION_ROLE`, the policy file's `groups` with `STYX_AUTHORIZATION_POLICY_FILE`. Without either
there is nothing to ask, so a `group:` entry is refused at start-up rather than never matching.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from api.auth.cache import TtlCache
from api.auth.gcp import GoogleApiError
from api.auth.groups import GROUP_PREFIX, GroupResolver, membership, validate_members
from api.auth.usage import ServiceAccountUsageAuthorizer
from api.security import Authorizer, Forbidden, Principal
from styx_actors.clock import Clock
from styx_actors.errors import Unavailable
from styx_actors.settings import Settings

log = logging.getLogger(__name__)

# As service-account decisions: a principal removed from a group loses the role within a minute.
DECISION_CACHE_TTL = timedelta(seconds=60)
DECISION_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Membership:
    how: str | None  # `directly`, `via group <g>`, or None: not an administrator


class NoGroups:
    """No source of group membership is configured (start-up refuses `group:` entries then)."""

    async def is_member(self, group: str, email: str) -> bool:
        return False


class SchedulerAdministrators:
    """The `Administrators` of api/security.py."""

    def __init__(self, members: Sequence[str], groups: GroupResolver, clock: Clock, message: str = "") -> None:
        self._members = tuple(validate_members(members))
        self._groups = groups
        self._message = message
        self._decisions: TtlCache[str, Membership] = TtlCache(DECISION_CACHE_SIZE, DECISION_CACHE_TTL, clock)

    async def authorize(self, principal: Principal, action: str) -> None:
        decision = self._decisions.get(principal.email)
        if decision is None:
            try:
                decision = Membership(await membership(principal.email, self._members, self._groups))
            except GoogleApiError as error:
                raise Unavailable(f"Cannot check scheduler administrators: {error.message}") from error
            self._decisions.put(principal.email, decision)
        if decision.how is not None:
            log.info(
                "[AUDIT] Principal %s is a scheduler administrator %s: may %s", principal.email, decision.how, action
            )
            return
        log.info("[AUDIT] Principal %s denied: may not %s (not a scheduler administrator)", principal.email, action)
        raise Forbidden(
            f"The principal {principal.email} may not {action}: only scheduler administrators "
            f"(STYX_SCHEDULER_ADMINS) may. {self._message}".rstrip()
        )


def scheduler_administrators(settings: Settings, authorizer: Authorizer, clock: Clock) -> SchedulerAdministrators:
    """From STYX_SCHEDULER_ADMINS, with the group resolver of `authorizer` (the service-account authorizer
    chosen by build_security). Raises ValueError for entries that are not IAM members, and for `group:`
    entries when no group resolver is configured."""
    if isinstance(authorizer, ServiceAccountUsageAuthorizer):
        groups: GroupResolver = authorizer.groups
    else:
        unresolvable = [member for member in settings.scheduler_admins if member.startswith(GROUP_PREFIX)]
        if unresolvable:
            raise ValueError(
                f"STYX_SCHEDULER_ADMINS names groups ({', '.join(unresolvable)}) but nothing resolves group "
                "membership: set STYX_AUTHORIZATION_ROLE (Google's Admin Directory) or "
                "STYX_AUTHORIZATION_POLICY_FILE (its groups), or list the members themselves"
            )
        groups = NoGroups()
    return SchedulerAdministrators(settings.scheduler_admins, groups, clock, settings.authorization_message)
