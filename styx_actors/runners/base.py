"""The runner contract: what the instance actors ask of whatever runs their executions (docs/runner.md).

Everything here is pure except `StatusListeners`, the small thread-to-event-loop bridge that every runner
uses to push status changes. Runners (Docker here; Kubernetes or Ray tasks later) implement `Runner`; the
actors only see `RunSpec`, `ExecutionStatus` and `RunnerError`, and turn statuses into events with
`progress_events`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from styx_actors.docker_image import with_default_tag
from styx_actors.events import Event, RunError, Started, Terminate
from styx_actors.execution import substitute_parameter
from styx_actors.model import RunState, State, Trigger, WorkflowInstance
from styx_actors.store.base import ExecutionOutput

TERMINATION_LOG_PATH = "/dev/termination-log"
# Kubernetes keeps at most 4096 bytes of a termination message. A longer log is no message at all: it is
# never read whole (a job may write gigabytes there), and its first 4096 bytes would not be its JSON.
TERMINATION_MESSAGE_LIMIT = 4096
# What `Runner.logs` returns: the last bytes of the output (the API's `tail_bytes`, within these bounds).
DEFAULT_LOG_TAIL_BYTES = 1 << 20
MAX_LOG_TAIL_BYTES = 16 << 20
NO_CONTAINER_MESSAGE = "No container associated with this instance"


class RunnerError(Exception):
    """An execution could not be started or inspected; the message becomes the instance's runError."""


# ---------------------------------------------------------------------------------------------------------
# What to run


@dataclass(frozen=True)
class RunSpec:
    """One execution, fully resolved: the runner adds nothing but its own plumbing (labels, mounts, limits)."""

    execution_id: str
    instance: WorkflowInstance
    image: str  # as configured (what STYX_DOCKER_IMAGE shows); `image_reference` is what gets run
    args: tuple[str, ...]
    env: Mapping[str, str]  # final: user env, then the STYX_* variables
    termination_logging: bool
    service_account: str | None
    trigger: Trigger
    commit_sha: str | None
    tries: int

    @property
    def image_reference(self) -> str:
        """The image to run: `:latest` added when none is named. Raises InvalidImageReference."""
        return with_default_tag(self.image)


def build_run_spec(run_state: RunState, environment: str) -> RunSpec:
    """The RunSpec of the execution a SUBMITTING state asks for (docs/runner.md#starting-an-execution).

    Expects `data.execution_id` and an `execution_description` with a docker image (the caller halts the
    instance otherwise: docs/semantics.md#output-handlers). The description's `env` is taken as the final
    user env: PREPARE already overlaid the trigger parameters' env on the workflow env
    (docs/semantics.md#preparing-an-execution), so it is not merged again here. `{}` substitution is
    applied again (idempotent) for descriptions written by other producers.
    """
    data = run_state.data
    description = data.execution_description
    instance = run_state.workflow_instance
    if data.execution_id is None or description is None or description.docker_image is None:
        raise ValueError(f"{instance} has no execution id, execution description or docker image to run")
    args = tuple(substitute_parameter(list(description.docker_args), instance.parameter))
    # Legacy states without a trigger read as unknown, as old events do (docs/semantics.md#events).
    trigger = data.trigger or Trigger.unknown()
    styx_env = {
        "STYX_COMPONENT_ID": instance.workflow_id.component_id,
        "STYX_WORKFLOW_ID": instance.workflow_id.id,
        "STYX_PARAMETER": instance.parameter,
        "STYX_COMMIT_SHA": description.commit_sha or "",
        "STYX_SERVICE_ACCOUNT": description.service_account or "",
        "STYX_DOCKER_ARGS": " ".join(args),
        "STYX_DOCKER_IMAGE": description.docker_image,
        "STYX_EXECUTION_ID": data.execution_id,
        "STYX_TERMINATION_LOG": TERMINATION_LOG_PATH,
        "STYX_TRIGGER_ID": trigger.trigger_id,
        "STYX_TRIGGER_TYPE": trigger.type.value,
        "STYX_ENVIRONMENT": environment,
        "STYX_LOGGING": "structured",
        "STYX_EXECUTION_TRIES": str(data.tries),
    }
    return RunSpec(
        execution_id=data.execution_id,
        instance=instance,
        image=description.docker_image,
        args=args,
        env={**description.env, **styx_env},
        termination_logging=description.docker_termination_logging,
        service_account=description.service_account,
        trigger=trigger,
        commit_sha=description.commit_sha,
        tries=data.tries,
    )


# ---------------------------------------------------------------------------------------------------------
# What the runner sees


@dataclass(frozen=True)
class NoContainer:
    """No container (any more) for this execution."""


@dataclass(frozen=True)
class Pending:
    """The container exists but has not started yet."""


@dataclass(frozen=True)
class Running:
    pass


@dataclass(frozen=True)
class Exited:
    """The execution ended. `exit_code` is final (termination log applied); None = unknown."""

    exit_code: int | None
    oom: bool = False  # killed for exceeding its memory limit (exit_code is then what the runtime gave, 137)


@dataclass(frozen=True)
class Failed:
    """The execution cannot run (e.g. its command could not be started); the message says why."""

    message: str


ExecutionStatus = NoContainer | Pending | Running | Exited | Failed


def termination_exit_code(
    container_exit_code: int | None, termination_logging: bool, message: str | None
) -> int | None:
    """The exit code the instance sees (docs/runner.md#exit-codes-and-the-termination-log).

    Without termination logging: the container's. With it: the `exit_code` of the JSON termination
    message, except that a container that failed (non-zero) cannot claim success (message 0); a missing or
    invalid message leaves only a non-zero container code, else the code is unknown.
    """
    if not termination_logging:
        return container_exit_code
    logged = _logged_exit_code(message)
    container_failed = container_exit_code is not None and container_exit_code != 0
    if logged is None:
        return container_exit_code if container_failed else None
    if container_failed and logged == 0:
        return container_exit_code
    return logged


def _logged_exit_code(message: str | None) -> int | None:
    if not message:
        return None
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    code = parsed.get("exit_code") if isinstance(parsed, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


_PROGRESSING = (State.PREPARE, State.SUBMITTED, State.RUNNING)


def progress_events(state: State, status: ExecutionStatus) -> list[Event]:
    """What an instance in `state` learns from `status` (Styx's pod event translator: docs/runner.md#progress).

    Only PREPARE (legacy), SUBMITTED and RUNNING listen to the runner: in SUBMITTING the container may
    not exist yet, and later states have moved on.
    """
    if state not in _PROGRESSING:
        return []
    match status:
        case NoContainer():
            return [RunError(NO_CONTAINER_MESSAGE)]
        case Failed(message=message):
            return [RunError(message)]
        case Running():
            return [] if state is State.RUNNING else [Started()]
        case Exited(exit_code=exit_code):
            terminate = Terminate(exit_code=exit_code)
            return [terminate] if state is State.RUNNING else [Started(), terminate]
        case Pending():
            return []
    raise TypeError(f"not an execution status: {status!r}")


def text_tail(data: bytes, limit: int, cut: bool = False) -> str:
    """The last `limit` bytes of `data` as UTF-8 text. When bytes before them were dropped (`cut`, or `data`
    is longer), the cut may fall inside a character (continuation bytes are 10xxxxxx): the text then starts
    at the next whole one."""
    cut = cut or len(data) > limit
    data = data[-limit:]
    if cut:
        start = 0
        while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
            start += 1
        data = data[start:]
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------------------
# The runner


StatusListener = Callable[[str, ExecutionStatus], object]  # what a listener returns is ignored
# Keeps the end of an execution's output before its container is removed (the janitor's: into the store).
OutputKeeper = Callable[[ExecutionOutput], Awaitable[None]]


class ExecutionRunner(Protocol):
    """The part of a `Runner` that a host of instances uses: start, poll, stop and watch executions. On Ray a
    shard has only this, `PlacingRunner` (cluster/ray_runners.py), in front of the runner actors of the nodes."""

    async def start(self, spec: RunSpec) -> None:
        """Start the execution; a second start of the same execution id does nothing. Raises RunnerError."""

    async def status(self, execution_id: str) -> ExecutionStatus:
        """The execution's current status. Raises RunnerError when the runner cannot tell."""

    async def stop(self, execution_id: str) -> None:
        """Stop a running execution (halt, timeout); no error when it is not running or gone."""

    def watch(self, listener: StatusListener) -> None:
        """Push status changes to `listener`, called on the event loop that called watch()."""


class Runner(ExecutionRunner, Protocol):
    runner_id: str

    async def owned_executions(self) -> dict[str, ExecutionStatus]:
        """Every execution this installation has, by execution id (re-attach and reconcile after a restart)."""

    async def logs(self, execution_id: str, tail_bytes: int = DEFAULT_LOG_TAIL_BYTES) -> str:
        """The last `tail_bytes` bytes of the execution's output (stdout and stderr, as UTF-8) while it still
        exists. Raises RunnerError when it is gone."""

    async def cleanup(self, wanted_execution_ids: set[str], keep_output: OutputKeeper | None = None) -> None:
        """Remove what finished executions left behind, except those still wanted, after a grace period.
        Before removing an execution's container, hand the end of its output (STYX_OUTPUT_TAIL_BYTES) to
        `keep_output`; when that fails, the container stays for a later cleanup (for a while)."""

    async def close(self) -> None: ...


class StatusListeners:
    """Listeners registered through `Runner.watch`, each called on its own event loop, once per change.

    `publish` may be called from any thread. A status equal to the last one published for that execution
    is dropped, so replays (a reconnected event stream, a reconcile) reach listeners only when something
    changed: an exit is reported once.
    """

    def __init__(self) -> None:
        self._listeners: list[tuple[asyncio.AbstractEventLoop, StatusListener]] = []
        self._published: dict[str, ExecutionStatus] = {}
        self._lock = threading.Lock()

    def add(self, listener: StatusListener) -> None:
        """Must be called from a running event loop: that is where the listener will be called."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._listeners.append((loop, listener))

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def publish(self, execution_id: str, status: ExecutionStatus) -> None:
        with self._lock:
            if self._published.get(execution_id) == status:
                return
            self._published[execution_id] = status
            listeners = list(self._listeners)
        for loop, listener in listeners:
            try:
                loop.call_soon_threadsafe(listener, execution_id, status)
            except RuntimeError:  # that loop is closed: its owner went away without unregistering
                pass

    def forget(self, execution_id: str) -> None:
        """The execution is gone for good; a later status for the same id is news again."""
        with self._lock:
            self._published.pop(execution_id, None)
