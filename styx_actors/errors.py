"""Refusals of commands, each carrying Styx's message, which the API maps to HTTP status codes; and
`PicklableError`, the base of every error whose constructor takes other arguments than its `args`."""

from __future__ import annotations

from typing import Any


class PicklableError(Exception):
    """Pickles as what it is, not as a call of its constructor.

    Exceptions pickle by calling `type(error)(*error.args)`, which fails (or builds another message) when
    `__init__` takes other arguments than the `args` it passes on, e.g. `IllegalTransition(run_state, event)`.
    Errors reach the API from the actors through pickle (Ray), so such an error is rebuilt without calling
    `__init__`: same `args` (hence the same `str()`) and same attributes."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[PicklableError], args: tuple[Any, ...], attributes: dict[str, Any]) -> PicklableError:
    error = cls.__new__(cls, *args)  # sets `args`; `__init__` is not called
    error.__dict__.update(attributes)
    return error


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
