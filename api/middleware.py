"""ASGI middleware around every request (reference §8.1): the request id, the catch-all for unexpected
exceptions, request metrics, the audit log of changes, the request body size limit and the optional
per-client rate limit.

Plain ASGI classes rather than Starlette's BaseHTTPMiddleware: they see every response, including the
413s and 500s they produce themselves, and they never buffer or re-wrap response bodies.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import READ_METHODS
from api.errors import PayloadTooLarge, error_response, internal_error_message

log = logging.getLogger(__name__)
audit_log = logging.getLogger("styx_actors.audit")

REQUEST_ID_HEADER = "X-Styx-Request-Id"
# Credentials never reach the audit log.
HIDDEN_HEADERS = frozenset({"authorization", "service-identity", "cookie"})
AUDIT_PAYLOAD_CHARS = 2048
# A workflow's `env` carries credentials as often as not: its values never reach the audit log.
SECRET_FIELDS = frozenset({"env"})
HIDDEN = "<hidden>"
UNMATCHED_ROUTE = "<unmatched>"

RequestObserver = Callable[[str, str, int, float], None]  # route template, method, status, seconds


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), not the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Outermost layer: `X-Styx-Request-Id` echoed or generated (dash-less uuid4) on every response,
    uncaught exceptions answered with Styx's 500 text, each request observed and each change audited."""

    def __init__(self, app: ASGIApp, observe: RequestObserver) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        request_id = request_headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        method: str = scope["method"]
        audited = method not in READ_METHODS
        payload = bytearray()
        status = 500
        started = False

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(payload) < AUDIT_PAYLOAD_CHARS:
                payload.extend(message.get("body", b"")[: AUDIT_PAYLOAD_CHARS - len(payload)])
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        begin = time.perf_counter()
        try:
            await self.app(scope, receive_and_keep if audited else receive, send_with_id)
        except Exception as exc:
            log.exception("request %s %s failed (request id %s)", method, scope.get("path"), request_id)
            if started:
                raise
            await error_response(500, internal_error_message(request_id, exc))(scope, receive, send_with_id)
        finally:
            self.observe(route_template(scope), method, status, time.perf_counter() - begin)
            if audited:
                _audit(scope, request_headers, bytes(payload), status)


def _audit(scope: Scope, headers: Headers, payload: bytes, status: int) -> None:
    principal = scope.get("state", {}).get("principal")
    who = getattr(principal, "email", None) or "anonymous"
    uri = scope.get("path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    shown_headers = {name: "<hidden>" if name in HIDDEN_HEADERS else value for name, value in headers.items()}
    audit_log.info(
        "[AUDIT] %s %s by %s with headers %s parameters %s and payload %s -> %d",
        scope["method"],
        f"{uri}?{query}" if query else uri,
        who,
        shown_headers,
        query,
        redacted_payload(payload),
        status,
    )


def redacted_payload(payload: bytes) -> str:
    """The payload for the audit log, with the values of every SECRET_FIELDS object hidden. A body that is
    not JSON (or was cut at AUDIT_PAYLOAD_CHARS) but names such a field is hidden whole."""
    text = payload.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
        redacted = _redact(document)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return HIDDEN if any(f'"{name}"' in text for name in SECRET_FIELDS) else text
    return text if redacted == document else json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))


def _redact(value: object) -> object:
    if isinstance(value, dict):
        return {
            key: {name: HIDDEN for name in item} if key in SECRET_FIELDS and isinstance(item, dict) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413: up front from Content-Length, and while a body
    without one (chunked) is being read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body too large: limit = {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, self._refusal().message)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._refusal()
            return message

        await self.app(scope, limited_receive, send)


# Health probes and metrics are never rate limited: an orchestrator must see a busy service as alive.
UNLIMITED_PATHS = frozenset({"/ping", "/healthz", "/readyz", "/metrics"})
# Buckets of at most this many clients are kept (least recently seen dropped first), so memory stays bounded
# however many addresses call; a dropped client starts again with a full bucket.
MAX_TRACKED_CLIENTS = 10_000


class TokenBuckets:
    """One token bucket per client: `rate` tokens a second, at most `burst` saved up. Pure logic: the caller
    passes the monotonic time."""

    def __init__(self, rate: float, burst: float, max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def take(self, client: str, now: float) -> bool:
        """Spend one token of `client`; False when its bucket is empty."""
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimitMiddleware:
    """Answer 429 to a client (by peer address) that sends more than its token bucket allows."""

    def __init__(self, app: ASGIApp, per_second: float, burst: float | None = None) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_second, burst if burst is not None else max(1.0, per_second))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        client = peer[0] if peer else "unknown"
        if self.buckets.take(client, time.monotonic()):
            await self.app(scope, receive, send)
            return
        message = f"Too many requests from {client}: limit = {self.buckets.rate:g} requests per second"
        response = error_response(429, message)
        response.headers["Retry-After"] = str(max(1, round(1 / self.buckets.rate)))
        await response(scope, receive, send)
