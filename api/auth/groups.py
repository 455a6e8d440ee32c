"""Is a principal one of a list of IAM members, directly or through a group (docs/auth.md#service-account-usage-iam)?

Members are IAM member strings: `user:<email>`, `serviceAccount:<email>`, `group:<email>`. Group membership
comes from a `GroupResolver`: the Admin Directory API (what Styx uses) or a static table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import quote

from api.auth.gcp import GoogleApiError, GoogleRestClient, is_service_account

log = logging.getLogger(__name__)

MEMBER_PREFIXES = ("user:", "serviceAccount:", "group:")
GROUP_PREFIX = "group:"
DIRECTORY_GROUP_MEMBER_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"


def member_entry(email: str) -> str:
    """How `email` appears in an IAM policy."""
    return f"serviceAccount:{email}" if is_service_account(email) else f"user:{email}"


def validate_members(members: Iterable[str]) -> list[str]:
    """Configuration check: every entry must be a typed IAM member."""
    members = list(members)
    for member in members:
        if not member.startswith(MEMBER_PREFIXES) or member.endswith(":"):
            raise ValueError(f"{member!r} is not an IAM member (user:, serviceAccount: or group: followed by an email)")
    return members


class GroupResolver(Protocol):
    async def is_member(self, group: str, email: str) -> bool: ...


class StaticGroupResolver:
    """Groups listed in configuration: group email -> member emails (no nesting)."""

    def __init__(self, groups: Mapping[str, Iterable[str]]) -> None:
        self._groups = {group: frozenset(members) for group, members in groups.items()}

    async def is_member(self, group: str, email: str) -> bool:
        return email in self._groups.get(group, frozenset())


class DirectoryGroupResolver:
    """Admin Directory `members.hasMember` (transitive membership), as Styx's authorizer does."""

    def __init__(self, rest: GoogleRestClient, directory_base_url: str) -> None:
        self._rest = rest
        self._base = directory_base_url.rstrip("/")

    async def is_member(self, group: str, email: str) -> bool:
        url = f"{self._base}/admin/directory/v1/groups/{quote(group, safe='@')}/hasMember/{quote(email, safe='@')}"
        try:
            answer = await self._rest.get(url)
        except GoogleApiError as error:
            # 404: no such group; 400: the principal does not exist or is outside the group's domain.
            if error.status in (400, 404):
                log.info("Group %s has no member %s: %s", group, email, error.message)
                return False
            raise
        return answer.get("isMember") is True


async def membership(email: str, members: Iterable[str], groups: GroupResolver) -> str | None:
    """`directly`, `via group <g>`, or None when `email` is not among `members`."""
    members = list(members)
    if member_entry(email) in members:
        return "directly"
    for member in members:
        if member.startswith(GROUP_PREFIX):
            group = member[len(GROUP_PREFIX) :]
            if await groups.is_member(group, email):
                return f"via group {group}"
    return None
