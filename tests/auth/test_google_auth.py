"""GoogleAuthenticator against a fake Google on 127.0.0.1, with tokens signed by real RSA keys
(docs/auth.md#google-id-tokens)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.auth.gcp import GoogleCloudApis
from api.auth.google import GoogleAuthenticator, GoogleCertificates
from api.security import Principal, Unauthorized
from styx_actors.clock import ManualClock
from styx_actors.errors import BadRequest, Unavailable
from tests.auth.conftest import CERTS_PATH, FakeGoogle, SigningKey, id_token_claims
from tests.conftest import free_port

USER = "alice@example.com"
SERVICE_ACCOUNT = "deployer@team-project.iam.gserviceaccount.com"
COMPUTE_ACCOUNT = "123456-compute@developer.gserviceaccount.com"

MakeAuthenticator = Callable[..., GoogleAuthenticator]


@pytest.fixture
def make_authenticator(
    fake_google: FakeGoogle, http: httpx.AsyncClient, google_apis: GoogleCloudApis, clock: ManualClock
) -> MakeAuthenticator:
    def make(**options: Any) -> GoogleAuthenticator:
        certificates = GoogleCertificates(http, fake_google.base_url + CERTS_PATH, clock)
        options.setdefault("domain_whitelist", ["example.com"])
        return GoogleAuthenticator(certificates, google_apis, clock, **options)

    return make


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def rejected(authenticator: GoogleAuthenticator, token: str) -> str:
    with pytest.raises(Unauthorized) as refusal:
        await authenticator.authenticate(bearer(token))
    return refusal.value.message


async def test_no_header_is_anonymous(make_authenticator: MakeAuthenticator) -> None:
    assert await make_authenticator().authenticate(None) is None


async def test_user_of_a_whitelisted_domain_is_accepted_without_any_cloud_call(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle
) -> None:
    principal = await make_authenticator().authenticate(bearer(google_key.sign(id_token_claims(USER))))

    assert principal == Principal(USER)
    assert fake_google.requests == [("GET", CERTS_PATH)]


async def test_user_outside_the_whitelisted_domains_is_rejected(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    message = await rejected(make_authenticator(), google_key.sign(id_token_claims("mallory@elsewhere.com")))
    assert message == "Authorization token is invalid"


async def test_service_account_of_a_whitelisted_project(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle
) -> None:
    authenticator = make_authenticator(resource_whitelist=[("project", "team-project")])

    principal = await authenticator.authenticate(bearer(google_key.sign(id_token_claims(SERVICE_ACCOUNT))))

    assert principal == Principal(SERVICE_ACCOUNT)
    assert fake_google.count(":getAncestry") == 0


async def test_service_account_of_a_project_in_a_whitelisted_folder(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle
) -> None:
    fake_google.ancestry["team-project"] = [("project", "team-project"), ("folder", "42"), ("organization", "7")]
    fake_google.ancestry["sibling"] = [("project", "sibling"), ("folder", "42"), ("organization", "7")]
    authenticator = make_authenticator(resource_whitelist=[("folder", "42")])

    assert await authenticator.authenticate(bearer(google_key.sign(id_token_claims(SERVICE_ACCOUNT)))) == Principal(
        SERVICE_ACCOUNT
    )
    assert fake_google.count("/v1/projects/team-project:getAncestry") == 1

    # Another account of the now known project needs no ancestry call; one of a sibling project does.
    other = "builder@team-project.iam.gserviceaccount.com"
    assert await authenticator.authenticate(bearer(google_key.sign(id_token_claims(other)))) == Principal(other)
    sibling = "runner@sibling.iam.gserviceaccount.com"
    assert await authenticator.authenticate(bearer(google_key.sign(id_token_claims(sibling)))) == Principal(sibling)
    assert fake_google.count(":getAncestry") == 2


async def test_service_account_of_a_project_outside_the_whitelist_is_rejected(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle, clock: ManualClock
) -> None:
    fake_google.ancestry["team-project"] = [("project", "team-project"), ("folder", "99"), ("organization", "7")]
    authenticator = make_authenticator(resource_whitelist=[("folder", "42")])
    token = google_key.sign(id_token_claims(SERVICE_ACCOUNT))

    assert await rejected(authenticator, token) == "Authorization token is invalid"
    # The rejection is remembered for a while, then the ancestry is asked again (projects move).
    await rejected(authenticator, token)
    assert fake_google.count(":getAncestry") == 1
    fake_google.ancestry["team-project"][1] = ("folder", "42")
    clock.advance(timedelta(minutes=5))
    assert await authenticator.authenticate(bearer(token)) == Principal(SERVICE_ACCOUNT)
    assert fake_google.count(":getAncestry") == 2


async def test_service_account_of_an_unreadable_project_is_rejected(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    # The fake answers 403 for projects it does not know, as Google does for projects one cannot see.
    authenticator = make_authenticator(resource_whitelist=[("organization", "7")])
    await rejected(authenticator, google_key.sign(id_token_claims(SERVICE_ACCOUNT)))


async def test_google_managed_service_account_project_is_looked_up_in_iam(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle
) -> None:
    fake_google.service_accounts[COMPUTE_ACCOUNT] = "team-project"
    authenticator = make_authenticator(resource_whitelist=[("project", "team-project")])

    principal = await authenticator.authenticate(bearer(google_key.sign(id_token_claims(COMPUTE_ACCOUNT))))

    assert principal == Principal(COMPUTE_ACCOUNT)
    assert fake_google.count(f"/v1/projects/-/serviceAccounts/{COMPUTE_ACCOUNT}") == 1


async def test_unknown_google_managed_service_account_is_rejected(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    authenticator = make_authenticator(resource_whitelist=[("project", "team-project")])
    await rejected(authenticator, google_key.sign(id_token_claims(COMPUTE_ACCOUNT)))


async def test_validated_service_account_is_cached(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle
) -> None:
    fake_google.service_accounts[COMPUTE_ACCOUNT] = "team-project"
    fake_google.ancestry["team-project"] = [("project", "team-project"), ("organization", "7")]
    authenticator = make_authenticator(resource_whitelist=[("organization", "7")])

    for _ in range(3):
        token = google_key.sign(id_token_claims(COMPUTE_ACCOUNT))
        assert await authenticator.authenticate(bearer(token)) == Principal(COMPUTE_ACCOUNT)

    assert fake_google.count(f"/v1/projects/-/serviceAccounts/{COMPUTE_ACCOUNT}") == 1
    assert fake_google.count(":getAncestry") == 1
    assert fake_google.count(CERTS_PATH) == 1


async def test_expired_token_is_rejected(make_authenticator: MakeAuthenticator, google_key: SigningKey) -> None:
    an_hour_ago = int(time.time()) - 3600
    claims = id_token_claims(USER, iat=an_hour_ago - 3600, exp=an_hour_ago)
    assert await rejected(make_authenticator(), google_key.sign(claims)) == "Authorization token is invalid"


async def test_token_of_another_issuer_is_rejected(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    claims = id_token_claims(USER, iss="https://evil.example.com")
    assert await rejected(make_authenticator(), google_key.sign(claims)) == "Authorization token is invalid"


async def test_both_google_issuer_spellings_are_accepted(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    authenticator = make_authenticator()
    for issuer in ("accounts.google.com", "https://accounts.google.com"):
        token = google_key.sign(id_token_claims(USER, iss=issuer))
        assert await authenticator.authenticate(bearer(token)) == Principal(USER)


async def test_token_signed_by_another_key_is_rejected(
    make_authenticator: MakeAuthenticator, other_key: SigningKey, google_key: SigningKey
) -> None:
    assert other_key.kid == google_key.kid  # a forgery claiming Google's key
    assert await rejected(make_authenticator(), other_key.sign(id_token_claims(USER))) == (
        "Authorization token is invalid"
    )


async def test_token_with_an_unknown_key_id_is_rejected(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    token = google_key.sign(id_token_claims(USER), kid="retired-key")
    assert await rejected(make_authenticator(), token) == "Authorization token is invalid"


async def test_new_key_is_fetched_when_a_token_names_it(
    make_authenticator: MakeAuthenticator,
    google_key: SigningKey,
    other_key: SigningKey,
    fake_google: FakeGoogle,
    clock: ManualClock,
) -> None:
    authenticator = make_authenticator()
    await authenticator.authenticate(bearer(google_key.sign(id_token_claims(USER))))
    # Google rotates its keys: the new one is published, and tokens signed with it start to arrive.
    fake_google.certs["google-key-2"] = other_key.cert_pem
    rotated = other_key.sign(id_token_claims(USER), kid="google-key-2")

    # Refetches for unknown keys are rate limited, so a stream of bogus key ids cannot hammer Google.
    await rejected(authenticator, rotated)
    assert fake_google.count(CERTS_PATH) == 1
    clock.advance(timedelta(minutes=1))
    assert await authenticator.authenticate(bearer(rotated)) == Principal(USER)
    assert fake_google.count(CERTS_PATH) == 2


async def test_certificates_are_refetched_after_their_max_age(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle, clock: ManualClock
) -> None:
    authenticator = make_authenticator()
    for _ in range(2):
        await authenticator.authenticate(bearer(google_key.sign(id_token_claims(USER))))
    assert fake_google.count(CERTS_PATH) == 1
    clock.advance(timedelta(seconds=3600))
    await authenticator.authenticate(bearer(google_key.sign(id_token_claims(USER))))
    assert fake_google.count(CERTS_PATH) == 2


async def test_audience_is_checked_for_service_accounts_when_configured(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    authenticator = make_authenticator(
        resource_whitelist=[("project", "team-project")], allowed_audiences=["styx", "https://styx.example.com"]
    )
    accepted = google_key.sign(id_token_claims(SERVICE_ACCOUNT, aud="https://styx.example.com"))
    assert await authenticator.authenticate(bearer(accepted)) == Principal(SERVICE_ACCOUNT)
    # Also after the account was validated and cached.
    wrong_audience = google_key.sign(id_token_claims(SERVICE_ACCOUNT, aud="https://other.example.com"))
    assert await rejected(authenticator, wrong_audience) == "Authorization token is invalid"
    # Whitelisted domains are not subject to it (docs/auth.md#google-id-tokens).
    user_token = google_key.sign(id_token_claims(USER, aud="https://other.example.com"))
    assert await authenticator.authenticate(bearer(user_token)) == Principal(USER)


async def test_any_audience_passes_when_none_is_configured(
    make_authenticator: MakeAuthenticator, google_key: SigningKey
) -> None:
    authenticator = make_authenticator(resource_whitelist=[("project", "team-project")])
    token = google_key.sign(id_token_claims(SERVICE_ACCOUNT, aud="https://other.example.com"))
    assert await authenticator.authenticate(bearer(token)) == Principal(SERVICE_ACCOUNT)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "bearer abc.def.ghi", "", "Token x"])
async def test_header_that_is_not_bearer_is_a_bad_request(make_authenticator: MakeAuthenticator, header: str) -> None:
    with pytest.raises(BadRequest) as refusal:
        await make_authenticator().authenticate(header)
    assert refusal.value.message == "Authorization token must be of type Bearer"
    assert refusal.value.status_code == 400


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "e30.e30", "W10.W10.c2ln", "eyJhbGciOiJSUzI1NiJ9.!!!.x"])
async def test_unparsable_token_is_a_bad_request(make_authenticator: MakeAuthenticator, token: str) -> None:
    with pytest.raises(BadRequest) as refusal:
        await make_authenticator().authenticate(bearer(token))
    assert refusal.value.message == "Failed to parse Authorization token"


async def test_token_without_email_is_rejected(make_authenticator: MakeAuthenticator, google_key: SigningKey) -> None:
    assert await rejected(make_authenticator(), google_key.sign(id_token_claims(None))) == (
        "Authorization token is invalid"
    )


async def test_cloud_outage_is_unavailable_not_a_rejection(
    make_authenticator: MakeAuthenticator, google_key: SigningKey, fake_google: FakeGoogle
) -> None:
    fake_google.fail(":getAncestry", 500)
    authenticator = make_authenticator(resource_whitelist=[("folder", "42")])

    with pytest.raises(Unavailable):
        await authenticator.authenticate(bearer(google_key.sign(id_token_claims(SERVICE_ACCOUNT))))


async def test_unreachable_certificates_endpoint_is_unavailable(
    http: httpx.AsyncClient, google_apis: GoogleCloudApis, google_key: SigningKey, clock: ManualClock
) -> None:
    nobody_listens = f"http://127.0.0.1:{free_port()}{CERTS_PATH}"
    certificates = GoogleCertificates(http, nobody_listens, clock)
    authenticator = GoogleAuthenticator(certificates, google_apis, clock, domain_whitelist=["example.com"])

    with pytest.raises(Unavailable):
        await authenticator.authenticate(bearer(google_key.sign(id_token_claims(USER))))
