"""DockerRunner: every execution is one container on a Docker Engine, driven through docker-py (docs/runner.md).

- The container's name is the execution id, so starting an execution twice never makes a second container.
- Labels carry the instance and an installation id; this runner sees and touches only containers with its
  own installation label, so several installations can share one engine.
- Progress comes from the engine's event stream (a background thread, reconnecting when the stream breaks,
  reconciling the full picture on every connect) and `owned_executions()` for a periodic reconcile.
- docker-py is synchronous: every call runs in a thread of this runner's own pool, bounded by the
  client's per-request timeout (settings.docker_call_timeout), so one stuck call never blocks the others.
- Containers get the least they need (docs/runner.md, "Limits and security defaults"): memory, pids and
  log limits, dropped capabilities, no-new-privileges, optionally a read-only root; images only from the
  allowed registries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound
from docker.errors import NotFound as EngineNotFound
from docker.types import LogConfig, Mount
from docker.types.daemon import CancellableStream
from docker.utils import kwargs_from_env

from styx_actors.clock import Clock, SystemClock
from styx_actors.docker_image import InvalidImageReference, disallowed_registry
from styx_actors.model import WorkflowInstance
from styx_actors.runners.base import (
    DEFAULT_LOG_TAIL_BYTES,
    TERMINATION_LOG_PATH,
    TERMINATION_MESSAGE_LIMIT,
    ExecutionStatus,
    Exited,
    Failed,
    NoContainer,
    OutputKeeper,
    Pending,
    RunnerError,
    Running,
    RunSpec,
    StatusListener,
    StatusListeners,
    termination_exit_code,
    text_tail,
)
from styx_actors.settings import Settings
from styx_actors.store.base import ExecutionOutput
from styx_actors.timeutil import UTC, to_millis

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ENGINE_URL = "unix:///var/run/docker.sock"
LABEL_INSTALLATION = "styx.installation"
LABEL_RUNNER_ID = "styx.runner-id"
LABEL_EXECUTION_ID = "styx.execution-id"
LABEL_WORKFLOW_INSTANCE = "styx.workflow-instance"
LABEL_COMPONENT_ID = "styx.component-id"
LABEL_WORKFLOW_ID = "styx.workflow-id"
LABEL_PARAMETER = "styx.parameter"
LABEL_TRIGGER_TYPE = "styx.trigger-type"
LABEL_TRIGGER_ID = "styx.trigger-id"
LABEL_TERMINATION_LOGGING = "styx.termination-logging"

# Docker's own rule for container names; it also keeps execution ids safe as file names.
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_MAX_PARALLEL_CALLS = 16
_RUNNING_STATES = frozenset({"running", "paused", "restarting"})
_WATCH_RETRY_MAX_SECONDS = 5.0
# Docker's multiplexed stream: each frame is a header (stream, 3 zero bytes, big-endian length), then data.
_FRAME_HEADER = struct.Struct(">BxxxL")
_READ_SIZE = 64 * 1024  # frames are read in pieces of at most this: a frame's length bounds nothing
# A container whose output could not be kept (the store is away) stays this long past its grace period,
# cleanup after cleanup, before it is removed anyway: a store that stays away must not fill the engine's disk.
OUTPUT_KEEP_RETRY_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class _OwnedContainer:
    execution_id: str
    status: ExecutionStatus
    created_at: datetime
    finished_at: datetime | None  # None while running or when it never ran
    instance: WorkflowInstance | None  # from its labels


class DockerRunner:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.runner_id = settings.docker_runner_id
        self.installation_id = settings.docker_installation_id
        self._settings = settings
        self._clock = clock or SystemClock()
        # DOCKER_HOST (and DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) as the docker CLI reads them; settings win.
        self._client_kwargs = cast(dict[str, Any], kwargs_from_env())  # a TypedDict in types-docker
        if settings.docker_host:
            self._client_kwargs["base_url"] = settings.docker_host
        self.engine_url: str = self._client_kwargs.get("base_url") or DEFAULT_ENGINE_URL
        self._termination_logs = settings.termination_log_dir or settings.data_dir / "termination-logs"
        self._api: docker.APIClient | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=_MAX_PARALLEL_CALLS, thread_name_prefix="docker-runner")
        self._starts: dict[str, asyncio.Future[None]] = {}
        self._listeners = StatusListeners()
        self._watcher: threading.Thread | None = None
        self._stream: CancellableStream | None = None
        self._closed = threading.Event()

    # -- Runner ---------------------------------------------------------------------------------------------

    async def start(self, spec: RunSpec) -> None:
        if not _CONTAINER_NAME.match(spec.execution_id):
            raise RunnerError(f"Invalid execution id {spec.execution_id!r}: it must match {_CONTAINER_NAME.pattern}")
        # Concurrent starts of one execution share one attempt (a state-manager tick may repeat a start).
        pending = self._starts.get(spec.execution_id)
        if pending is None:
            pending = asyncio.ensure_future(self._start(spec))
            self._starts[spec.execution_id] = pending
            pending.add_done_callback(lambda _: self._starts.pop(spec.execution_id, None))
        await asyncio.shield(pending)

    async def status(self, execution_id: str) -> ExecutionStatus:
        return await self._call(self._status_sync, execution_id)

    async def stop(self, execution_id: str) -> None:
        await self._call(self._stop_sync, execution_id)

    async def owned_executions(self) -> dict[str, ExecutionStatus]:
        owned = await self._call(self._owned_sync)
        return {container.execution_id: container.status for container in owned}

    def watch(self, listener: StatusListener) -> None:
        self._listeners.add(listener)
        if self._watcher is None:  # only the event loop's thread gets here
            self._watcher = threading.Thread(target=self._watch_events, name="docker-runner-events", daemon=True)
            self._watcher.start()

    async def logs(self, execution_id: str, tail_bytes: int = DEFAULT_LOG_TAIL_BYTES) -> str:
        if tail_bytes < 1:
            raise ValueError(f"tail_bytes must be at least 1, not {tail_bytes}")
        return await self._call(self._logs_sync, execution_id, tail_bytes)

    async def cleanup(self, wanted_execution_ids: set[str], keep_output: OutputKeeper | None = None) -> None:
        """Remove containers nothing wants any more, once they are older than the grace period.

        A finished container goes `container_grace_period` after it finished; a running or never-started
        one that no active instance wants (halted while its stop failed, say) goes that long after it was
        created, so a container started just after `wanted_execution_ids` was computed survives. The caller
        must pass every execution id its active instances still use (SUBMITTING, SUBMITTED, RUNNING), and so
        must not call this before it has recovered its instances after a restart.

        Just before a container goes, the end of its output is handed to `keep_output` (docs/runner.md,
        "Output after the container"); when that fails, the container stays for the next cleanup, for at
        most OUTPUT_KEEP_RETRY_WINDOW past its grace period.
        """
        if self._settings.keep_containers:
            return
        owned = await self._call(self._owned_sync)
        deadline = self._clock.now() - self._settings.container_grace_period
        for container in owned:
            if container.execution_id in wanted_execution_ids:
                continue
            removable_since = container.finished_at or container.created_at
            if removable_since > deadline:
                continue
            if keep_output is not None:
                may_wait = removable_since > deadline - OUTPUT_KEEP_RETRY_WINDOW
                if not await self._keep_output(container, keep_output, may_wait):
                    continue
            await self._call(self._remove_sync, container.execution_id)

    async def _keep_output(self, container: _OwnedContainer, keep_output: OutputKeeper, may_wait: bool) -> bool:
        """Hand the end of the container's output to `keep_output`. False when that failed and the container
        `may_wait` for the next cleanup to try again; True when it may go."""
        tail_bytes = self._settings.output_tail_bytes
        if not tail_bytes or container.instance is None:
            return True
        execution_id = container.execution_id
        ended_at = container.finished_at or self._clock.now()  # one that never finished ends now
        retention = self._settings.output_retention
        try:
            output = await self._call(self._logs_sync, execution_id, tail_bytes)
            expires_at = to_millis(ended_at + retention) if retention else None
            kept = ExecutionOutput(container.instance, execution_id, to_millis(ended_at), output, expires_at)
            await keep_output(kept)
        except Exception as exc:  # noqa: BLE001 - the engine, or whatever `keep_output` writes to (the store)
            if may_wait:
                log.warning("Output of %s not kept (%s); its container stays for the next cleanup", execution_id, exc)
                return False
            log.warning("Output of %s not kept (%s); its container is removed anyway", execution_id, exc)
        return True

    async def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except (OSError, DockerException):
                pass  # already broken: the watcher sees `_closed` when it wakes
        watcher = self._watcher
        if watcher is not None:
            await asyncio.to_thread(watcher.join, 10)
        self._executor.shutdown(wait=False, cancel_futures=True)
        api, self._api = self._api, None
        if api is not None:
            api.close()

    # -- engine access --------------------------------------------------------------------------------------

    def _client(self) -> docker.APIClient:
        """Connect lazily (and again after a failure), so an engine that comes up later is found."""
        with self._lock:
            if self._api is None:
                self._api = docker.APIClient(
                    **self._client_kwargs,
                    version="auto",
                    # Sub-second timeouts too: requests takes a float (types-docker says int).
                    timeout=self._settings.docker_call_timeout.total_seconds(),  # type: ignore[arg-type]
                    max_pool_size=_MAX_PARALLEL_CALLS + 1,  # + the event stream
                )
            return self._api

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking docker-py call in the pool; engine failures become RunnerErrors with clear messages."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._translating_errors, fn, *args)

    def _translating_errors(self, fn: Callable[..., T], *args: Any) -> T:
        """A dead or silent engine reads as a RunnerError naming the engine."""
        try:
            return fn(*args)
        except (RunnerError, ImageNotFound):
            raise
        except requests.exceptions.ConnectionError as exc:
            raise RunnerError(f"Docker Engine not reachable at {self.engine_url}: {exc}") from None
        except requests.exceptions.Timeout as exc:
            seconds = self._settings.docker_call_timeout.total_seconds()
            message = f"Docker Engine at {self.engine_url} did not answer within {seconds:g} s: {exc}"
            raise RunnerError(message) from None
        except APIError as exc:  # before RequestException, which it extends
            raise RunnerError(f"Docker Engine at {self.engine_url} failed: {exc.explanation}") from None
        except requests.exceptions.RequestException as exc:
            raise RunnerError(f"Docker Engine at {self.engine_url} failed: {exc}") from None
        except DockerException as exc:  # raised while connecting: "Error while fetching server API version"
            raise RunnerError(f"Docker Engine not reachable at {self.engine_url}: {exc}") from None

    # -- start ----------------------------------------------------------------------------------------------

    async def _start(self, spec: RunSpec) -> None:
        try:
            image = spec.image_reference
        except InvalidImageReference as exc:
            raise RunnerError(f"Invalid image name {spec.image}: {', '.join(exc.reasons)}") from None
        # Also checked when workflows are saved and triggered; here for those stored before the list was set.
        registry = disallowed_registry(image, self._settings.allowed_registries)
        if registry is not None:
            allowed = ", ".join(self._settings.allowed_registries)
            raise RunnerError(f"Image registry {registry} is not allowed (allowed: {allowed}): {image}")
        try:
            await self._call(self._create_and_start, spec, image)
            return
        except ImageNotFound:
            await self._pull(image)
        try:
            await self._call(self._create_and_start, spec, image)
        except ImageNotFound as exc:  # removed again since the pull
            raise RunnerError(f"Failed to pull image {image}: {exc.explanation}") from None

    def _create_and_start(self, spec: RunSpec, image: str) -> None:
        api = self._client()
        # Mounted even when termination logging is off (and then not read), so that a job which always
        # writes $STYX_TERMINATION_LOG can, whatever its user, as on Kubernetes.
        log_file = self._termination_log(spec.execution_id)
        try:
            log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            log_file.touch(exist_ok=True)  # never truncate: a repeated start must not wipe what a job wrote
            log_file.chmod(0o666)  # any container user may write it; the directory keeps host users out
        except OSError as exc:
            raise RunnerError(f"Cannot create the termination log {log_file}: {exc}") from None
        try:
            api.create_container(
                image=image,
                command=list(spec.args) or None,  # no args: the image's own CMD
                name=spec.execution_id,
                environment=dict(spec.env),
                labels=self._labels(spec),
                user=self._settings.container_user or "",
                host_config=self._host_config(api, log_file),
            )
        except APIError as exc:
            if exc.status_code == 409:  # a container with this name exists: this execution was started
                self._resume_existing(api, spec.execution_id)
                return
            log_file.unlink(missing_ok=True)
            if isinstance(exc, ImageNotFound):
                raise
            raise RunnerError(f"Failed to create container {spec.execution_id}: {exc.explanation}") from None
        self._start_container(api, spec.execution_id)

    def _resume_existing(self, api: docker.APIClient, execution_id: str) -> None:
        info = self._inspect_owned(api, execution_id)
        if info is None:
            raise RunnerError(f"A container named {execution_id} exists that this installation does not own")
        # Start only one that never ran: starting an exited container would run the execution again.
        if info["State"]["Status"] == "created":
            self._start_container(api, execution_id)

    def _start_container(self, api: docker.APIClient, execution_id: str) -> None:
        try:
            api.start(execution_id)
        except APIError as exc:
            raise RunnerError(f"Failed to start container {execution_id}: {exc.explanation}") from None

    async def _pull(self, image: str) -> None:
        # docker-py gives pulls no timeout: past ours the start fails while the pull goes on in its thread,
        # so a retry finds the image.
        seconds = self._settings.image_pull_timeout.total_seconds()
        try:
            await asyncio.wait_for(self._call(self._pull_sync, image), seconds)
        except TimeoutError:
            raise RunnerError(f"Failed to pull image {image}: not done within {seconds:g} s") from None

    def _pull_sync(self, image: str) -> None:
        try:
            for progress in self._client().pull(image, stream=True, decode=True):
                if "error" in progress:
                    raise RunnerError(f"Failed to pull image {image}: {progress['error']}")
        except APIError as exc:
            raise RunnerError(f"Failed to pull image {image}: {exc.explanation}") from None

    def _labels(self, spec: RunSpec) -> dict[str, str]:
        return {
            LABEL_INSTALLATION: self.installation_id,
            LABEL_RUNNER_ID: self.runner_id,
            LABEL_EXECUTION_ID: spec.execution_id,
            LABEL_WORKFLOW_INSTANCE: spec.instance.key(),
            LABEL_COMPONENT_ID: spec.instance.workflow_id.component_id,
            LABEL_WORKFLOW_ID: spec.instance.workflow_id.id,
            LABEL_PARAMETER: spec.instance.parameter,
            LABEL_TRIGGER_TYPE: spec.trigger.type.value,
            LABEL_TRIGGER_ID: spec.trigger.trigger_id,
            LABEL_TERMINATION_LOGGING: "true" if spec.termination_logging else "false",
        }

    def _host_config(self, api: docker.APIClient, log_file: Path) -> dict[str, Any]:
        settings = self._settings
        cpus = settings.container_cpu_limit
        read_only = settings.container_read_only_root
        return api.create_host_config(
            mounts=[Mount(target=TERMINATION_LOG_PATH, source=str(log_file), type="bind")],
            mem_limit=settings.container_memory_limit,
            memswap_limit=settings.container_memory_limit,  # the limit includes swap: exceeding it is an OOM kill
            nano_cpus=int(cpus * 1e9) if cpus else None,
            pids_limit=settings.container_pids_limit or None,
            # json-file whatever the engine's default driver: `logs` needs a driver it can read back.
            log_config=LogConfig(
                type=LogConfig.types.JSON,
                config={"max-size": settings.container_log_max_size, "max-file": str(settings.container_log_max_files)},
            ),
            cap_drop=settings.container_cap_drop or None,
            read_only=read_only,
            # Executable (jobs unpack native libraries there), writable by any user, bounded.
            tmpfs={"/tmp": f"rw,nosuid,nodev,mode=1777,size={settings.container_tmp_size}"} if read_only else None,
            network_mode=settings.container_network,
            security_opt=["no-new-privileges"],
            privileged=False,
        )

    # -- status ---------------------------------------------------------------------------------------------

    def _inspect_owned(self, api: docker.APIClient, execution_id: str) -> dict[str, Any] | None:
        """The container of this execution, if it exists and belongs to this installation."""
        try:
            info = api.inspect_container(execution_id)
        except EngineNotFound:
            return None
        labels = info["Config"].get("Labels") or {}
        if labels.get(LABEL_INSTALLATION) != self.installation_id or labels.get(LABEL_EXECUTION_ID) != execution_id:
            return None
        return info

    def _status_sync(self, execution_id: str) -> ExecutionStatus:
        info = self._inspect_owned(self._client(), execution_id)
        return NoContainer() if info is None else self._status_of(execution_id, info)

    def _status_of(self, execution_id: str, info: dict[str, Any]) -> ExecutionStatus:
        state = info["State"]
        status = state["Status"]
        if status == "created":
            error = state.get("Error")
            return Failed(f"Failed to start container {execution_id}: {error}") if error else Pending()
        if status in _RUNNING_STATES:
            return Running()
        logging_on = (info["Config"].get("Labels") or {}).get(LABEL_TERMINATION_LOGGING) == "true"
        # Read with logging off too, so that an oversized log is emptied as soon as the job cannot write it.
        message = self._read_termination_log(execution_id)
        exit_code = termination_exit_code(state.get("ExitCode"), logging_on, message)
        return Exited(exit_code=exit_code, oom=bool(state.get("OOMKilled")))

    def _owned_sync(self) -> list[_OwnedContainer]:
        api = self._client()
        owned = []
        for summary in api.containers(all=True, filters={"label": f"{LABEL_INSTALLATION}={self.installation_id}"}):
            labels = summary.get("Labels") or {}
            execution_id = labels.get(LABEL_EXECUTION_ID)
            if not execution_id:
                continue
            created_at = datetime.fromtimestamp(summary["Created"], tz=UTC)
            instance = _labelled_instance(labels)
            if summary["State"] in _RUNNING_STATES:
                owned.append(_OwnedContainer(execution_id, Running(), created_at, None, instance))
                continue
            info = self._inspect_owned(api, execution_id)
            if info is not None:  # None: removed since the listing
                finished_at = _engine_time(info["State"].get("FinishedAt"))
                status = self._status_of(execution_id, info)
                owned.append(_OwnedContainer(execution_id, status, created_at, finished_at, instance))
        return owned

    def _logs_sync(self, execution_id: str, tail_bytes: int) -> str:
        """The last `tail_bytes` bytes of the output, streamed: never more than about that much in memory.

        Docker's `tail` counts lines, and every line holds at least one byte, so the last `tail_bytes` lines
        hold the last `tail_bytes` bytes: asking for them bounds the transfer without losing any. docker-py's
        own stream would lift the socket timeout, so the request is made here, bounded like every call.
        """
        api = self._client()
        if self._inspect_owned(api, execution_id) is None:
            raise RunnerError(f"No container for execution {execution_id}")
        url = f"{api.base_url}/v{api.api_version}/containers/{quote(execution_id)}/logs"
        params = {"stdout": 1, "stderr": 1, "tail": tail_bytes}
        with api.get(url, params=params, stream=True, timeout=api.timeout) as response:
            if response.status_code == 404:
                raise RunnerError(f"No container for execution {execution_id}")
            response.raise_for_status()
            tail = _Tail(tail_bytes)
            for piece in _frame_payloads(response.raw):
                tail.add(piece)
        return tail.text()

    # -- stop and removal -----------------------------------------------------------------------------------

    def _stop_sync(self, execution_id: str) -> None:
        api = self._client()
        info = self._inspect_owned(api, execution_id)
        if info is None or info["State"]["Status"] not in _RUNNING_STATES:
            return
        try:
            api.stop(execution_id, timeout=int(self._settings.container_stop_timeout.total_seconds()))
        except APIError as exc:
            if exc.status_code not in (404, 409):  # gone or not running: the goal is reached
                raise RunnerError(f"Failed to stop container {execution_id}: {exc.explanation}") from None

    def _remove_sync(self, execution_id: str) -> None:
        try:
            self._client().remove_container(execution_id, force=True)
        except EngineNotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise RunnerError(f"Failed to remove container {execution_id}: {exc.explanation}") from None
        self._termination_log(execution_id).unlink(missing_ok=True)

    # -- termination log ------------------------------------------------------------------------------------

    def _termination_log(self, execution_id: str) -> Path:
        return self._termination_logs / execution_id

    def _read_termination_log(self, execution_id: str) -> str | None:
        """The termination message of an execution that ended; None when there is none.

        A log over TERMINATION_MESSAGE_LIMIT bytes is no message: it is not read (only its first bytes, to
        tell), but emptied with a warning, so that it takes no disk space until the container is removed
        and reads as absent ever after. Only called once the job can no longer write it.
        """
        path = self._termination_log(execution_id)
        try:
            with path.open("rb+") as file:
                message = file.read(TERMINATION_MESSAGE_LIMIT + 1)
                if len(message) <= TERMINATION_MESSAGE_LIMIT:
                    return message.decode("utf-8", errors="replace")
                size = os.fstat(file.fileno()).st_size
                file.truncate(0)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RunnerError(f"Cannot read the termination log {path}: {exc}") from None
        log.warning(
            "Termination log of %s ignored and emptied: %d bytes, more than the %d a message may have",
            execution_id,
            size,
            TERMINATION_MESSAGE_LIMIT,
        )
        return None

    # -- event stream ---------------------------------------------------------------------------------------

    def _watch_events(self) -> None:
        """Follow the engine's container events until closed; on every (re)connect, publish the full picture."""
        retry_delay = 0.1
        while not self._closed.is_set():
            try:
                stream = self._client().events(
                    decode=True,
                    filters={
                        "type": "container",
                        "label": f"{LABEL_INSTALLATION}={self.installation_id}",
                        "event": ["start", "die", "destroy"],
                    },
                )
                self._stream = stream
                if self._closed.is_set():  # close() ran before the stream existed
                    stream.close()
                    break
                # Subscribed first, listed second: nothing falls between the two.
                for container in self._owned_sync():
                    self._listeners.publish(container.execution_id, container.status)
                retry_delay = 0.1
                for event in stream:
                    self._on_event(event)
            except Exception as exc:  # noqa: BLE001 - the engine went away or the stream broke: reconnect
                if not self._closed.is_set():
                    log.warning("Docker event stream from %s broke (%s); reconnecting", self.engine_url, exc)
            self._closed.wait(retry_delay)
            retry_delay = min(retry_delay * 2, _WATCH_RETRY_MAX_SECONDS)

    def _on_event(self, event: dict[str, Any]) -> None:
        """An event says that something changed, not what is true now: the container is read again.

        So statuses go out in the order they happened, even when buffered events arrive after a reconcile
        that already saw their outcome, and the exit code reflects the termination log and OOM state.
        """
        execution_id = event.get("Actor", {}).get("Attributes", {}).get(LABEL_EXECUTION_ID)
        if not execution_id:
            return
        if event.get("Action") == "destroy":
            self._listeners.forget(execution_id)
        else:
            self._listeners.publish(execution_id, self._status_sync(execution_id))


class _Tail:
    """The last `limit` bytes of what is added, holding little more than that."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pieces: deque[bytes] = deque()
        self._size = 0
        self._dropped = False

    def add(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._size += len(piece)
        while self._size - len(self._pieces[0]) >= self._limit:
            self._size -= len(self._pieces.popleft())
            self._dropped = True

    def text(self) -> str:
        return text_tail(b"".join(self._pieces), self._limit, cut=self._dropped)


class _Readable(Protocol):
    """A binary stream as far as the frame reader needs one (urllib3's HTTPResponse, io.BytesIO)."""

    def read(self, size: int, /) -> bytes: ...


def _frame_payloads(stream: _Readable) -> Iterator[bytes]:
    """The data of Docker's multiplexed stdout/stderr frames, in pieces of at most _READ_SIZE bytes."""
    while header := _read_exactly(stream, _FRAME_HEADER.size):
        if len(header) < _FRAME_HEADER.size:
            return  # cut short: what came before stands
        _, remaining = _FRAME_HEADER.unpack(header)
        while remaining:
            piece = _read_exactly(stream, min(remaining, _READ_SIZE))
            if not piece:
                return
            remaining -= len(piece)
            yield piece


def _read_exactly(stream: _Readable, size: int) -> bytes:
    """`size` bytes, fewer only at the end of the stream."""
    data = stream.read(size)
    while data and len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _labelled_instance(labels: dict[str, str]) -> WorkflowInstance | None:
    """The instance a container's labels name (every container this runner creates has them)."""
    try:
        return WorkflowInstance.of(labels[LABEL_COMPONENT_ID], labels[LABEL_WORKFLOW_ID], labels[LABEL_PARAMETER])
    except KeyError:
        return None


_FRACTION = re.compile(r"\.(\d+)")


def _engine_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; `0001-01-01T00:00:00Z` means never."""
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(_FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1))
