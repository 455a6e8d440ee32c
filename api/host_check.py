"""Host and Origin checks of a service without authentication: the defence against DNS rebinding and
cross-site requests that Jupyter's and Vite's host checks are (docs/security.md).

With authentication off, whoever gets a browser on the service's machine to send a request acts as the
service's owner. Two ways in, two checks:

- DNS rebinding: a page on `evil.example` rebinds that name to 127.0.0.1 and then reads and writes the API
  as its own origin. Its requests say `Host: evil.example`, so only loopback names, `STYX_ALLOWED_HOSTS` and
  the host the service listens on (when not a wildcard) are answered.
- Cross-site writes: any page may send a "simple" POST to http://127.0.0.1:8080 (no preflight). Browsers
  name the page in `Origin`, so a write whose Origin is neither the service itself (the same host and port
  as `Host`) nor a host in `STYX_ALLOWED_HOSTS` is refused. Reads from other origins get no CORS headers,
  so the page cannot see the answers.

With authentication on neither applies: the credentials are a bearer header, which browsers never attach
by themselves. Requests without a Host header (HTTP/1.0) pass: browsers always send one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import READ_METHODS
from api.errors import error_response
from api.middleware import PROBE_PATHS
from styx_actors.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
ANY_HOST = "*"  # in STYX_ALLOWED_HOSTS: answer any Host name (origins are still checked)


def host_name(authority: str) -> str:
    """The host of `name[:port]`, `[v6][:port]` or a bare IPv6 address: lower case, no trailing dot, IP
    addresses in their canonical form (so `[0::1]` is `::1`, and `[::ffff:127.0.0.1]` is `127.0.0.1`)."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        host, closed, _ = authority[1:].partition("]")
        if not closed:
            return authority  # no name at all: matches nothing
    elif authority.count(":") == 1:
        host = authority.partition(":")[0]
    else:
        host = authority
    host = host.rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def is_loopback(host: str) -> bool:
    """`host` (as host_name gives it) names this machine whatever DNS says: localhost, 127.0.0.0/8, ::1."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_authority(origin: str) -> str | None:
    """`host[:port]` of an Origin header, lower case; None for `null` (sandboxed pages, files) and garbage."""
    try:
        return urlsplit(origin.strip().lower()).netloc or None
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


@dataclass(frozen=True)
class HostPolicy:
    """Which Host names are answered and which origins may write, without authentication."""

    allowed_hosts: frozenset[str]  # host_name()s from STYX_ALLOWED_HOSTS
    listen_host: str | None  # host_name(STYX_HOST), None when it is a wildcard address
    any_host: bool  # ANY_HOST was listed

    @classmethod
    def of(cls, allowed_hosts: Iterable[str], listen_host: str) -> HostPolicy:
        entries = list(allowed_hosts)
        listen = host_name(listen_host)
        return cls(
            allowed_hosts=frozenset(host_name(entry) for entry in entries if entry != ANY_HOST),
            listen_host=None if listen in WILDCARD_HOSTS else listen,
            any_host=ANY_HOST in entries,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        return cls.of(settings.allowed_hosts, settings.host)

    def serves(self, host: str) -> bool:
        return self.any_host or is_loopback(host) or host in self.allowed_hosts or host == self.listen_host

    def refusal(self, method: str, host_header: str | None, origin_header: str | None) -> str | None:
        """Why a request is refused (the 403's message), or None when it may go on."""
        if host_header is not None and not self.serves(host_name(host_header)):
            return (
                f"Host {host_header!r} is not served: without authentication the service answers only loopback "
                "names, its listen host and STYX_ALLOWED_HOSTS (add the name there if you reach the service by it)"
            )
        if method in READ_METHODS or origin_header is None:
            return None
        origin = origin_authority(origin_header)
        if origin and (origin == (host_header or "").strip().lower() or host_name(origin) in self.allowed_hosts):
            return None
        return (
            f"Cross-origin request refused: Origin {origin_header!r} is not this service "
            "(without authentication only the service's own pages and STYX_ALLOWED_HOSTS may change anything)"
        )


class HostCheckMiddleware:
    """Answers 403 to the requests HostPolicy.refusal refuses. Health probes and /metrics are exempt:
    orchestrators call them by whatever address they know, and they reveal nothing worth rebinding for."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.policy.refusal(scope["method"], headers.get("host"), headers.get("origin"))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await error_response(403, refusal)(scope, receive, send)
