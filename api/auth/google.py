"""Authentication with Google ID tokens (docs/auth.md#google-id-tokens, Styx's Authenticator and RequestAuthenticator).

`Authorization: Bearer <id token>`. The token's signature (Google's published certificates), expiry and
issuer are verified with google-auth; then the caller is accepted when its email's domain is whitelisted, or
when it is a service account whose project is whitelisted, directly or through an ancestor folder or
organization (Cloud Resource Manager ancestry).

A user (any email but a service account's) must also carry `email_verified: true`: a Google account can
name an address its holder never proved to own, e.g. one of a whitelisted domain, and only this claim tells
such an account from the domain's own. Service-account addresses are issued by Google, so their tokens are
accepted as Styx accepts them, without the claim.

One deliberate difference from Styx: the allowed-audiences check applies to every service-account token,
also when its email was validated before; Styx consulted its validated-email cache first, so once an account
had been accepted a token minted for any audience passed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import google.auth.exceptions
import httpx
from google.auth import jwt

from api.auth.cache import TtlCache
from api.auth.gcp import GoogleApiError, GoogleCloudApis, is_service_account, project_in_email
from api.security import Principal, Unauthorized
from styx_actors.clock import Clock
from styx_actors.errors import BadRequest, Unavailable

log = logging.getLogger(__name__)

BEARER_PREFIX = "Bearer "
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Google's Java GoogleIdTokenVerifier, which Styx uses, accepts 5 minutes of clock skew.
CLOCK_SKEW = timedelta(minutes=5)

VALIDATED_EMAILS_SIZE = 1000  # Styx's validated-email cache
# Projects and folders can move; Styx never forgot what it learnt, here it is relearnt hourly.
VALIDATED_TTL = timedelta(hours=1)
DERIVED_RESOURCES_SIZE = 10_000
# Without a memory of rejected projects every request of a stranger would cost an ancestry call.
REJECTED_PROJECTS_TTL = timedelta(minutes=5)
REJECTED_PROJECTS_SIZE = 10_000

# Certificates without Cache-Control are kept this long; an unknown key id refetches them, at most this often.
DEFAULT_CERTS_MAX_AGE = timedelta(hours=1)
MIN_CERTS_REFRESH_INTERVAL = timedelta(minutes=1)
MAX_AGE = re.compile(r"max-age=(\d+)")

ResourceKey = tuple[str, str]  # (organization|folder|project, id)


def _invalid() -> Unauthorized:
    return Unauthorized("Authorization token is invalid")


class GoogleCertificates:
    """Google's signing certificates in the v1 format `{key id: PEM X.509 certificate}`, fetched over
    HTTP without blocking the event loop and cached for the answer's `Cache-Control: max-age`."""

    def __init__(self, http: httpx.AsyncClient, url: str, clock: Clock) -> None:
        self._http = http
        self._url = url
        self._clock = clock
        self._certs: dict[str, str] = {}
        self._fetched_at: datetime | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def for_key(self, key_id: str | None) -> Mapping[str, str]:
        """The certificates to verify a token signed with `key_id` (refetched when stale or when the key is
        new: Google rotates its keys daily)."""
        async with self._lock:  # one fetch at a time; the others then find fresh certificates
            if self._needs_refresh(key_id):
                await self._refresh()
            return self._certs

    def _needs_refresh(self, key_id: str | None) -> bool:
        now = self._clock.now()
        if self._fetched_at is None or self._expires_at is None or now >= self._expires_at:
            return True
        unknown_key = key_id is not None and key_id not in self._certs
        return unknown_key and now - self._fetched_at >= MIN_CERTS_REFRESH_INTERVAL

    async def _refresh(self) -> None:
        try:
            response = await self._http.get(self._url)
            response.raise_for_status()
            certs = response.json()
            if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
                raise ValueError("not a {key id: PEM certificate} object")
        except (httpx.HTTPError, ValueError) as error:
            if self._certs:
                log.warning(
                    "Cannot refresh Google certificates from %s, keeping the previous ones: %r", self._url, error
                )
                return
            raise Unavailable(f"Cannot fetch Google certificates: {error}") from error
        now = self._clock.now()
        match = MAX_AGE.search(response.headers.get("cache-control", ""))
        max_age = timedelta(seconds=int(match.group(1))) if match else DEFAULT_CERTS_MAX_AGE
        self._certs, self._fetched_at, self._expires_at = certs, now, now + max_age
        log.info("Fetched %d Google certificates from %s", len(certs), self._url)


def _parsed_header(token: str) -> Mapping[str, Any]:
    """The JWT header, once header and claims are known to be JSON objects; BadRequest for anything else."""
    try:
        jwt.decode(token, verify=False)
        return jwt.decode_header(token)
    except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
        log.debug("Unparsable token: %r", error)
        raise BadRequest("Failed to parse Authorization token") from error


def _email_verified(claims: Mapping[str, Any]) -> bool:
    """Google's `email_verified` claim; older tokens carried it as the string "true"."""
    verified = claims.get("email_verified")
    return verified is True or verified == "true"


class GoogleAuthenticator:
    def __init__(
        self,
        certificates: GoogleCertificates,
        apis: GoogleCloudApis,
        clock: Clock,
        *,
        domain_whitelist: Iterable[str] = (),
        resource_whitelist: Iterable[ResourceKey] = (),
        allowed_audiences: Iterable[str] = (),
    ) -> None:
        self._certificates = certificates
        self._apis = apis
        self._domain_whitelist = frozenset(domain_whitelist)
        self._resource_whitelist = frozenset(resource_whitelist)
        self._allowed_audiences = frozenset(allowed_audiences)
        self._validated_emails: TtlCache[str, str] = TtlCache(VALIDATED_EMAILS_SIZE, VALIDATED_TTL, clock)
        # Projects and folders found below a whitelisted folder or organization.
        self._derived_resources: TtlCache[ResourceKey, bool] = TtlCache(DERIVED_RESOURCES_SIZE, VALIDATED_TTL, clock)
        self._rejected_projects: TtlCache[str, bool] = TtlCache(REJECTED_PROJECTS_SIZE, REJECTED_PROJECTS_TTL, clock)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        if authorization is None:
            return None
        if not authorization.startswith(BEARER_PREFIX):
            raise BadRequest("Authorization token must be of type Bearer")
        token = authorization[len(BEARER_PREFIX) :].strip()
        claims = await self._verify(token, _parsed_header(token))
        email = await self._accept(claims)
        return Principal(email=email)

    async def _verify(self, token: str, header: Mapping[str, Any]) -> Mapping[str, Any]:
        """Signature, expiry and issuer; no audience here (docs/auth.md#google-id-tokens)."""
        key_id = header.get("kid")
        certs = await self._certificates.for_key(key_id if isinstance(key_id, str) else None)
        try:
            claims = jwt.decode(token, certs=certs, verify=True, clock_skew_in_seconds=int(CLOCK_SKEW.total_seconds()))
        except (ValueError, TypeError, google.auth.exceptions.GoogleAuthError) as error:
            log.info("Rejected token: %s", error)
            raise _invalid() from error
        if claims.get("iss") not in GOOGLE_ISSUERS:
            log.info("Rejected token of issuer %r", claims.get("iss"))
            raise _invalid()
        return claims

    async def _accept(self, claims: Mapping[str, Any]) -> str:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            log.info("Rejected token without an email")
            raise _invalid()
        if email.split("@", 1)[1] in self._domain_whitelist:
            if not is_service_account(email) and not _email_verified(claims):
                log.info("Rejected %s: Google has not verified that the account owns this address", email)
                raise _invalid()
            return email
        if not is_service_account(email):
            log.info("Rejected %s: neither in a whitelisted domain nor a service account", email)
            raise _invalid()
        if not self._audience_allowed(claims.get("aud")):
            log.info("Rejected %s: audience %r not allowed", email, claims.get("aud"))
            raise _invalid()
        if email in self._validated_emails:
            return email
        project = project_in_email(email) or await self._looked_up_project(email)
        if project is None or not await self._project_whitelisted(project):
            log.info("Rejected %s: project %s is not whitelisted", email, project)
            raise _invalid()
        self._validated_emails.put(email, project)
        return email

    def _audience_allowed(self, audience: object) -> bool:
        if not self._allowed_audiences or audience is None:
            return True
        audiences = audience if isinstance(audience, list) else [audience]
        return any(isinstance(a, str) and a in self._allowed_audiences for a in audiences)

    async def _looked_up_project(self, email: str) -> str | None:
        """The project of a Google-managed service account (e.g. Compute Engine's default one)."""
        try:
            return await self._apis.service_account_project(email)
        except GoogleApiError as error:
            if error.status in (400, 403, 404):
                log.info("Cannot find the project of service account %s: %s", email, error.message)
                return None
            raise Unavailable(f"Authentication is unavailable: {error.message}") from error

    def _whitelisted(self, resource: ResourceKey) -> bool:
        return resource in self._resource_whitelist or resource in self._derived_resources

    async def _project_whitelisted(self, project: str) -> bool:
        if self._whitelisted(("project", project)):
            return True
        if project in self._rejected_projects:
            return False
        try:
            ancestry = await self._apis.project_ancestry(project)
        except GoogleApiError as error:
            if error.status not in (400, 403, 404):
                raise Unavailable(f"Authentication is unavailable: {error.message}") from error
            log.info("Cannot read the ancestry of project %s: %s", project, error.message)
            ancestry = []
        for index, ancestor in enumerate(ancestry):
            if self._whitelisted((ancestor.type, ancestor.id)):
                for descendant in ancestry[:index]:
                    self._derived_resources.put((descendant.type, descendant.id), True)
                return True
        self._rejected_projects.put(project, True)
        return False
