"""uvicorn as the service runs it, with the HTTP limits uvicorn leaves out (docs/security.md).

The service keeps uvicorn's httptools protocol (llhttp; the fast one, docs/performance.md), which bounds
nothing of a request head on its own: llhttp has no size limit and uvicorn collects the URL and the headers
whole (a 64 MB header is read into memory); its only timer is the keep-alive one, armed after a response, so
a connection that sends nothing, or half a head, stays open forever; and `limit_concurrency` answers 503
only once a request head has come, never to a connection that just stays open. uvicorn's h11 protocol bounds
the head (`h11_max_incomplete_event_size`) but has the same timer gap and costs ~110 µs more CPU a request
(~25 µs for httptools, measured by driving both protocols in-process; docs/security.md).

`BoundedHttpToolsProtocol` closes those gaps in a few overridden callbacks:
- request target over `STYX_HTTP_MAX_URL_BYTES`: 414; request line and headers over
  `STYX_HTTP_MAX_HEADER_BYTES`: 431, as soon as that many bytes of an unfinished head have come;
- a head not complete within `STYX_HTTP_HEADER_TIMEOUT` of the connection opening (or of its first byte on
  a kept-alive connection), or a body not complete within `STYX_HTTP_BODY_TIMEOUT` of its head: the
  connection is closed (slowloris; the request being read ends as a client disconnect);
- more than `STYX_HTTP_MAX_CONNECTIONS` open connections: the new one gets a 503 and is closed at once.
The idle keep-alive timeout is uvicorn's own (`STYX_HTTP_KEEP_ALIVE_TIMEOUT`). Refusals are the API's JSON
error format, sent with `Connection: close`.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from dataclasses import dataclass
from itertools import chain
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import error_body
from styx_actors.settings import Settings

log = logging.getLogger(__name__)

HEADER_LINE_OVERHEAD = 4  # ": " and CRLF around each header's name and value


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_url_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_url_bytes=settings.http_max_url_bytes,
            header_timeout_seconds=settings.http_header_timeout.total_seconds(),
            body_timeout_seconds=settings.http_body_timeout.total_seconds(),
            max_connections=settings.http_max_connections,
        )


def refusal_response(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 response in the API's error format, after which the connection is closed."""
    body = json.dumps(error_body(status, message)).encode()
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `limits` (a subclass per limits: see bounded_protocol).

    A head is "being read" from the connection's start, and again from the end of each message, until its
    headers are complete. While it is, the raw bytes received are counted, since llhttp holds a header being
    received until its end and would otherwise buffer a never-ending one whole; the complete head is then
    measured exactly. Its body is then "being read" until the message is complete. The timer is lazy (one
    pending timer per connection, re-armed only while a head or body is late) so that a request costs no
    timer of its own: a few µs of CPU a request in all, ~1% of an API request's."""

    limits: ClassVar[HttpLimits]

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._reading_head = True
        self._raw_head_bytes = 0  # received since this head began, while it is unfinished
        self._deadline: float | None = None  # loop time by which the head or body being received must be complete
        self._timer: asyncio.TimerHandle | None = None
        self._refusal: bytes | None = None  # once set, nothing more is parsed and the connection closes

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport  # uvicorn's connection_lost closes it again
            log.warning("connection refused: %d connections open already", len(self.connections))
            message = f"Too many connections: limit = {self.limits.max_connections}"
            transport.write(refusal_response(503, message))
            transport.close()
            return
        super().connection_made(transport)
        self._head_begins()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused, timed out or answered with Connection: close: nothing more to read
        if self._reading_head:
            self._raw_head_bytes += len(data)
            if self._deadline is None:
                self._head_begins()
        super().data_received(data)
        if self._refusal is None and self._reading_head and self._raw_head_bytes > self.limits.max_header_bytes:
            self._refuse_oversized_head()
        if self._refusal is not None and not self.transport.is_closing():
            self.transport.write(self._refusal)
            self.transport.close()

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._deadline = None
        if len(self.url) > self.limits.max_url_bytes:
            limit = self.limits.max_url_bytes
            self._refusal = refusal_response(414, f"Request URL too long: limit = {limit} bytes")
        elif len(self.url) + head_bytes(self.headers) > self.limits.max_header_bytes:
            self._refuse_oversized_head()
        if self._refusal is None:
            self._expect_by(self.limits.body_timeout_seconds)  # cleared when the message is complete
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._deadline = None
        if self._refusal is None:
            super().on_message_complete()
        self._reading_head = True
        self._raw_head_bytes = 0

    # The timer

    def _head_begins(self) -> None:
        self._expect_by(self.limits.header_timeout_seconds)

    def _expect_by(self, seconds: float) -> None:
        # A pending timer is never further away than the shorter timeout, so it is never too late for a new
        # deadline: the deadline moves, the timer stays (no timer per request).
        self._deadline = self.loop.time() + seconds
        if self._timer is None:
            self._timer = self.loop.call_later(self._timer_step(seconds), self._check_deadline)

    def _timer_step(self, remaining: float) -> float:
        return min(remaining, self.limits.header_timeout_seconds, self.limits.body_timeout_seconds)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline is None or self.transport.is_closing():
            return  # nothing being received: the next head arms the timer again
        remaining = self._deadline - self.loop.time()
        if remaining > 0:
            self._timer = self.loop.call_later(self._timer_step(remaining), self._check_deadline)
        else:
            self.transport.close()

    def _refuse_oversized_head(self) -> None:
        limit = self.limits.max_header_bytes
        self._refusal = refusal_response(431, f"Request header too large: limit = {limit} bytes")


def head_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """The size of the header lines of a head (without the request line)."""
    return sum(map(len, chain.from_iterable(headers))) + HEADER_LINE_OVERHEAD * len(headers)


def bounded_protocol(limits: HttpLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, carrying `limits` (uvicorn passes only its
    own Config to a protocol)."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How `styx serve` and the tests' servers run `app` on uvicorn: settings.host:settings.port, with the
    HTTP limits of `settings`. `overrides` are further uvicorn.Config arguments (e.g. `log_level`)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": bounded_protocol(HttpLimits.from_settings(settings)),
        "ws": "none",  # the API has no WebSocket route: an upgrade must not leave the bounded protocol
        "lifespan": "off",
        "server_header": False,
        "access_log": settings.access_log,
        "timeout_keep_alive": settings.http_keep_alive_timeout.total_seconds(),  # uvicorn's timer takes floats
        **overrides,
    }
    return uvicorn.Config(app, **options)
