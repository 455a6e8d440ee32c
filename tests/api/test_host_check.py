"""The Host/Origin decision of a service without authentication (api/host_check.py), without HTTP: which
names are answered (DNS rebinding) and which origins may write (cross-site requests)."""

from __future__ import annotations

import pytest

from api.host_check import HostPolicy, host_name

LOOPBACK_POLICY = HostPolicy.of([], "127.0.0.1")


@pytest.mark.parametrize(
    ("authority", "name"),
    [
        ("LocalHost:8080", "localhost"),
        ("localhost.", "localhost"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "::1"),
        ("[0:0::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]:80", "127.0.0.1"),
        ("Styx.Example.COM:443", "styx.example.com"),
        ("evil.example:80:80", "evil.example:80:80"),
    ],
)
def test_host_names_are_compared_in_one_form(authority: str, name: str) -> None:
    assert host_name(authority) == name


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8080", "127.0.0.1:8080", "127.9.9.9", "[::1]:8080", "[::ffff:127.0.0.1]", None]
)
def test_loopback_names_and_a_missing_host_are_answered(host: str | None) -> None:
    assert LOOPBACK_POLICY.refusal("GET", host, None) is None
    assert LOOPBACK_POLICY.refusal("POST", host, None) is None


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "10.0.0.5:8080",
        "0.0.0.0:8080",
        "",
        "[::1",
    ],
)
def test_other_names_are_refused_with_what_to_do(host: str) -> None:
    refusal = LOOPBACK_POLICY.refusal("GET", host, None)
    assert refusal is not None and f"Host {host!r} is not served" in refusal and "STYX_ALLOWED_HOSTS" in refusal


def test_allowed_hosts_and_the_listen_host_are_answered() -> None:
    policy = HostPolicy.of(["Styx.Example.com", "10.0.0.5", "[fd00::1]:8080"], "styx-box.lan")
    for host in ("styx.example.com", "styx.example.com:8080", "10.0.0.5:80", "[fd00::1]", "styx-box.lan:8080"):
        assert policy.refusal("GET", host, None) is None, host
    assert policy.refusal("GET", "other.example.com", None) is not None


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", ""])
def test_a_wildcard_listen_host_adds_no_name(wildcard: str) -> None:
    """Pages that send requests to http://0.0.0.0:8080 reach a local service in some browsers."""
    policy = HostPolicy.of([], wildcard)
    for host in ("10.0.0.5:8080", "0.0.0.0:8080", "[::]:8080"):
        assert policy.refusal("GET", host, None) is not None, host
    assert policy.refusal("GET", "localhost:8080", None) is None


def test_a_star_answers_any_host_but_still_checks_origins() -> None:
    policy = HostPolicy.of(["*"], "0.0.0.0")
    assert policy.refusal("GET", "whatever.example", None) is None
    assert policy.refusal("POST", "whatever.example", "http://whatever.example") is None
    assert policy.refusal("POST", "whatever.example", "http://evil.example") is not None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://localhost:3000",  # another local web app is another origin
        "http://127.0.0.1",  # same host, other port
        "https://127.0.0.1:8080.evil.example",
        "null",  # sandboxed frames, file:// pages
        "http://[::1",
    ],
)
def test_writes_from_other_origins_are_refused(method: str, origin: str) -> None:
    refusal = LOOPBACK_POLICY.refusal(method, "127.0.0.1:8080", origin)
    assert refusal is not None and refusal.startswith(f"Cross-origin request refused: Origin {origin!r}")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reads_from_other_origins_go_on(method: str) -> None:
    """They get no CORS headers, so the foreign page cannot read the answer."""
    assert LOOPBACK_POLICY.refusal(method, "127.0.0.1:8080", "http://evil.example") is None


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("localhost:8080", "http://LOCALHOST:8080"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("localhost:8080", "https://styx.example.com"),  # an allowed host (e.g. behind a TLS proxy)
        ("localhost:8080", "http://styx.example.com:9000"),
    ],
)
def test_writes_from_the_service_itself_or_allowed_hosts_go_on(host: str, origin: str) -> None:
    policy = HostPolicy.of(["styx.example.com"], "127.0.0.1")
    assert policy.refusal("POST", host, origin) is None
