"""The CLI sends the user's Google ID token only over https or to a loopback address (docs/cli.md,
"Authentication").

One local HTTP server on 127.0.0.1 records what leaves the CLI. It plays three parts:
- Google's token endpoint (POST /token): the service-account key file's `token_uri` points at it, so
  google-auth's real exchange runs and the CLI holds real credentials;
- the network, as the CLI's HTTP(S) proxy: a request for http://styx.example.com arrives here in clear with
  every header, exactly what anyone on the path would read; for https://styx.example.com the CLI opens a
  CONNECT tunnel, in which the server answers TLS with a certificate for that name (trusted through
  SSL_CERT_FILE) and records the decrypted request, as only the real service could;
- a Styx service on loopback (requests to http://127.0.0.1:<port>/api/v3, NO_PROXY).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from styx_actors.cli.client import token_stays_private
from styx_actors.cli.errors import ExitStatus
from styx_actors.timeutil import UTC
from tests.cli.conftest import Result, run_cli

REMOTE = "styx.example.com"
ACCOUNT = "deployer@project.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Recorded:
    url: str  # as the CLI addressed it
    headers: dict[str, str]  # lower-case names

    @property
    def token_audience(self) -> str | None:
        authorization = self.headers.get("authorization")
        return _claims(authorization.removeprefix("Bearer "))["aud"] if authorization else None


@dataclass
class Network:
    port: int = 0
    certificate_file: Path = Path()
    tls: ssl.SSLContext | None = None
    recorded: list[Recorded] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _id_token(assertion: str) -> str:
    """An ID token for the audience google-auth asked for, signed by no one (only its claims are read here)."""
    asked = _claims(assertion)
    claims = {
        "aud": asked["target_audience"],
        "email": asked["iss"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
    }
    return ".".join((_b64(b'{"alg":"RS256","typ":"JWT"}'), _b64(json.dumps(claims).encode()), _b64(b"unsigned")))


def _api_answer(method: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """What a service with authentication on answers: reads for anyone, changes only with a token."""
    if method == "GET":
        return 200, {"resources": []}
    if "authorization" not in headers:
        return 401, {"code": 401, "message": "Unauthorized access"}
    return 200, {"id": "r", "concurrency": 1}


def _response(status: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def _handler(network: Network) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            if self.path == "/token":
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                self._send(200, {"id_token": _id_token(form["assertion"][0])})
            else:
                self._record_and_answer("POST")

        def do_GET(self) -> None:
            self._record_and_answer("GET")

        def do_CONNECT(self) -> None:
            """An https request through the proxy: terminate its TLS as the service would, then record it."""
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            assert network.tls is not None
            with network.tls.wrap_socket(self.connection, server_side=True) as tunnel:
                stream = tunnel.makefile("rb")
                method, target, _ = stream.readline().decode().split(" ", 2)
                headers: dict[str, str] = {}
                while line := stream.readline().decode().strip():
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                stream.read(int(headers.get("content-length") or 0))
                network.recorded.append(Recorded(f"https://{self.path.split(':')[0]}{target}", headers))
                tunnel.sendall(_response(*_api_answer(method, headers)))
            self.close_connection = True

        def _record_and_answer(self, method: str) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            # A proxied request names its absolute URL; a direct one (loopback) only the path.
            url = self.path if self.path.startswith("http://") else f"{network.url}{self.path}"
            network.recorded.append(Recorded(url, headers))
            self._send(*_api_answer(method, headers))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self.wfile.write(_response(status, body))
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _certificate_for(name: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / "service.pem", directory / "service.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_file, key_file


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    certificate_file, key_file = _certificate_for(REMOTE, tmp_path_factory.mktemp("tls"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate_file, key_file)
    recorder = Network(certificate_file=certificate_file, tls=tls)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory, network: Network) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path_factory.mktemp("credentials") / "deployer.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "project",
                "private_key_id": "key-1",
                "private_key": pem.decode(),
                "client_email": ACCOUNT,
                "client_id": "1",
                "token_uri": f"{network.url}/token",
            }
        )
    )
    return path


def styx(network: Network, home: Path, host: str, *args: str, credentials: Path | None) -> tuple[Result, Recorded]:
    """Run the CLI against `host` with the recording server as the network; the one API request it made."""
    environment = {
        "HTTP_PROXY": network.url,
        "HTTPS_PROXY": network.url,
        "NO_PROXY": "127.0.0.1,localhost",  # the token endpoint and a loopback service are reached directly
        "SSL_CERT_FILE": str(network.certificate_file),
    }
    if credentials is not None:
        environment["GOOGLE_APPLICATION_CREDENTIALS"] = str(credentials)
    network.recorded.clear()
    result = run_cli(["-H", host, *args], home, env=environment)
    [request] = network.recorded
    return result, request


@pytest.mark.parametrize("remote", [f"http://{REMOTE}:8080", f"http://{REMOTE}"])
def test_plain_http_to_another_machine_carries_no_token_and_says_so(
    network: Network, key_file: Path, tmp_path: Path, remote: str
) -> None:
    result, request = styx(network, tmp_path, remote, "resource", "ls", "--json", credentials=key_file)

    assert result.code == ExitStatus.SUCCESS, result.stderr  # reading needs no token
    assert request.url == f"{remote}/api/v3/resources"
    assert "authorization" not in request.headers
    assert request.headers["user-agent"].startswith("Styx Client ")
    assert result.stderr == (
        f"Warning: Your Google ID token was not sent to {remote}: plain http to another machine would expose it. "
        "Use the service's https:// address to authenticate.\n"
    )


def test_a_change_refused_for_want_of_the_withheld_token_says_why(
    network: Network, key_file: Path, tmp_path: Path
) -> None:
    result, request = styx(
        network, tmp_path, f"http://{REMOTE}:8080", "resource", "create", "r", "1", credentials=key_file
    )

    assert "authorization" not in request.headers
    assert result.code == ExitStatus.AUTH_ERROR
    assert "API error: 401 Unauthorized access" in result.stderr
    assert result.stderr.rstrip().endswith("Use the service's https:// address to authenticate.")
    assert "gcloud auth application-default login" not in result.stderr  # the credentials exist


def test_without_credentials_plain_http_is_quiet(network: Network, tmp_path: Path) -> None:
    result, request = styx(network, tmp_path, f"http://{REMOTE}:8080", "resource", "ls", credentials=None)
    assert (result.code, result.stderr, "authorization" in request.headers) == (0, "", False)


def test_https_carries_the_token(network: Network, key_file: Path, tmp_path: Path) -> None:
    result, request = styx(
        network, tmp_path, f"https://{REMOTE}", "resource", "create", "r", "1", "--json", credentials=key_file
    )

    assert (result.code, result.stderr) == (ExitStatus.SUCCESS, "")
    assert request.url == f"https://{REMOTE}/api/v3/resources"
    assert request.token_audience == f"https://{REMOTE}"


def test_a_loopback_address_over_plain_http_carries_the_token(network: Network, key_file: Path, tmp_path: Path) -> None:
    result, request = styx(network, tmp_path, network.url, "resource", "create", "r", "1", credentials=key_file)

    assert (result.code, result.stderr) == (ExitStatus.SUCCESS, "")
    assert request.url == f"{network.url}/api/v3/resources"
    assert request.token_audience == network.url


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("https://styx.example.com", True),
        ("https://203.0.113.7:8443", True),
        ("http://127.0.0.1:8080", True),
        ("http://127.1.2.3:8080", True),
        ("http://localhost:8080", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8080", True),
        ("http://styx.example.com:8080", False),
        ("http://10.0.0.5:8080", False),
        ("http://[fe80::1]:8080", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io", False),
    ],
)
def test_which_hosts_a_token_may_travel_to(host: str, private: bool) -> None:
    assert token_stays_private(host) is private
