"""The exception a remote actor method raised, as its caller must see it."""

from __future__ import annotations

from typing import Any

from ray.exceptions import RayTaskError


def raised_by_remote_method(error: RayTaskError) -> BaseException:
    """The exception the actor method raised, itself. Ray raises a `RayTaskError(<its class>)` instead: an
    instance of the original class (so `except IllegalTransition` catches it) whose `str()` is the remote
    traceback with paths, pid and node address, which a caller turning `str(error)` into an API message
    (`Commands.send`) would hand to clients. Raise the result `from error` to keep that traceback in logs."""
    cause = error.cause
    return cause if isinstance(cause, BaseException) else error


async def remote_result(call: Any) -> Any:
    """Await an actor method call (an ObjectRef); what the method raised is raised as itself."""
    try:
        return await call
    except RayTaskError as error:
        raise raised_by_remote_method(error) from error
