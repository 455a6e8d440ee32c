"""The HTTP client of the v3 API: host resolution, Styx's request headers, and errors mapped to exit statuses.

Every call goes to `<host>/api/v3/...` with `User-Agent: Styx Client <version>`, a fresh
`X-Styx-Request-Id` and, when this machine has Google credentials, `Authorization: Bearer <ID token>` whose
audience is the host (docs/cli.md#authentication). The token travels only where no one else can read it:
over https, or to a loopback address. To plain http elsewhere requests go without it, and the CLI says so
(docs/cli.md).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from styx_actors.cli.credentials import credentials_available, id_token
from styx_actors.cli.errors import ApiError, ArgumentError, AuthError, ClientError
from styx_actors.cli.version import VERSION

HOST_ENV = "STYX_CLI_HOST"
DEFAULT_HOST = "http://127.0.0.1:8080"
API_PATH = "/api/v3"
REQUEST_ID_HEADER = "X-Styx-Request-Id"
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 90.0
TIMEOUT = httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

TokenSource = Callable[[str], "str | None"]
QueryParams = Mapping[str, str | bool | None]


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def token_stays_private(host: str) -> bool:
    """May a bearer token be sent to `host`? Only encrypted (https) or without leaving this machine
    (loopback): over plain http anyone on the path could replay it for as long as it is valid."""
    parts = urlsplit(host)
    return parts.scheme == "https" or is_loopback(parts.hostname or "")


def _withheld_token_notice(host: str) -> str:
    return (
        f"Your Google ID token was not sent to {host}: plain http to another machine would expose it. "
        "Use the service's https:// address to authenticate."
    )


def api_path(*segments: str) -> str:
    """A path under /api/v3 from its segments, each escaped (ids may hold `#`, `/` or spaces)."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def resolve_host(option: str | None) -> str:
    """The API host URL: the -H option, else STYX_CLI_HOST, else the local default. A host given without
    a scheme gets `http://` on a loopback address (what `styx serve` listens on) and `https://` elsewhere."""
    given = (option or os.environ.get(HOST_ENV) or DEFAULT_HOST).strip()
    host = given
    if not _SCHEME.match(host):
        hostname = urlsplit(f"//{host}").hostname or ""
        host = f"{'http' if is_loopback(hostname) else 'https'}://{host}"
    try:
        parts = urlsplit(host)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # e.g. a port that is not a number
        valid = False
    if not valid:
        raise ArgumentError(f"invalid Styx API host: {given!r} (expected e.g. http://127.0.0.1:8080)")
    return host.rstrip("/")


class StyxClient:
    """Synchronous calls to one Styx API; each returns the decoded JSON body (None when empty)."""

    def __init__(
        self,
        host: str,
        token_source: TokenSource = id_token,
        has_credentials: Callable[[], bool] = credentials_available,
    ) -> None:
        self.host = host
        self._token_source = token_source
        self._has_credentials = has_credentials
        self._authorization: str | None = None
        self._token_looked_up = False
        self._token_withheld = False
        self._http = httpx.Client(
            base_url=host + API_PATH, timeout=TIMEOUT, headers={"User-Agent": f"Styx Client {VERSION}"}
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: QueryParams | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, params: QueryParams | None = None) -> Any:
        return self.request("POST", path, body=body, params=params)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str, params: QueryParams | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    def request(self, method: str, path: str, body: Any = None, params: QueryParams | None = None) -> Any:
        request_id = uuid.uuid4().hex
        headers = {REQUEST_ID_HEADER: request_id}
        authorization = self._authorization_header()
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            response = self._http.request(method, path, json=body, params=_query(params), headers=headers)
        except httpx.ConnectTimeout as exc:
            raise ClientError(f"could not connect to {self.host} within {CONNECT_TIMEOUT_SECONDS:g} s") from exc
        except httpx.TimeoutException as exc:
            raise ClientError(f"no answer from {self.host} within {READ_TIMEOUT_SECONDS:g} s") from exc
        except httpx.ConnectError as exc:
            raise ClientError(self._connect_failure(exc)) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ClientError(f"{method} {self.host}{API_PATH}{path} failed: {exc}") from exc
        return self._result(response, request_id, token_sent=authorization is not None)

    def _authorization_header(self) -> str | None:
        if not self._token_looked_up:
            if token_stays_private(self.host):
                token = self._token_source(self.host)
                self._authorization = f"Bearer {token}" if token else None
            elif self._has_credentials():
                self._token_withheld = True
                print(f"Warning: {_withheld_token_notice(self.host)}", file=sys.stderr)
            self._token_looked_up = True
        return self._authorization

    def _connect_failure(self, exc: httpx.ConnectError) -> str:
        reason = str(exc) or type(exc).__name__
        if is_loopback(urlsplit(self.host).hostname or ""):
            return f"could not connect to {self.host} — is `styx serve` running? ({reason})"
        return f"could not connect to {self.host}: {reason}. Check -H/--host or {HOST_ENV}."

    def _result(self, response: httpx.Response, request_id: str, token_sent: bool) -> Any:
        if response.is_success:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise ClientError(
                    f"{response.request.method} {response.request.url} answered {response.status_code} "
                    f"with a body that is not JSON: is {self.host} a Styx API?"
                ) from exc
        answered_id = response.headers.get(REQUEST_ID_HEADER, request_id)
        message = _error_message(response)
        if response.status_code == 401:
            if self._token_withheld:  # credentials exist: say why they were not used, not how to log in
                error = AuthError(response.status_code, message, answered_id, token_sent=True)
                error.message += "\n" + _withheld_token_notice(self.host)
                raise error
            raise AuthError(response.status_code, message, answered_id, token_sent)
        raise ApiError(response.status_code, message, answered_id)


def _query(params: QueryParams | None) -> dict[str, str] | None:
    """Query parameters without the absent ones; booleans as the API reads them."""
    if params is None:
        return None
    return {
        name: ("true" if value else "false") if isinstance(value, bool) else value
        for name, value in params.items()
        if value is not None
    }


def _error_message(response: httpx.Response) -> str:
    """The `message` of the API's JSON error body, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    return response.reason_phrase or response.text.strip()
