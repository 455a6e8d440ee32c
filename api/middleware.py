"""ASGI middleware around every request (docs/api.md#errors): the request id, the catch-all for unexpected
exceptions, request metrics, the audit log of changes, the request body size limit, the JSON-only bodies of
writes and the optional per-client rate limit. The Host/Origin checks are in api/host_check.py; what each
defends against is in docs/security.md.

Plain ASGI classes rather than Starlette's BaseHTTPMiddleware: they see every response, including the
413s and 500s they produce themselves, and they never buffer or re-wrap response bodies.
"""

from __future__ import annotations

import json
import logging
import re
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
REQUEST_ID_HEADER_NAME = REQUEST_ID_HEADER.lower()  # as ASGI gives header names
# A request id the caller gives is kept only if it is this tame: it is echoed, logged and audited.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Credentials never reach the audit log: these headers, and every header whose name contains one of the words.
SECRET_HEADERS = frozenset({"service-identity"})
SECRET_HEADER_WORDS = ("auth", "cookie", "token", "secret", "key", "password", "credential", "session")
AUDIT_PAYLOAD_CHARS = 2048
# Audit records of requests that passed authentication (the action was tried, `status` tells how it went),
# and of requests refused before that (nothing was done: 401, 403 of the host check, 406, 413, 415, 429, ...).
AUDIT_PREFIX = "[AUDIT]"
AUDIT_REFUSED_PREFIX = "[AUDIT REFUSED]"
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


def request_id_of(headers: Headers) -> str:
    """The caller's request id when it is VALID_REQUEST_ID, else a new dash-less uuid4 (a bad one is dropped
    unseen: never echoed nor logged)."""
    given = headers.get(REQUEST_ID_HEADER)
    return given if given is not None and VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Outermost layer: `X-Styx-Request-Id` echoed or generated on every response, uncaught exceptions
    answered with Styx's 500 text (the exception itself goes to the log only), each request observed and
    each change audited."""

    def __init__(self, app: ASGIApp, observe: RequestObserver) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        request_id = request_id_of(request_headers)
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
        except Exception:
            # %r: a path may hold control characters, which must not start lines of their own in the log.
            log.exception("request %s %r failed (request id %s)", method, scope.get("path"), request_id)
            if started:
                raise
            await error_response(500, internal_error_message(request_id))(scope, receive, send_with_id)
        finally:
            self.observe(route_template(scope), method, status, time.perf_counter() - begin)
            if audited:
                audit_log.info("%s", audit_record(scope, request_headers, bytes(payload), status))


def audit_record(scope: Scope, headers: Headers, payload: bytes, status: int) -> str:
    """One audit line: AUDIT_PREFIX (or AUDIT_REFUSED_PREFIX when the request did not pass authentication)
    and a JSON object. Every control character, and everything beyond ASCII, is escaped, so no path, header
    or body can end the line or forge another record."""
    state = scope.get("state", {})
    principal = state.get("principal")
    path = scope.get("path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    record = {
        "method": scope["method"],
        "uri": f"{path}?{query}" if query else path,
        "by": getattr(principal, "email", None) or "anonymous",
        "request_id": state.get("request_id"),
        "headers": shown_headers(headers),
        "parameters": query,
        "payload": redacted_payload(payload),
        "status": status,
    }
    prefix = AUDIT_PREFIX if state.get("authenticated") else AUDIT_REFUSED_PREFIX
    # ensure_ascii: everything outside printable ASCII is escaped (C0, DEL, C1 controls, U+2028, ...).
    return f"{prefix} {json.dumps(record, ensure_ascii=True, separators=(',', ':'))}"


def is_secret_header(name: str) -> bool:
    return name in SECRET_HEADERS or any(word in name for word in SECRET_HEADER_WORDS)


def shown_headers(headers: Headers) -> dict[str, str]:
    """The request headers for the audit log, secrets HIDDEN; a repeated header's values joined by `, `.
    The request id header is left out: the record has the id in use (the caller's may have been refused)."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if name == REQUEST_ID_HEADER_NAME:
            continue
        value = HIDDEN if is_secret_header(name) else value
        shown[name] = f"{shown[name]}, {value}" if name in shown else value
    return shown


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


JSON_MEDIA_TYPE = "application/json"


def is_json_content_type(content_type: str) -> bool:
    """`application/json`, alone or with `charset=utf-8` (any case, optional quotes and spaces)."""
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if (name.strip().lower(), value.strip().strip('"').lower()) != ("charset", "utf-8"):
            return False
    return True


class JsonBodyMiddleware:
    """Writes may carry only JSON: a POST/PUT/PATCH/DELETE that declares another Content-Type, or sends a body
    without one, gets a 415 before anything reads it. Browsers send cross-site "simple" requests (no CORS
    preflight) only as text/plain, form or multipart bodies, or bodies without a type, so none of those
    reaches a route. A write without a body and without a Content-Type (halt, delete, ...) goes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type")
        has_body = "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")
        if is_json_content_type(content_type) if content_type is not None else not has_body:
            await self.app(scope, receive, send)
            return
        declared = "none" if content_type is None else repr(content_type)
        message = f"Unsupported Media Type: request bodies must be {JSON_MEDIA_TYPE} (Content-Type given: {declared})"
        await error_response(415, message)(scope, receive, send)


# Health probes and metrics: never rate limited (an orchestrator must see a busy service as alive) nor
# host-checked (api/host_check.py).
PROBE_PATHS = frozenset({"/ping", "/healthz", "/readyz", "/metrics"})
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
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
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
