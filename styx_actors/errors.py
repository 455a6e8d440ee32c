"""Refusals of commands, each carrying Styx's message; the API maps them to HTTP status codes."""

from __future__ import annotations


class CommandError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CommandError):
    status_code = 400


class NotFound(CommandError):
    status_code = 404


class Conflict(CommandError):
    status_code = 409


class Unavailable(CommandError):
    """A dependency (the store, the actor system) cannot be reached right now."""

    status_code = 503
