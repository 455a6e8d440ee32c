"""build_security: which authenticator and authorizer the settings choose, and refused contradictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.auth import build_security
from api.auth.google import GoogleAuthenticator
from api.auth.iam import IamAuthorizer
from api.auth.policy_file import PolicyFileAuthorizer, PolicyFileError
from api.security import AllowAll, NoAuthentication, Principal
from styx_actors.clock import ManualClock
from styx_actors.settings import Settings
from tests.auth.conftest import CERTS_PATH, FakeGoogle, SigningKey, id_token_claims


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


def test_embedded_defaults_have_no_authentication_and_allow_all() -> None:
    authenticator, authorizer = build_security(settings())
    assert isinstance(authenticator, NoAuthentication)
    assert isinstance(authorizer, AllowAll)


@pytest.mark.parametrize(
    ("host", "google"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("0.0.0.0", True),
        ("10.1.2.3", True),
        ("styx.internal", True),
    ],
)
def test_auto_authenticates_unless_only_loopback_listens(host: str, google: bool) -> None:
    authenticator, _ = build_security(settings(host=host, auth="auto"))
    assert isinstance(authenticator, GoogleAuthenticator) is google


def test_explicit_modes_override_the_host() -> None:
    assert isinstance(build_security(settings(host="127.0.0.1", auth="google"))[0], GoogleAuthenticator)
    assert isinstance(build_security(settings(host="0.0.0.0", auth="none"))[0], NoAuthentication)


def test_authorization_role_chooses_iam_with_the_enforcement_settings() -> None:
    _, authorizer = build_security(
        settings(
            auth="google",
            authorization_role="roles/iam.serviceAccountUser",
            authorization_require_workflows=["c#w"],
            authorization_admins=["group:admins@example.com"],
        )
    )
    assert isinstance(authorizer, IamAuthorizer)
    assert authorizer.rules.enforces("c#w") and not authorizer.rules.enforces("c#other")
    assert authorizer.rules.administrators == ("group:admins@example.com",)


def test_policy_file_chooses_the_file_authorizer_and_its_role(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("role: roles/styx.runAs\n")
    _, authorizer = build_security(
        settings(auth="google", authorization_policy_file=path, authorization_require_all=True)
    )
    assert isinstance(authorizer, PolicyFileAuthorizer)
    assert authorizer.rules.role == "roles/styx.runAs" and authorizer.rules.enforces("any#workflow")


def test_both_authorization_sources_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("{}")
    with pytest.raises(ValueError, match="not both"):
        build_security(settings(auth="google", authorization_role="r", authorization_policy_file=path))


def test_authorization_without_authentication_is_refused() -> None:
    with pytest.raises(ValueError, match="STYX_AUTH=google"):
        build_security(settings(host="127.0.0.1", authorization_role="roles/iam.serviceAccountUser"))


def test_bad_policy_file_and_bad_member_entries_fail_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError):
        build_security(settings(auth="google", authorization_policy_file=tmp_path / "absent.yaml"))
    with pytest.raises(ValueError, match="is not an IAM member"):
        build_security(settings(auth="google", authorization_role="r", authorization_blocklist=["bob@example.com"]))


async def test_environment_configures_a_working_authenticator(
    monkeypatch: pytest.MonkeyPatch, fake_google: FakeGoogle, google_key: SigningKey, clock: ManualClock
) -> None:
    monkeypatch.setenv("STYX_AUTH", "google")
    monkeypatch.setenv("STYX_AUTH_CERTS_URL", fake_google.base_url + CERTS_PATH)
    monkeypatch.setenv("STYX_AUTH_DOMAIN_WHITELIST", '["example.com"]')
    monkeypatch.setenv("STYX_AUTH_RESOURCE_WHITELIST", '[{"type": "folder", "id": "42"}]')
    authenticator, _ = build_security(Settings(), clock)

    token = google_key.sign(id_token_claims("alice@example.com"))
    assert await authenticator.authenticate(f"Bearer {token}") == Principal("alice@example.com")
    assert fake_google.count(CERTS_PATH) == 1
