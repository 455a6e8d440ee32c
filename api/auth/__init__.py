"""Authentication and service-account authorization chosen from settings (docs/auth.md).

Authentication (`STYX_AUTH`): `google` verifies Google ID tokens; `none` makes every caller anonymous;
`auto` (the default) is `none` when the service listens on a loopback address only, `google` otherwise.

Authorization: Google IAM when `STYX_AUTHORIZATION_ROLE` is set, a static policy file when
`STYX_AUTHORIZATION_POLICY_FILE` is set, else everything is allowed. With authentication on, the global
config and resources are changed by scheduler administrators only (`STYX_SCHEDULER_ADMINS`, admins.py; the
app builds them, api/deps.py), whose settings are checked here at start-up too.
"""

from __future__ import annotations

import ipaddress
import logging

import httpx

from api.auth.admins import scheduler_administrators
from api.auth.gcp import CLOUD_PLATFORM_SCOPE, GoogleCloudApis, GoogleRestClient, credentialed_client
from api.auth.google import GoogleAuthenticator, GoogleCertificates
from api.auth.groups import DIRECTORY_GROUP_MEMBER_SCOPE, DirectoryGroupResolver
from api.auth.iam import IamAuthorizer
from api.auth.policy_file import PolicyFileAuthorizer, load_policy
from api.auth.usage import UsageRules
from api.security import AllowAll, Authenticator, Authorizer, NoAuthentication
from styx_actors.clock import Clock, SystemClock
from styx_actors.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["build_security"]


def build_security(settings: Settings, clock: Clock | None = None) -> tuple[Authenticator, Authorizer]:
    """Raises ValueError for a contradictory configuration, at start-up rather than on the first request."""
    clock = clock or SystemClock()
    authenticator = _authenticator(settings, clock)
    authorizer = _authorizer(settings, clock)
    if isinstance(authenticator, NoAuthentication) and not isinstance(authorizer, AllowAll):
        raise ValueError(
            "Service-account authorization needs authenticated callers: set STYX_AUTH=google "
            f"(authentication is off with STYX_AUTH={settings.auth} on host {settings.host})"
        )
    if not isinstance(authenticator, NoAuthentication):
        scheduler_administrators(settings, authorizer, clock)  # refuses bad STYX_SCHEDULER_ADMINS now, not later
        if not settings.scheduler_admins:
            log.warning("STYX_SCHEDULER_ADMINS is empty: no one may change the global config or resources")
    return authenticator, authorizer


def google_authentication_enabled(settings: Settings) -> bool:
    if settings.auth == "auto":
        return not _is_loopback(settings.host)
    return settings.auth == "google"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def _google_apis(settings: Settings) -> GoogleCloudApis:
    http = credentialed_client([CLOUD_PLATFORM_SCOPE], settings.google_api_timeout)
    rest = GoogleRestClient(http, settings.google_api_retry_deadline)
    return GoogleCloudApis(rest, settings.iam_base_url, settings.crm_base_url)


def _authenticator(settings: Settings, clock: Clock) -> Authenticator:
    if not google_authentication_enabled(settings):
        return NoAuthentication()
    if not settings.auth_domain_whitelist and not settings.auth_resource_whitelist:
        log.warning("Google authentication is on but no domain or resource is whitelisted: every token is rejected")
    certs_http = httpx.AsyncClient(timeout=settings.google_api_timeout.total_seconds())
    return GoogleAuthenticator(
        GoogleCertificates(certs_http, settings.auth_certs_url, clock),
        _google_apis(settings),
        clock,
        domain_whitelist=settings.auth_domain_whitelist,
        resource_whitelist=[(resource.type, resource.id) for resource in settings.auth_resource_whitelist],
        allowed_audiences=settings.auth_allowed_audiences,
    )


def _authorizer(settings: Settings, clock: Clock) -> Authorizer:
    if settings.authorization_role and settings.authorization_policy_file:
        raise ValueError("Set either STYX_AUTHORIZATION_ROLE (Google IAM) or STYX_AUTHORIZATION_POLICY_FILE, not both")
    if settings.authorization_role:
        if settings.authorization_gsuite_user is None:
            log.warning("STYX_AUTHORIZATION_GSUITE_USER is not set: group lookups use the service's own credentials")
        directory_http = credentialed_client(
            [DIRECTORY_GROUP_MEMBER_SCOPE], settings.google_api_timeout, subject=settings.authorization_gsuite_user
        )
        groups = DirectoryGroupResolver(
            GoogleRestClient(directory_http, settings.google_api_retry_deadline), settings.directory_base_url
        )
        rules = UsageRules.from_settings(settings, settings.authorization_role)
        return IamAuthorizer(_google_apis(settings), rules, groups, clock)
    if settings.authorization_policy_file:
        policy = load_policy(settings.authorization_policy_file)
        return PolicyFileAuthorizer(policy, UsageRules.from_settings(settings, policy.role), clock)
    log.info("Service-account authorization is not configured: every principal may use every service account")
    return AllowAll()
