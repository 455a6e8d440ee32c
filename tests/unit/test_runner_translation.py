"""The runner contract's pure parts (docs/runner.md): RunSpec building, exit codes, status → events, NoopRunner."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from styx_actors.docker_image import InvalidImageReference
from styx_actors.events import RunError, Started, Terminate
from styx_actors.model import (
    ExecutionDescription,
    RunState,
    State,
    StateData,
    Trigger,
    TriggerParameters,
    WorkflowInstance,
)
from styx_actors.runners import make_runner
from styx_actors.runners.base import (
    NO_CONTAINER_MESSAGE,
    ExecutionStatus,
    Exited,
    Failed,
    NoContainer,
    Pending,
    RunnerError,
    Running,
    StatusListeners,
    build_run_spec,
    progress_events,
    termination_exit_code,
)
from styx_actors.runners.noop import NoopRunner
from styx_actors.settings import Settings

INSTANCE = WorkflowInstance.of("styx", "daily-job", "2016-03-14")


def submitting_state(
    description: ExecutionDescription | None = None,
    trigger: Trigger | None = Trigger.natural(),
    execution_id: str | None = "styx-run-1234",
    tries: int = 0,
    trigger_parameters: TriggerParameters | None = None,
) -> RunState:
    if description is None:
        description = ExecutionDescription(docker_image="busybox", docker_args=["echo", "{}"])
    data = StateData(
        trigger=trigger,
        execution_id=execution_id,
        execution_description=description,
        tries=tries,
        trigger_parameters=trigger_parameters,
    )
    return RunState(workflow_instance=INSTANCE, state=State.SUBMITTING, timestamp=0, data=data, counter=3)


# -- build_run_spec ----------------------------------------------------------------------------------------


def test_run_spec_carries_every_styx_variable() -> None:
    description = ExecutionDescription(
        docker_image="gcr.io/project/job",
        docker_args=["run", "{}"],
        docker_termination_logging=True,
        service_account="job@project.iam.gserviceaccount.com",
        commit_sha="abc123",
        env={"FOO": "bar"},
    )
    spec = build_run_spec(submitting_state(description, Trigger.adhoc("ad-hoc-cli-1-2"), tries=2), "staging")

    assert spec.execution_id == "styx-run-1234"
    assert spec.instance == INSTANCE
    assert spec.args == ("run", "2016-03-14")
    assert spec.termination_logging is True
    assert spec.tries == 2
    assert dict(spec.env) == {
        "FOO": "bar",
        "STYX_COMPONENT_ID": "styx",
        "STYX_WORKFLOW_ID": "daily-job",
        "STYX_PARAMETER": "2016-03-14",
        "STYX_COMMIT_SHA": "abc123",
        "STYX_SERVICE_ACCOUNT": "job@project.iam.gserviceaccount.com",
        "STYX_DOCKER_ARGS": "run 2016-03-14",
        "STYX_DOCKER_IMAGE": "gcr.io/project/job",
        "STYX_EXECUTION_ID": "styx-run-1234",
        "STYX_TERMINATION_LOG": "/dev/termination-log",
        "STYX_TRIGGER_ID": "ad-hoc-cli-1-2",
        "STYX_TRIGGER_TYPE": "adhoc",
        "STYX_ENVIRONMENT": "staging",
        "STYX_LOGGING": "structured",
        "STYX_EXECUTION_TRIES": "2",
    }


def test_absent_commit_and_service_account_are_empty_strings() -> None:
    env = build_run_spec(submitting_state(), "production").env
    assert env["STYX_COMMIT_SHA"] == ""
    assert env["STYX_SERVICE_ACCOUNT"] == ""
    assert env["STYX_EXECUTION_TRIES"] == "0"


@pytest.mark.parametrize(
    ("trigger", "trigger_id", "trigger_type"),
    [
        (Trigger.natural(), "natural-trigger", "natural"),
        (Trigger.backfill("backfill-1-2"), "backfill-1-2", "backfill"),
        (Trigger.unknown("legacy"), "legacy", "unknown"),
        (None, "UNKNOWN", "unknown"),  # legacy state without a trigger
    ],
)
def test_trigger_variables(trigger: Trigger | None, trigger_id: str, trigger_type: str) -> None:
    spec = build_run_spec(submitting_state(trigger=trigger), "production")
    assert (spec.env["STYX_TRIGGER_ID"], spec.env["STYX_TRIGGER_TYPE"]) == (trigger_id, trigger_type)
    assert spec.trigger.trigger_id == trigger_id


def test_styx_variables_override_user_env() -> None:
    description = ExecutionDescription(
        docker_image="busybox",
        env={"STYX_PARAMETER": "mine", "STYX_LOGGING": "text", "OTHER": "kept"},
    )
    env = build_run_spec(submitting_state(description), "production").env
    assert env["STYX_PARAMETER"] == "2016-03-14"
    assert env["STYX_LOGGING"] == "structured"
    assert env["OTHER"] == "kept"


def test_user_env_is_the_description_env_already_merged_by_prepare() -> None:
    # PREPARE overlays the trigger parameters' env on the workflow env; the runner does not merge again
    # (docs/semantics.md#preparing-an-execution).
    description = ExecutionDescription(docker_image="busybox", env={"DATE": "from-trigger"})
    state = submitting_state(description, trigger_parameters=TriggerParameters(env={"DATE": "stale", "X": "1"}))
    env = build_run_spec(state, "production").env
    assert env["DATE"] == "from-trigger"
    assert "X" not in env


def test_only_arguments_that_are_exactly_braces_get_the_parameter() -> None:
    description = ExecutionDescription(docker_image="busybox", docker_args=["{}", "--date={}", "{} ", "x{}y", "{}"])
    spec = build_run_spec(submitting_state(description), "production")
    assert spec.args == ("2016-03-14", "--date={}", "{} ", "x{}y", "2016-03-14")
    assert spec.env["STYX_DOCKER_ARGS"] == "2016-03-14 --date={} {}  x{}y 2016-03-14"


def test_no_args_means_the_image_default() -> None:
    spec = build_run_spec(submitting_state(ExecutionDescription(docker_image="busybox")), "production")
    assert spec.args == ()
    assert spec.env["STYX_DOCKER_ARGS"] == ""


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("localhost:5000/team/job", "localhost:5000/team/job:latest"),  # a registry port is no tag
        ("localhost:5000/team/job:v2", "localhost:5000/team/job:v2"),
        ("busybox@sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
    ],
)
def test_latest_is_added_only_when_no_tag_or_digest(image: str, reference: str) -> None:
    spec = build_run_spec(submitting_state(ExecutionDescription(docker_image=image)), "production")
    assert spec.image_reference == reference
    assert spec.env["STYX_DOCKER_IMAGE"] == image  # as configured


def test_invalid_image_reference_is_refused() -> None:
    spec = build_run_spec(submitting_state(ExecutionDescription(docker_image="Not::An/Image")), "production")
    with pytest.raises(InvalidImageReference):
        _ = spec.image_reference


@pytest.mark.parametrize(
    "state",
    [
        submitting_state(execution_id=None),
        submitting_state(ExecutionDescription(docker_image=None)),
        RunState(workflow_instance=INSTANCE, state=State.SUBMITTING, timestamp=0, data=StateData(execution_id="x")),
    ],
)
def test_a_state_without_execution_info_has_no_spec(state: RunState) -> None:
    with pytest.raises(ValueError, match="styx#daily-job#2016-03-14 has no execution id"):
        build_run_spec(state, "production")


# -- exit codes (docs/runner.md#exit-codes-and-the-termination-log) ----------------------------------------


@pytest.mark.parametrize(
    ("container", "logging", "message", "expected"),
    [
        # termination logging off: the container's code, whatever the file says
        (0, False, '{"exit_code": 20}', 0),
        (7, False, None, 7),
        (None, False, None, None),
        # on, valid message: the message's code ...
        (0, True, '{"exit_code": 20}', 20),
        (0, True, '{"exit_code": 0}', 0),
        (1, True, '{"exit_code": 50}', 50),
        (0, True, '{"exit_code": 3, "extra": "ignored"}', 3),
        # ... except that a failed container cannot claim success
        (1, True, '{"exit_code": 0}', 1),
        (137, True, '{"exit_code": 0}', 137),
        # missing or invalid message: a non-zero container code, else unknown
        (0, True, None, None),
        (0, True, "", None),
        (3, True, None, 3),
        (0, True, "not json", None),
        (2, True, "not json", 2),
        (0, True, '{"exit_code": "20"}', None),
        (0, True, '{"exit_code": true}', None),
        (0, True, '{"exit_code": 1.5}', None),
        (0, True, "[20]", None),
        (0, True, '{"code": 20}', None),
        (None, True, None, None),
    ],
)
def test_termination_exit_code(container: int | None, logging: bool, message: str | None, expected: int | None) -> None:
    assert termination_exit_code(container, logging, message) == expected


# -- progress_events (Styx's pod event translator) ---------------------------------------------------------

STATUSES: list[ExecutionStatus] = [
    NoContainer(),
    Pending(),
    Running(),
    Exited(0),
    Exited(20),
    Exited(None),
    Exited(137, oom=True),
    Failed("Failed to start container x: boom"),
]

EXPECTED: dict[State, list[list]] = {
    # statuses in STATUSES order
    State.PREPARE: [
        [RunError(NO_CONTAINER_MESSAGE)],
        [],
        [Started()],
        [Started(), Terminate(0)],
        [Started(), Terminate(20)],
        [Started(), Terminate(None)],
        [Started(), Terminate(137)],
        [RunError("Failed to start container x: boom")],
    ],
    State.SUBMITTED: [
        [RunError(NO_CONTAINER_MESSAGE)],
        [],
        [Started()],
        [Started(), Terminate(0)],
        [Started(), Terminate(20)],
        [Started(), Terminate(None)],
        [Started(), Terminate(137)],
        [RunError("Failed to start container x: boom")],
    ],
    State.RUNNING: [
        [RunError(NO_CONTAINER_MESSAGE)],
        [],
        [],
        [Terminate(0)],
        [Terminate(20)],
        [Terminate(None)],
        [Terminate(137)],
        [RunError("Failed to start container x: boom")],
    ],
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("index", range(len(STATUSES)), ids=[repr(s) for s in STATUSES])
def test_progress_events(state: State, index: int) -> None:
    expected = EXPECTED[state][index] if state in EXPECTED else []
    assert progress_events(state, STATUSES[index]) == expected


# -- NoopRunner ---------------------------------------------------------------------------------------------


async def test_noop_runner_reports_exit_zero_once_to_watchers() -> None:
    runner = make_runner(Settings(runner="noop", docker_runner_id="bench"))
    assert isinstance(runner, NoopRunner)
    assert runner.runner_id == "bench"
    seen: list[tuple[str, ExecutionStatus]] = []
    runner.watch(lambda execution_id, status: seen.append((execution_id, status)))
    spec = build_run_spec(submitting_state(), "production")

    assert await runner.status(spec.execution_id) == NoContainer()
    await runner.start(spec)
    await runner.start(spec)  # idempotent
    await asyncio.sleep(0)  # listeners run on the loop, after start() returned

    assert seen == [("styx-run-1234", Exited(0))]
    assert progress_events(State.SUBMITTED, seen[0][1]) == [Started(), Terminate(0)]
    assert await runner.status(spec.execution_id) == Exited(0)
    assert await runner.owned_executions() == {"styx-run-1234": Exited(0)}
    assert await runner.logs(spec.execution_id) == ""
    await runner.stop(spec.execution_id)

    await runner.cleanup(wanted_execution_ids={"styx-run-1234"})
    assert await runner.status(spec.execution_id) == Exited(0)
    await runner.cleanup(wanted_execution_ids=set())
    assert await runner.status(spec.execution_id) == NoContainer()
    with pytest.raises(RunnerError, match="No container for execution styx-run-1234"):
        await runner.logs(spec.execution_id)
    await runner.close()


async def test_status_listeners_report_each_change_once_on_the_watching_loop() -> None:
    listeners = StatusListeners()
    seen: list[tuple[str, ExecutionStatus]] = []
    listeners.add(lambda execution_id, status: seen.append((execution_id, status)))

    def publish_from_another_thread() -> None:
        listeners.publish("a", Running())
        listeners.publish("a", Running())  # a replay: dropped
        listeners.publish("a", Exited(1))
        listeners.publish("a", Exited(1))
        listeners.forget("a")  # gone for good: the same id is news again
        listeners.publish("a", Exited(1))

    # The listener calls are queued on this loop before the thread's completion is, so they ran first.
    await asyncio.to_thread(publish_from_another_thread)
    assert seen == [("a", Running()), ("a", Exited(1)), ("a", Exited(1))]


# -- container settings (docs/runner.md, "Limits and security defaults") ------------------------------------


def test_container_settings_have_safe_defaults() -> None:
    defaults = Settings()
    assert defaults.container_cap_drop == ["NET_RAW", "MKNOD", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP"]
    assert (defaults.container_memory_limit, defaults.container_pids_limit) == ("2g", 1024)
    assert (defaults.container_log_max_size, defaults.container_log_max_files) == ("10m", 3)
    assert defaults.container_read_only_root is False
    assert defaults.allowed_registries == []


def test_container_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYX_CONTAINER_CAP_DROP", '["cap_net_raw", "All"]')
    monkeypatch.setenv("STYX_CONTAINER_MEMORY_LIMIT", "0")
    monkeypatch.setenv("STYX_ALLOWED_REGISTRIES", '["Index.Docker.io", "GCR.IO", "localhost:5000"]')
    monkeypatch.setenv("STYX_TERMINATION_LOG_DIR", "/var/lib/styx-termination-logs")
    configured = Settings()
    assert configured.container_cap_drop == ["ALL"]  # ALL covers the others
    assert configured.container_memory_limit is None  # 0: no limit
    assert configured.allowed_registries == ["docker.io", "gcr.io", "localhost:5000"]
    assert str(configured.termination_log_dir) == "/var/lib/styx-termination-logs"
    monkeypatch.setenv("STYX_CONTAINER_CAP_DROP", '["CAP_SYS_ADMIN", "net_raw"]')
    assert Settings().container_cap_drop == ["SYS_ADMIN", "NET_RAW"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("container_cap_drop", ["NET RAW"]),
        ("container_memory_limit", "lots"),
        ("container_log_max_size", "10 MB"),
        ("container_log_max_files", 0),
        ("container_pids_limit", -1),
        ("container_tmp_size", "-1m"),
        ("allowed_registries", ["https://gcr.io"]),
    ],
)
def test_invalid_container_settings_are_refused_at_startup(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
