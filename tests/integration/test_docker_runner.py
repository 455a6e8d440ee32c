"""DockerRunner against a real Docker Engine and the local image built by scripts/setup-docker.sh.

Each test uses its own installation id, so its runner sees only its own containers; every container a
test made is removed afterwards by that label, pass or fail.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest
from docker.errors import DockerException
from docker.utils import kwargs_from_env

from styx_actors.clock import ManualClock
from styx_actors.model import ExecutionDescription, RunState, State, StateData, Trigger, WorkflowInstance
from styx_actors.runners import make_runner
from styx_actors.runners.base import (
    DEFAULT_LOG_TAIL_BYTES,
    MAX_LOG_TAIL_BYTES,
    TERMINATION_MESSAGE_LIMIT,
    ExecutionStatus,
    Exited,
    Failed,
    NoContainer,
    RunnerError,
    Running,
    RunSpec,
    build_run_spec,
)
from styx_actors.runners.docker import DEFAULT_ENGINE_URL, LABEL_INSTALLATION, DockerRunner
from styx_actors.settings import Settings
from styx_actors.timeutil import UTC
from tests.conftest import wait_until

TEST_IMAGE = "styx-test/busybox:latest"
T = TypeVar("T")


def _engine() -> docker.APIClient | None:
    try:
        api = docker.APIClient(**kwargs_from_env(), version="auto", timeout=10)  # where the runner looks
        api.ping()
        return api
    except DockerException:
        return None


_api = _engine()
pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(_api is None, reason="no Docker Engine answers (run scripts/setup-docker.sh)"),
]


@pytest.fixture(scope="module")
def engine() -> docker.APIClient:
    assert _api is not None
    try:
        _api.inspect_image(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{TEST_IMAGE} is missing: run scripts/setup-docker.sh")
    return _api


@pytest.fixture
def installation(engine: docker.APIClient) -> Iterator[str]:
    installation_id = f"styx-test-{uuid.uuid4().hex[:10]}"
    yield installation_id
    for container in engine.containers(all=True, filters={"label": f"{LABEL_INSTALLATION}={installation_id}"}):
        engine.remove_container(container["Id"], force=True)


@pytest.fixture
def settings(installation: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        docker_installation_id=installation,
        docker_runner_id="test-runner",
        environment="testing",
        container_stop_timeout=timedelta(seconds=1),
        container_grace_period=timedelta(seconds=60),
        docker_call_timeout=timedelta(seconds=30),
    )


@pytest.fixture
def clock() -> ManualClock:
    # Docker stamps containers with real time; the runner compares them with this clock.
    return ManualClock(datetime.now(UTC))


@pytest.fixture
async def runner(settings: Settings, clock: ManualClock) -> AsyncIterator[DockerRunner]:
    docker_runner = DockerRunner(settings, clock)
    yield docker_runner
    await docker_runner.close()


def spec_for(
    args: list[str],
    termination_logging: bool = False,
    env: dict[str, str] | None = None,
    image: str = TEST_IMAGE,
    parameter: str = "2016-03-14",
) -> RunSpec:
    """A spec built the way the instance actor builds it, from a SUBMITTING state."""
    description = ExecutionDescription(
        docker_image=image, docker_args=args, docker_termination_logging=termination_logging, env=env or {}
    )
    data = StateData(
        trigger=Trigger.adhoc("ad-hoc-cli-1-2"),
        execution_id=f"styx-run-{uuid.uuid4()}",
        execution_description=description,
        tries=1,
    )
    instance = WorkflowInstance.of("styx", "job", parameter)
    state = RunState(workflow_instance=instance, state=State.SUBMITTING, timestamp=0, data=data)
    return build_run_spec(state, "testing")


async def eventually(probe: Callable[[], T | Awaitable[T]], done: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Poll `probe` (plain or async) until `done(value)`; returns that value (tests.conftest.wait_until)."""
    seen: list[T] = []

    async def reached() -> bool:
        value = probe()
        seen[:] = [await value if inspect.isawaitable(value) else value]
        return done(seen[0])

    await wait_until(reached, timeout, message="the probed value")
    return seen[0]


async def run_to_exit(runner: DockerRunner, spec: RunSpec) -> ExecutionStatus:
    await runner.start(spec)
    return await eventually(lambda: runner.status(spec.execution_id), lambda s: isinstance(s, Exited))


def containers_of(engine: docker.APIClient, installation: str) -> list[dict]:
    return engine.containers(all=True, filters={"label": f"{LABEL_INSTALLATION}={installation}"})


# -- exit codes ---------------------------------------------------------------------------------------------


async def test_exit_codes(runner: DockerRunner) -> None:
    codes = [0, 1, 20, 50]
    specs = [spec_for(["sh", "-c", f"exit {code}"]) for code in codes]
    statuses = await asyncio.gather(*(run_to_exit(runner, spec) for spec in specs))
    assert statuses == [Exited(code) for code in codes]


@pytest.mark.parametrize("image", ["styx-test/busybox", TEST_IMAGE])
async def test_untagged_image_runs_latest(runner: DockerRunner, image: str) -> None:
    assert await run_to_exit(runner, spec_for(["true"], image=image)) == Exited(0)


async def test_termination_log_rules(runner: DockerRunner) -> None:
    def writes(message: str, exit_code: int) -> list[str]:
        return ["sh", "-c", f"printf '%s' '{message}' > \"$STYX_TERMINATION_LOG\"; exit {exit_code}"]

    cases: list[tuple[list[str], bool, int | None]] = [
        (writes('{"exit_code": 20}', 0), True, 20),  # the message decides ...
        (writes('{"exit_code": 50}', 1), True, 50),
        (writes('{"exit_code": 0}', 0), True, 0),
        (writes('{"exit_code": 0}', 1), True, 1),  # ... but a failed container cannot claim success
        (["sh", "-c", "exit 0"], True, None),  # no message: unknown ...
        (["sh", "-c", "exit 3"], True, 3),  # ... unless the container failed
        (writes("not json", 0), True, None),
        (writes('{"exit_code": 0}', 7), False, 7),  # logging off: the file is ignored
    ]
    specs = [spec_for(args, termination_logging=logging) for args, logging, _ in cases]
    statuses = await asyncio.gather(*(run_to_exit(runner, spec) for spec in specs))
    assert statuses == [Exited(expected) for _, _, expected in cases]


async def test_an_oversized_termination_log_is_no_message_and_is_emptied(
    runner: DockerRunner, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # A valid message followed by blanks: its first bytes parse, but the log is over the limit.
    padding = TERMINATION_MESSAGE_LIMIT + 1
    job = f"""
    echo '{{"exit_code": 3}}' > "$STYX_TERMINATION_LOG"
    head -c {padding} /dev/zero | tr '\\0' ' ' >> "$STYX_TERMINATION_LOG"
    """
    spec = spec_for(["sh", "-c", job], termination_logging=True)
    log_file = settings.data_dir / "termination-logs" / spec.execution_id
    with caplog.at_level(logging.WARNING, logger="styx_actors.runners.docker"):
        assert await run_to_exit(runner, spec) == Exited(None)  # no message, and the container exited 0
    assert log_file.stat().st_size == 0  # emptied at once, not kept until the container goes
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(spec.execution_id in warning and "ignored and emptied" in warning for warning in warnings), warnings
    assert await runner.status(spec.execution_id) == Exited(None)  # and it stays absent


async def test_termination_logs_in_their_own_directory(
    settings: Settings, clock: ManualClock, engine: docker.APIClient, tmp_path: Path
) -> None:
    directory = tmp_path / "termination-logs-elsewhere"
    spec = spec_for(["sh", "-c", 'echo \'{"exit_code": 5}\' > "$STYX_TERMINATION_LOG"'], termination_logging=True)
    status, _, info = await run_confined(settings, clock, engine, spec, termination_log_dir=directory)
    assert status == Exited(5)
    assert [m["Source"] for m in info["Mounts"]] == [str(directory / spec.execution_id)]
    assert not (settings.data_dir / "termination-logs").exists()


async def test_out_of_memory_is_reported(settings: Settings, clock: ManualClock) -> None:
    limited = DockerRunner(settings.model_copy(update={"container_memory_limit": "16m"}), clock)
    try:
        # The shell itself grows past the limit, so the main process is the one killed.
        spec = spec_for(["sh", "-c", 'x=a; while true; do x="$x$x"; done'])
        assert await run_to_exit(limited, spec) == Exited(137, oom=True)
    finally:
        await limited.close()


# -- what the container sees --------------------------------------------------------------------------------


async def test_env_and_args_inside_the_container(runner: DockerRunner) -> None:
    spec = spec_for(
        ["sh", "-c", 'env; for arg in "$@"; do echo "arg=$arg"; done', "sh", "{}", "--date={}"],
        env={"FOO": "bar", "STYX_PARAMETER": "overridden"},
        parameter="2024-01-02",
    )
    assert await run_to_exit(runner, spec) == Exited(0)
    output = (await runner.logs(spec.execution_id)).splitlines()

    assert ["arg=2024-01-02", "arg=--date={}"] == [line for line in output if line.startswith("arg=")]
    env = dict(line.split("=", 1) for line in output if "=" in line and not line.startswith("arg="))
    assert env["FOO"] == "bar"
    assert env["STYX_PARAMETER"] == "2024-01-02"
    assert env["STYX_COMPONENT_ID"] == "styx"
    assert env["STYX_WORKFLOW_ID"] == "job"
    assert env["STYX_EXECUTION_ID"] == spec.execution_id
    assert env["STYX_DOCKER_IMAGE"] == TEST_IMAGE
    assert env["STYX_DOCKER_ARGS"] == spec.env["STYX_DOCKER_ARGS"]
    assert env["STYX_TRIGGER_ID"] == "ad-hoc-cli-1-2"
    assert env["STYX_TRIGGER_TYPE"] == "adhoc"
    assert env["STYX_ENVIRONMENT"] == "testing"
    assert env["STYX_LOGGING"] == "structured"
    assert env["STYX_EXECUTION_TRIES"] == "1"
    assert env["STYX_TERMINATION_LOG"] == "/dev/termination-log"


async def test_labels_limits_and_security_defaults(
    engine: docker.APIClient, settings: Settings, clock: ManualClock, installation: str
) -> None:
    configured = settings.model_copy(
        update={"container_memory_limit": "64m", "container_cpu_limit": 0.5, "container_user": "1000:1000"}
    )
    limited = DockerRunner(configured, clock)
    try:
        # Termination logging off: the file is mounted all the same, and a non-root job can write it.
        spec = spec_for(["sh", "-c", 'id -u > "$STYX_TERMINATION_LOG"'], termination_logging=False)
        assert await run_to_exit(limited, spec) == Exited(0)
        info = engine.inspect_container(spec.execution_id)
    finally:
        await limited.close()

    assert info["Config"]["Labels"] == {
        "styx.installation": installation,
        "styx.runner-id": "test-runner",
        "styx.execution-id": spec.execution_id,
        "styx.workflow-instance": "styx#job#2016-03-14",
        "styx.component-id": "styx",
        "styx.workflow-id": "job",
        "styx.parameter": "2016-03-14",
        "styx.trigger-type": "adhoc",
        "styx.trigger-id": "ad-hoc-cli-1-2",
        "styx.termination-logging": "false",
    }
    host = info["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["Privileged"] is False
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert info["Config"]["User"] == "1000:1000"
    # The only mount is the termination log.
    assert [(m["Source"], m["Destination"]) for m in info["Mounts"]] == [
        (str(configured.data_dir / "termination-logs" / spec.execution_id), "/dev/termination-log")
    ]
    assert (configured.data_dir / "termination-logs" / spec.execution_id).read_text().strip() == "1000"


# -- confinement (docs/runner.md, "Limits and security defaults") -------------------------------------------

# Bits of the capabilities in /proc/<pid>/status masks (linux/capability.h).
CAPABILITY_BITS = {"CHOWN": 0, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}
# What the job reports about its own confinement, read from the kernel (cgroup v1 or v2 paths).
REPORT_CONFINEMENT = """
grep -E '^(CapBnd|NoNewPrivs):' /proc/self/status
echo "pids.max: $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
echo "memory.max: $(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
mknod /tmp/null c 1 3 2>/dev/null && echo "mknod: allowed" || echo "mknod: refused"
touch /written-to-root 2>/dev/null && echo "root filesystem: writable" || echo "root filesystem: read-only"
"""


def numbered_lines(count: int, width: int) -> tuple[list[str], str]:
    """The args of a job printing `count` numbered lines of `width` x's, and the output it prints."""
    script = f"""
    pad=$(head -c {width} /dev/zero | tr '\\0' x)
    i=0; while [ $i -lt {count} ]; do echo "$i $pad"; i=$((i + 1)); done
    """
    return ["sh", "-c", script], "".join(f"{i} {'x' * width}\n" for i in range(count))


async def run_confined(
    settings: Settings, clock: ManualClock, engine: docker.APIClient, spec: RunSpec, **updates: Any
) -> tuple[ExecutionStatus, str, dict[str, Any]]:
    """Run `spec` to its end on a runner with `updates` to the settings: (status, output, container info)."""
    confined = DockerRunner(settings.model_copy(update=updates), clock)
    try:
        status = await run_to_exit(confined, spec)
        return status, await confined.logs(spec.execution_id), engine.inspect_container(spec.execution_id)
    finally:
        await confined.close()


def reported(output: str) -> dict[str, str]:
    """`name: value` lines of REPORT_CONFINEMENT's output."""
    pairs = (line.split(":", 1) for line in output.splitlines() if ":" in line)
    return {name: value.strip() for name, value in pairs}


async def test_default_confinement(runner: DockerRunner, engine: docker.APIClient) -> None:
    spec = spec_for(["sh", "-c", REPORT_CONFINEMENT])
    assert await run_to_exit(runner, spec) == Exited(0)
    report = reported(await runner.logs(spec.execution_id))
    host = engine.inspect_container(spec.execution_id)["HostConfig"]

    # Seen by the job, so enforced by the kernel (the image's user: root here).
    bounding = int(report["CapBnd"], 16)
    assert [cap for cap, bit in CAPABILITY_BITS.items() if bounding & (1 << bit)] == ["CHOWN"]
    assert report["mknod"] == "refused"
    assert report["NoNewPrivs"] == "1"
    assert report["pids.max"] == "1024"
    assert report["memory.max"] == str(2 << 30)
    assert report["root filesystem"] == "writable"  # read-only is opt-in
    # As the engine holds them.
    assert host["CapDrop"] == ["NET_RAW", "MKNOD", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert (host["PidsLimit"], host["Memory"], host["MemorySwap"]) == (1024, 2 << 30, 2 << 30)
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert host["ReadonlyRootfs"] is False and not host.get("Tmpfs")


async def test_all_capabilities_dropped(settings: Settings, clock: ManualClock, engine: docker.APIClient) -> None:
    spec = spec_for(["sh", "-c", REPORT_CONFINEMENT + 'chown 1 /tmp 2>/dev/null || echo "chown: refused"'])
    status, output, info = await run_confined(settings, clock, engine, spec, container_cap_drop=["ALL"])
    assert status == Exited(0)
    report = reported(output)
    assert report["CapBnd"] == "0000000000000000"  # Kubernetes' "restricted" profile: root without powers
    assert report["chown"] == "refused"
    assert info["HostConfig"]["CapDrop"] == ["ALL"]


async def test_pids_limit_stops_a_fork_bomb(settings: Settings, clock: ManualClock, engine: docker.APIClient) -> None:
    spec = spec_for(["sh", "-c", "for i in $(seq 50); do sleep 60 & done; echo all forked"])
    status, output, info = await run_confined(settings, clock, engine, spec, container_pids_limit=8)
    assert "can't fork" in output and "all forked" not in output
    assert isinstance(status, Exited) and status.exit_code != 0
    assert info["HostConfig"]["PidsLimit"] == 8


async def test_read_only_root_with_a_bounded_writable_tmp(
    settings: Settings, clock: ManualClock, engine: docker.APIClient
) -> None:
    # Exits 7 (through the termination log, still writable) only when every expectation holds.
    job = """
    touch /written-to-root 2>/dev/null && exit 1
    touch /tmp/scratch || exit 2
    dd if=/dev/zero of=/tmp/big bs=1k count=2048 2>/dev/null && exit 3
    echo '{"exit_code": 7}' > "$STYX_TERMINATION_LOG"
    """
    spec = spec_for(["sh", "-c", job], termination_logging=True)
    status, _, info = await run_confined(
        settings, clock, engine, spec, container_read_only_root=True, container_tmp_size="1m"
    )
    assert status == Exited(7)
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["HostConfig"]["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,mode=1777,size=1m"}


async def test_json_file_logs_are_rotated_within_their_bounds(
    settings: Settings, clock: ManualClock, engine: docker.APIClient
) -> None:
    args, output = numbered_lines(1000, 1000)  # 1 MB
    spec = spec_for(args)
    status, _, info = await run_confined(
        settings, clock, engine, spec, container_log_max_size="100k", container_log_max_files=2
    )
    assert status == Exited(0)
    limited = DockerRunner(settings, clock)
    try:
        kept = await limited.logs(spec.execution_id, MAX_LOG_TAIL_BYTES)
    finally:
        await limited.close()
    # The end of the output, and only the end: the oldest files were rotated away.
    kept_lines = kept.splitlines(keepends=True)
    assert 0 < len(kept_lines) < 1000 and kept_lines == output.splitlines(keepends=True)[-len(kept_lines) :]
    assert len(kept) <= 2 * 100 * 1024  # two files of 100 KiB (of JSON, so less output) at most
    assert info["HostConfig"]["LogConfig"]["Config"] == {"max-size": "100k", "max-file": "2"}


# -- the end of the output ----------------------------------------------------------------------------------


async def test_logs_return_the_end_of_the_output_without_holding_all_of_it(runner: DockerRunner) -> None:
    args, output = numbered_lines(8000, 1000)  # 8 MB, all of it kept by the default json-file bounds
    spec = spec_for(args)
    assert await run_to_exit(runner, spec) == Exited(0)

    assert await runner.logs(spec.execution_id, 100) == output[-100:]
    assert await runner.logs(spec.execution_id, len(output) * 2) == output
    tracemalloc.start()
    try:
        tail = await runner.logs(spec.execution_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tail == output[-DEFAULT_LOG_TAIL_BYTES:]
    # Reading all 8 MB and cutting afterwards would hold it twice over (bytes, then text).
    assert peak < 6 * DEFAULT_LOG_TAIL_BYTES, peak


async def test_logs_tail_of_one_long_line_starts_at_a_whole_character(runner: DockerRunner) -> None:
    # 300 kB without a newline, then three two-byte characters: the last 5 bytes start inside one.
    spec = spec_for(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; printf '\\303\\251\\303\\251\\303\\251'"])
    assert await run_to_exit(runner, spec) == Exited(0)
    assert await runner.logs(spec.execution_id, 5) == "éé"
    assert await runner.logs(spec.execution_id, 7) == "xééé"


# -- failures to start --------------------------------------------------------------------------------------


async def test_missing_image_is_a_runner_error(
    runner: DockerRunner, settings: Settings, engine: docker.APIClient, installation: str
) -> None:
    spec = spec_for(["true"], image="styx-test/no-such-image", termination_logging=True)
    with pytest.raises(RunnerError, match=r"^Failed to pull image styx-test/no-such-image:latest: "):
        await runner.start(spec)
    assert containers_of(engine, installation) == []
    assert not (settings.data_dir / "termination-logs" / spec.execution_id).exists()


async def test_an_image_from_a_registry_not_allowed_is_a_runner_error(
    settings: Settings, clock: ManualClock, engine: docker.APIClient, installation: str
) -> None:
    # The test image names no registry: it is Docker Hub's (docker.io) as far as the allow-list goes.
    allowing = DockerRunner(settings.model_copy(update={"allowed_registries": ["registry.example:5000"]}), clock)
    try:
        message = r"^Image registry docker\.io is not allowed \(allowed: registry\.example:5000\): "
        with pytest.raises(RunnerError, match=message):
            await allowing.start(spec_for(["true"]))
        # Refused before the engine is asked for anything: no pull, no container.
        with pytest.raises(RunnerError, match=r"^Image registry 10\.0\.0\.1:80 is not allowed"):
            await allowing.start(spec_for(["true"], image="10.0.0.1:80/internal/probe"))
        assert containers_of(engine, installation) == []
    finally:
        await allowing.close()
    hub = DockerRunner(settings.model_copy(update={"allowed_registries": ["docker.io"]}), clock)
    try:
        assert await run_to_exit(hub, spec_for(["true"])) == Exited(0)
    finally:
        await hub.close()


async def test_invalid_image_name_is_a_runner_error(runner: DockerRunner) -> None:
    with pytest.raises(RunnerError, match=r"^Invalid image name Not::An/Image: "):
        await runner.start(spec_for(["true"], image="Not::An/Image"))


async def test_command_that_cannot_start_is_a_runner_error(runner: DockerRunner) -> None:
    spec = spec_for(["no-such-command"])
    with pytest.raises(RunnerError, match=f"^Failed to start container {spec.execution_id}: .*no-such-command"):
        await runner.start(spec)
    status = await runner.status(spec.execution_id)
    assert isinstance(status, Failed) and "no-such-command" in status.message


async def test_unwritable_data_dir_is_a_runner_error(settings: Settings, tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    broken = DockerRunner(settings.model_copy(update={"data_dir": not_a_directory}))
    try:
        with pytest.raises(RunnerError, match="^Cannot create the termination log "):
            await broken.start(spec_for(["true"]))
    finally:
        await broken.close()


@pytest.mark.parametrize("via", ["settings", "DOCKER_HOST"])
async def test_unreachable_engine_is_a_runner_error(via: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    socket = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    if via == "DOCKER_HOST":
        monkeypatch.setenv("DOCKER_HOST", socket)
        unreachable = make_runner(Settings(data_dir=tmp_path))
    else:
        unreachable = make_runner(Settings(data_dir=tmp_path, docker_host=socket))
    try:
        message = f"^Docker Engine not reachable at {socket}: "
        with pytest.raises(RunnerError, match=message):
            await unreachable.start(spec_for(["true"]))
        with pytest.raises(RunnerError, match=message):
            await unreachable.status("styx-run-x")
        with pytest.raises(RunnerError, match=message):
            await unreachable.owned_executions()
    finally:
        await unreachable.close()


# -- idempotence, stop, logs --------------------------------------------------------------------------------


async def test_starting_an_execution_twice_runs_it_once(
    runner: DockerRunner, settings: Settings, engine: docker.APIClient, installation: str
) -> None:
    spec = spec_for(["sh", "-c", "echo ran"])
    await asyncio.gather(runner.start(spec), runner.start(spec))  # concurrent starts share one attempt
    assert await eventually(lambda: runner.status(spec.execution_id), lambda s: isinstance(s, Exited)) == Exited(0)

    # A second runner of the same installation (a restarted service) starting it again after it exited.
    again = DockerRunner(settings)
    try:
        await again.start(spec)
    finally:
        await again.close()
    assert len(containers_of(engine, installation)) == 1
    assert await runner.status(spec.execution_id) == Exited(0)
    assert (await runner.logs(spec.execution_id)).splitlines() == ["ran"]


async def test_stop_kills_a_running_container(runner: DockerRunner) -> None:
    spec = spec_for(["sleep", "300"])
    await runner.start(spec)
    await eventually(lambda: runner.status(spec.execution_id), lambda s: s == Running())
    started = time.monotonic()
    await runner.stop(spec.execution_id)
    # `sleep` as PID 1 ignores SIGTERM, so this is the SIGKILL after the 1 s stop timeout.
    assert await runner.status(spec.execution_id) == Exited(137)
    assert time.monotonic() - started < 10
    await runner.stop(spec.execution_id)  # not running any more: no error
    await runner.stop("styx-run-never-existed")


async def test_a_foreign_installation_container_is_invisible(runner: DockerRunner, settings: Settings) -> None:
    other = DockerRunner(settings.model_copy(update={"docker_installation_id": f"other-{uuid.uuid4().hex[:8]}"}))
    spec = spec_for(["true"])
    try:
        await run_to_exit(runner, spec)
        assert await other.status(spec.execution_id) == NoContainer()
        assert await other.owned_executions() == {}
        with pytest.raises(RunnerError, match="does not own"):
            await other.start(spec)
        await other.cleanup(wanted_execution_ids=set())
    finally:
        await other.close()
    assert await runner.status(spec.execution_id) == Exited(0)


async def test_logs_of_a_missing_container(runner: DockerRunner) -> None:
    with pytest.raises(RunnerError, match="No container for execution styx-run-gone"):
        await runner.logs("styx-run-gone")
    assert await runner.status("styx-run-gone") == NoContainer()


# -- watching and re-attaching ------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seen: dict[str, list[ExecutionStatus]] = {}

    def __call__(self, execution_id: str, status: ExecutionStatus) -> None:
        self.seen.setdefault(execution_id, []).append(status)

    def exits(self, execution_id: str) -> list[ExecutionStatus]:
        return [s for s in self.seen.get(execution_id, []) if isinstance(s, Exited)]


async def test_watch_reports_the_exit_once(runner: DockerRunner) -> None:
    recorder = Recorder()
    runner.watch(recorder)
    spec = spec_for(["sh", "-c", "exit 20"])
    await runner.start(spec)
    await eventually(lambda: recorder.exits(spec.execution_id), bool)
    assert recorder.seen[spec.execution_id][-1] == Exited(20)
    assert recorder.exits(spec.execution_id) == [Exited(20)]


async def test_restarted_runner_reattaches_and_reports_each_exit_once(
    runner: DockerRunner, settings: Settings, engine: docker.APIClient
) -> None:
    # Each job waits for SIGTERM from the test, then exits with its own code.
    def job(code: int) -> RunSpec:
        return spec_for(["sh", "-c", f'trap "exit {code}" TERM; echo ready; while true; do sleep 0.05; done'])

    specs = {3: job(3), 4: job(4)}
    await asyncio.gather(*(runner.start(spec) for spec in specs.values()))
    for spec in specs.values():
        await eventually(lambda spec=spec: runner.logs(spec.execution_id), lambda out: "ready" in out)
    await runner.close()

    restarted = DockerRunner(settings)
    try:
        assert await restarted.owned_executions() == {spec.execution_id: Running() for spec in specs.values()}
        recorder = Recorder()
        restarted.watch(recorder)
        for spec in specs.values():
            engine.kill(spec.execution_id, signal="TERM")
        for spec in specs.values():
            await eventually(lambda spec=spec: recorder.exits(spec.execution_id), bool)

        # A later execution's exit arrives after any duplicate of the earlier ones would have.
        last = spec_for(["true"])
        await restarted.start(last)
        await eventually(lambda: recorder.exits(last.execution_id), bool)
        for code, spec in specs.items():
            assert recorder.exits(spec.execution_id) == [Exited(code)]
    finally:
        await restarted.close()


class EngineProxy:
    """A unix-socket relay to the real engine whose connections the test can cut (an engine hiccup)."""

    def __init__(self, engine_socket: str, socket_path: Path) -> None:
        self.engine_socket = engine_socket
        self.socket_path = socket_path
        self.relays: dict[asyncio.Task[None], tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = {}
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._relay, path=str(self.socket_path))

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        engine_reader, engine_writer = await asyncio.open_unix_connection(self.engine_socket)
        relay = asyncio.current_task()
        assert relay is not None
        self.relays[relay] = (client_writer, engine_writer)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        try:
            await asyncio.gather(pipe(client_reader, engine_writer), pipe(engine_reader, client_writer))
        finally:
            self.relays.pop(relay, None)

    async def cut(self) -> None:
        """Break every open connection, and return once they are closed on both sides."""
        relays = dict(self.relays)
        for writers in relays.values():
            for writer in writers:
                writer.transport.abort()
        await asyncio.gather(*relays)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        await self.cut()


async def test_watch_reconnects_when_the_event_stream_breaks(settings: Settings, tmp_path: Path) -> None:
    engine_url = kwargs_from_env().get("base_url") or DEFAULT_ENGINE_URL
    if not engine_url.startswith("unix://"):
        pytest.skip("the relay speaks to a unix-socket engine only")
    proxy = EngineProxy(engine_url.removeprefix("unix://"), tmp_path / "relay.sock")
    await proxy.start()
    relayed = DockerRunner(settings.model_copy(update={"docker_host": f"unix://{proxy.socket_path}"}))
    try:
        recorder = Recorder()
        relayed.watch(recorder)
        first = spec_for(["true"])
        await relayed.start(first)
        await eventually(lambda: recorder.exits(first.execution_id), bool)

        await proxy.cut()  # the event stream (and every other open connection) breaks
        second = spec_for(["sh", "-c", "exit 4"])
        await relayed.start(second)
        await eventually(lambda: recorder.exits(second.execution_id), bool)
        assert recorder.exits(second.execution_id) == [Exited(4)]
        assert recorder.exits(first.execution_id) == [Exited(0)]
    finally:
        await relayed.close()
        await proxy.close()


# -- cleanup ------------------------------------------------------------------------------------------------


async def test_cleanup_removes_unwanted_containers_after_the_grace_period(
    runner: DockerRunner, settings: Settings, clock: ManualClock, engine: docker.APIClient, installation: str
) -> None:
    finished_unwanted = spec_for(["true"], termination_logging=True)
    finished_wanted = spec_for(["true"])
    running_wanted = spec_for(["sleep", "300"])
    running_unwanted = spec_for(["sleep", "300"])
    await asyncio.gather(run_to_exit(runner, finished_unwanted), run_to_exit(runner, finished_wanted))
    await asyncio.gather(runner.start(running_wanted), runner.start(running_unwanted))
    wanted = {finished_wanted.execution_id, running_wanted.execution_id}
    log_file = settings.data_dir / "termination-logs" / finished_unwanted.execution_id
    assert log_file.exists()

    async def remaining() -> set[str]:
        return set(await runner.owned_executions())

    await runner.cleanup(wanted)
    assert len(await remaining()) == 4  # all within the grace period

    kept = DockerRunner(settings.model_copy(update={"keep_containers": True}), clock)
    # Past the grace period for everything this test made (Docker stamps finish times in real time).
    clock.advance(settings.container_grace_period + timedelta(seconds=30))
    try:
        await kept.cleanup(wanted)
    finally:
        await kept.close()
    assert len(await remaining()) == 4  # keep_containers: nothing is removed

    await runner.cleanup(wanted)
    assert await remaining() == wanted
    assert await runner.status(running_wanted.execution_id) == Running()
    assert not log_file.exists()
    assert len(containers_of(engine, installation)) == 2
