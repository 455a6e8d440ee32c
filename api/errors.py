"""Error responses: every refusal is JSON `{"code": N, "message": "..."}` with Styx's message text.

Refusals raised anywhere below the routers (command refusals, authentication, payload parsing) are
CommandError subclasses carrying their status code; this module turns them, FastAPI's own validation and
routing errors, and an unreachable store into that one format. Unexpected exceptions are answered by the
request-context middleware (api/middleware.py), which knows the request id Styx puts in the message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from styx_actors.errors import CommandError
from styx_actors.store.base import StoreError

log = logging.getLogger(__name__)


class PayloadTooLarge(CommandError):
    status_code = 413


class NotAcceptable(CommandError):
    status_code = 406


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def error_response(code: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=code)


def internal_error_message(request_id: str) -> str:
    """The answer to an uncaught exception: nothing of the exception (it may name files, queries, secrets);
    the request id finds it in the service log."""
    return f"Internal Server Error (Request ID: {request_id})"


def validation_message(errors: list[dict[str, Any]]) -> str:
    """Pydantic/FastAPI errors as `where: what` pairs, e.g. `query.limit: Input should be a valid integer`."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


async def _command_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CommandError)
    return error_response(exc.status_code, exc.message)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, f"Store unavailable, try again later: {exc}")


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    # Bad input is a 400 in Styx, never FastAPI's 422.
    assert isinstance(exc, RequestValidationError)
    return error_response(400, validation_message(list(exc.errors())))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CommandError, _command_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
