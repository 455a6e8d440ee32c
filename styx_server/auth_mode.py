"""Which authentication and authorization the service runs with (docs/auth.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from api.security import AllowAll, Authenticator, Authorizer, NoAuthentication
from styx_actors.settings import Settings
from styx_server.startup import ServiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthChoice:
    authenticator: Authenticator
    authorizer: Authorizer
    enabled: bool  # changes (non-GET requests) need an authenticated caller


OPEN_ACCESS = AuthChoice(NoAuthentication(), AllowAll(), enabled=False)


def choose_auth(settings: Settings) -> AuthChoice:
    """Authentication and authorization as configured (api/auth, docs/auth.md): with STYX_AUTH=auto, Google
    ID tokens are required unless the service listens on a loopback address only, so a service reachable
    from other machines is never open by accident. The mode is logged loudly either way."""
    try:  # imported here: the Google libraries are only needed once a service starts
        from api.auth import build_security, google_authentication_enabled
    except ImportError as exc:
        raise ServiceError(f"The authentication modules (api.auth) cannot be imported: {exc}") from exc
    try:
        authenticator, authorizer = build_security(settings)
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc
    enabled = google_authentication_enabled(settings)
    if enabled:
        log.warning("AUTHENTICATION ON (Google ID tokens): changes need `Authorization: Bearer <token>`")
    else:
        log.warning(
            "AUTHENTICATION OFF (STYX_AUTH=%s): anyone who can reach %s:%d can change workflows, resources and "
            "backfills. Set STYX_AUTH=google to require Google ID tokens.",
            settings.auth,
            settings.host,
            settings.port,
        )
    return AuthChoice(authenticator, authorizer, enabled)
