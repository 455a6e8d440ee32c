"""Exit statuses of the `styx` CLI and the errors that end a command with one of them (docs/cli.md#exit-statuses)."""

from __future__ import annotations

import enum

from styx_actors.errors import PicklableError


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    UNKNOWN_ERROR = 1  # also: a declined delete confirmation, a malformed -e argument
    ARGUMENT_ERROR = 2  # also: a workflow file that fails local validation
    CLIENT_ERROR = 3  # the API could not be reached or no token could be had
    API_ERROR = 4  # the API answered with an error status
    AUTH_ERROR = 5  # the API answered 401
    INPUT_ERROR = 6  # a workflow file that cannot be read as workflow configurations


class CliError(PicklableError):
    """Ends the command: `message` (if any) goes to stderr and the process exits with `status`."""

    status = ExitStatus.UNKNOWN_ERROR

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class UnknownError(CliError):
    status = ExitStatus.UNKNOWN_ERROR


class ArgumentError(CliError):
    status = ExitStatus.ARGUMENT_ERROR


class ClientError(CliError):
    status = ExitStatus.CLIENT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(f"Client error: {message}")


class ApiError(CliError):
    status = ExitStatus.API_ERROR

    def __init__(self, code: int, message: str, request_id: str) -> None:
        super().__init__(f"API error: {code} {message} (Request ID: {request_id})")
        self.code = code


NO_CREDENTIALS_HINT = (
    "No credentials were sent: set up Google Application Default Credentials, e.g.\n\n"
    "    gcloud auth application-default login\n\n"
    "or point GOOGLE_APPLICATION_CREDENTIALS at a service-account key file, then try again."
)


class AuthError(ApiError):
    status = ExitStatus.AUTH_ERROR

    def __init__(self, code: int, message: str, request_id: str, token_sent: bool) -> None:
        super().__init__(code, message, request_id)
        if not token_sent:
            self.message += "\n" + NO_CREDENTIALS_HINT


class InputError(CliError):
    status = ExitStatus.INPUT_ERROR
