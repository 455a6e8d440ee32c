"""A user's token counts only when Google verified its email (`email_verified: true`); service accounts'
tokens are accepted as Styx accepts them (docs/auth.md, "Google ID tokens")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.auth.gcp import GoogleCloudApis
from api.auth.google import GoogleAuthenticator, GoogleCertificates
from api.security import Principal, Unauthorized
from styx_actors.clock import ManualClock
from tests.auth.conftest import CERTS_PATH, FakeGoogle, SigningKey, id_token_claims

USER = "alice@example.com"
SERVICE_ACCOUNT = "deployer@team-project.iam.gserviceaccount.com"


@pytest.fixture
def authenticator(
    fake_google: FakeGoogle, http: httpx.AsyncClient, google_apis: GoogleCloudApis, clock: ManualClock
) -> GoogleAuthenticator:
    certificates = GoogleCertificates(http, fake_google.base_url + CERTS_PATH, clock)
    return GoogleAuthenticator(
        certificates,
        google_apis,
        clock,
        domain_whitelist=["example.com"],
        resource_whitelist=[("project", "team-project")],
    )


async def authenticate(authenticator: GoogleAuthenticator, key: SigningKey, **claims: Any) -> Principal | None:
    email = claims.pop("email")
    return await authenticator.authenticate(f"Bearer {key.sign(id_token_claims(email, **claims))}")


@pytest.mark.parametrize("verified", [True, "true"])  # older tokens carried the string
async def test_a_verified_user_of_a_whitelisted_domain_is_accepted(
    authenticator: GoogleAuthenticator, google_key: SigningKey, verified: object
) -> None:
    assert await authenticate(authenticator, google_key, email=USER, email_verified=verified) == Principal(USER)


@pytest.mark.parametrize("verified", [False, "false", None, 1, "True "])  # None: the claim is absent
async def test_an_unverified_user_of_a_whitelisted_domain_is_rejected(
    authenticator: GoogleAuthenticator, google_key: SigningKey, verified: object
) -> None:
    with pytest.raises(Unauthorized, match="^Authorization token is invalid$"):
        await authenticate(authenticator, google_key, email=USER, email_verified=verified)


@pytest.mark.parametrize("verified", [True, False, None])
async def test_service_accounts_are_accepted_as_styx_accepts_them(
    authenticator: GoogleAuthenticator, google_key: SigningKey, verified: object
) -> None:
    principal = await authenticate(authenticator, google_key, email=SERVICE_ACCOUNT, email_verified=verified)
    assert principal == Principal(SERVICE_ACCOUNT)
