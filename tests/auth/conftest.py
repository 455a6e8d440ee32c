"""A fake of the Google endpoints auth talks to, served over real HTTP on 127.0.0.1, and real RS256 tokens.

`FakeGoogle` speaks the wire formats of the OAuth2 v1 certificates endpoint, IAM v1 (service accounts and
their policies), Cloud Resource Manager v1 (project policies and ancestry) and the Admin Directory
`hasMember` method, and records every request so tests can count calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from api.auth.gcp import GoogleCloudApis, GoogleRestClient
from styx_actors.timeutil import UTC

CERTS_PATH = "/oauth2/v1/certs"
NO_RETRIES = timedelta(0)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    cert_pem: str

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=kid or self.kid)
        return jwt.encode(signer, claims).decode()


def make_signing_key(kid: str) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningKey(kid, private_pem, cert.public_bytes(serialization.Encoding.PEM).decode())


@pytest.fixture(scope="session")
def google_key() -> SigningKey:
    return make_signing_key("google-key-1")


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    """Not published by the fake Google: tokens signed with it are forgeries."""
    return make_signing_key("google-key-1")


def id_token_claims(email: str | None, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    # As Google issues them: users' and service accounts' tokens carry email_verified (drop it with None).
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": "styx",
        "iat": now,
        "exp": now + 3600,
        "sub": "1234567890",
        "email_verified": True,
    }
    if email is not None:
        claims["email"] = email
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


@dataclass
class FakeGoogle:
    certs: dict[str, str] = field(default_factory=dict)
    service_accounts: dict[str, str] = field(default_factory=dict)  # email -> project
    service_account_roles: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # email -> role -> members
    project_roles: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # readable projects
    ancestry: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # project -> [(type, id)], itself first
    groups: dict[str, set[str]] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)  # path fragment -> statuses to answer first
    requests: list[tuple[str, str]] = field(default_factory=list)
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, fragment: str) -> int:
        with self._lock:
            return sum(1 for _, path in self.requests if fragment in path)

    def fail(self, fragment: str, *statuses: int) -> None:
        self.failures[fragment] = list(statuses)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((method, path))
            for fragment, statuses in self.failures.items():
                if fragment in path and statuses:
                    status = statuses.pop(0)
                    return status, _error(status, "injected failure")
        route = (method, path)
        if route == ("GET", CERTS_PATH):
            return 200, dict(self.certs)
        if method == "GET" and path.startswith("/admin/directory/v1/groups/"):
            group, _, member = path.removeprefix("/admin/directory/v1/groups/").partition("/hasMember/")
            if group not in self.groups:
                return 404, _error(404, f"group {group} not found")
            return 200, {"isMember": member in self.groups[group]}
        if path.startswith("/v1/projects/-/serviceAccounts/"):
            email, _, method_name = path.removeprefix("/v1/projects/-/serviceAccounts/").partition(":")
            if email not in self.service_accounts:
                return 404, _error(404, f"Unknown service account {email}")
            if method == "GET" and not method_name:
                return 200, {"email": email, "projectId": self.service_accounts[email]}
            if method == "POST" and method_name == "getIamPolicy":
                return 200, _policy(self.service_account_roles.get(email, {}))
        if method == "POST" and path.startswith("/v1/projects/"):
            project, _, method_name = path.removeprefix("/v1/projects/").partition(":")
            if method_name == "getIamPolicy":
                if project not in self.project_roles:
                    return 403, _error(403, "The caller does not have permission")
                assert body == {"options": {"requestedPolicyVersion": 3}}
                return 200, _policy(self.project_roles[project])
            if method_name == "getAncestry":
                if project not in self.ancestry:
                    return 403, _error(403, "The caller does not have permission")
                return 200, {"ancestor": [{"resourceId": {"type": t, "id": i}} for t, i in self.ancestry[project]]}
        return 404, _error(404, f"no route {method} {path}")


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": "ERROR"}}


def _policy(roles: dict[str, list[str]]) -> dict[str, Any]:
    return {"version": 1, "etag": "BwX=", "bindings": [{"role": r, "members": m} for r, m in roles.items()]}


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            status, payload = fake.answer(method, unquote(self.path), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.path == CERTS_PATH:
                self.send_header("Cache-Control", "public, max-age=3600, must-revalidate, no-transform")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def fake_google(google_key: SigningKey) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(certs={google_key.kid: google_key.cert_pem})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A bare client (no credentials), as tests talk to the fake only."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def google_apis(fake_google: FakeGoogle, http: httpx.AsyncClient) -> GoogleCloudApis:
    return GoogleCloudApis(GoogleRestClient(http, NO_RETRIES), fake_google.base_url, fake_google.base_url)
