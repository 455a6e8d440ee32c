"""Authentication from the CLI's side: no credentials, a service-account key file, rejected tokens, and the
headers every request carries.

Google is played by a local HTTP server: the key file's `token_uri` points at it, so google-auth's real
token exchange runs (a JWT signed with the file's key, answered by an ID token for the requested audience)
without leaving the machine. The API service runs with authentication on, with an authenticator that
accepts the fake Google's tokens for one email.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.security import AllowAll, Principal, Unauthorized
from styx_actors.cli.errors import ExitStatus
from styx_actors.cli.version import VERSION
from styx_server.auth_mode import AuthChoice
from tests.cli.conftest import REQUEST_ID_SUFFIX, Styx, serve

ACCEPTED_EMAIL = "deployer@project.iam.gserviceaccount.com"
REJECTED_EMAIL = "stranger@project.iam.gserviceaccount.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class FakeGoogle:
    """A token endpoint (POST /token) that mints unsigned ID tokens, and a catch-all that records the
    headers of every other request and answers like GET /api/v3/resources."""

    url: str = ""
    fail_token_requests: bool = False
    recorded_headers: list[dict[str, str]] = field(default_factory=list)

    def id_token(self, assertion: str) -> str:
        claims = _claims(assertion)  # what google-auth signed with the key file's private key
        payload = {
            "aud": claims["target_audience"],
            "email": claims["iss"],
            "exp": int(time.time()) + 3600,
            "iat": int(time.time()),
        }
        return ".".join((_b64(b'{"alg":"RS256","typ":"JWT"}'), _b64(json.dumps(payload).encode()), _b64(b"unsigned")))


def _handler(google: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            if google.fail_token_requests:
                self._answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            else:
                self._answer(200, {"id_token": google.id_token(form["assertion"][0])})

        def do_GET(self) -> None:
            google.recorded_headers.append(dict(self.headers.items()))
            self._answer(200, {"resources": []})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def fake_google() -> Iterator[FakeGoogle]:
    google = FakeGoogle()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(google))
    google.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield google
    server.shutdown()
    thread.join()


class FakeGoogleTokens:
    """Accepts the fake Google's ID tokens issued to ACCEPTED_EMAIL; remembers each token's audience."""

    def __init__(self) -> None:
        self.audiences: list[str] = []

    async def authenticate(self, authorization: str | None) -> Principal | None:
        if authorization is None:
            return None
        claims = _claims(authorization.removeprefix("Bearer "))
        self.audiences.append(claims["aud"])
        if claims["email"] != ACCEPTED_EMAIL:
            raise Unauthorized("Authorization token is invalid")
        return Principal(email=claims["email"])


@pytest.fixture(scope="module")
def tokens() -> FakeGoogleTokens:
    return FakeGoogleTokens()


@pytest.fixture(scope="module")
def styx(tmp_path_factory: pytest.TempPathFactory, cli_home: Path, tokens: FakeGoogleTokens) -> Iterator[Styx]:
    """The service with authentication on: changes need an accepted token (resources: an administrator's)."""
    auth = AuthChoice(tokens, AllowAll(), enabled=True)
    administrators = [f"serviceAccount:{ACCEPTED_EMAIL}"]
    with serve(tmp_path_factory.mktemp("service"), auth=auth, scheduler_admins=administrators) as url:
        yield Styx(url, cli_home)


def key_file(directory: Path, email: str, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = directory / f"{email.split('@')[0]}.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "project",
                "private_key_id": "key-1",
                "private_key": pem.decode(),
                "client_email": email,
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


def test_changes_without_credentials_exit_with_status_5_and_say_how_to_log_in(styx: Styx) -> None:
    result = styx("resource", "create", "r", "1")
    assert result.code == ExitStatus.AUTH_ERROR
    first, *hint = result.stderr.splitlines()
    assert re.fullmatch(rf"API error: 401 Unauthorized access {REQUEST_ID_SUFFIX}", first)
    assert "    gcloud auth application-default login" in hint
    assert styx.ok("resource", "ls", "--json").json() == []  # reading needs no credentials


def test_a_service_account_key_gives_an_id_token_for_the_host(
    styx: Styx, fake_google: FakeGoogle, tokens: FakeGoogleTokens, tmp_path: Path
) -> None:
    credentials = key_file(tmp_path, ACCEPTED_EMAIL, f"{fake_google.url}/token")
    result = styx("resource", "create", "r", "1", "--json", env={"GOOGLE_APPLICATION_CREDENTIALS": str(credentials)})
    assert (result.code, result.json()) == (0, [{"id": "r", "concurrency": 1}]), result.stderr
    assert tokens.audiences[-1] == styx.host


def test_a_rejected_token_exits_with_status_5_without_the_login_hint(
    styx: Styx, fake_google: FakeGoogle, tmp_path: Path
) -> None:
    credentials = key_file(tmp_path, REJECTED_EMAIL, f"{fake_google.url}/token")
    result = styx("resource", "create", "r", "2", env={"GOOGLE_APPLICATION_CREDENTIALS": str(credentials)})
    assert result.code == ExitStatus.AUTH_ERROR
    assert re.fullmatch(rf"API error: 401 Authorization token is invalid {REQUEST_ID_SUFFIX}", result.stderr.strip())


def test_a_failing_token_exchange_is_a_client_error(styx: Styx, fake_google: FakeGoogle, tmp_path: Path) -> None:
    credentials = key_file(tmp_path, ACCEPTED_EMAIL, f"{fake_google.url}/token")
    fake_google.fail_token_requests = True
    try:
        result = styx("resource", "ls", env={"GOOGLE_APPLICATION_CREDENTIALS": str(credentials)})
    finally:
        fake_google.fail_token_requests = False
    assert result.code == ExitStatus.CLIENT_ERROR
    assert result.stderr.startswith("Client error: could not get a Google ID token: ")
    assert "invalid_grant" in result.stderr


def test_a_missing_key_file_means_no_header(styx: Styx, tmp_path: Path) -> None:
    result = styx("resource", "create", "r", "3", env={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "absent.json")})
    assert result.code == ExitStatus.AUTH_ERROR
    assert "gcloud auth application-default login" in result.stderr


def test_every_request_carries_styx_headers(styx: Styx, fake_google: FakeGoogle, tmp_path: Path) -> None:
    credentials = key_file(tmp_path, ACCEPTED_EMAIL, f"{fake_google.url}/token")
    fake_google.recorded_headers.clear()
    for _ in range(2):
        result = styx("resource", "ls", "-H", fake_google.url, env={"GOOGLE_APPLICATION_CREDENTIALS": str(credentials)})
        assert result.code == 0, result.stderr
    first, second = (
        {name.lower(): value for name, value in headers.items()} for headers in fake_google.recorded_headers
    )
    assert first["user-agent"] == f"Styx Client {VERSION}"
    assert re.fullmatch(r"[0-9a-f]{32}", first["x-styx-request-id"])
    assert first["x-styx-request-id"] != second["x-styx-request-id"]
    assert _claims(first["authorization"].removeprefix("Bearer "))["aud"] == fake_google.url

    fake_google.recorded_headers.clear()
    styx.ok("resource", "ls", "-H", fake_google.url)
    assert "authorization" not in {name.lower() for name in fake_google.recorded_headers[0]}
