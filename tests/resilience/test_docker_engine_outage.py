"""A real Docker Engine — the test's own dockerd — stopped (SIGTERM, by PID) while containers run and new ones
are submitted, then started again on the same socket and data root.

While it is down, a new submission becomes a runError naming the engine and is retried per policy, and the
running instances stay RUNNING (a poll that cannot reach the engine changes nothing). When it is back:
- with `--live-restore` the containers ran on without their engine: the service re-attaches to them, reads the
  exit code of the one that finished meanwhile and follows the one still running;
- without it, the engine stopped them on its way out: they are reported failed (exit 143 of their SIGTERM)
  and retried per policy under new execution ids; the old containers are never started again.
Either way every instance reaches its end state and no execution is started twice: one `submitted` and one
container per execution id, and every container started exactly once (the job itself counts its starts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from styx_actors.actors.local import LocalActorSystem
from styx_actors.clock import ManualClock
from styx_actors.events import Event, Submitted, Terminate, event_from_json
from styx_actors.model import (
    RunState,
    State,
    TriggerRequest,
    Workflow,
    WorkflowConfiguration,
    WorkflowInstance,
    WorkflowStatePatch,
)
from styx_actors.runners.base import build_run_spec
from styx_actors.runners.docker import LABEL_EXECUTION_ID, LABEL_INSTALLATION, DockerRunner
from styx_actors.settings import Settings
from styx_actors.store.sqlite import SqliteStore
from tests.conftest import wait_until
from tests.integration.conftest import TEST_IMAGE, scenario_settings
from tests.integration.test_scenarios import event_names, wait_finished
from tests.private_docker_engine import PrivateDockerEngine
from tests.resilience.test_docker_timeouts import requeued_after_run_errors

pytestmark = pytest.mark.docker

COMPONENT = "styx-engine-outage"
RUNNING_PARTITIONS = ("2016-03-14T10", "2016-03-14T11")
SUBMITTED_DURING_OUTAGE = "2016-03-14T12"
# Jobs talk to the test through the one host file mounted into their container, the termination log (mounted
# whatever termination logging says; it is off here, so the runner never reads it): every start of a container
# appends "started", and the held job runs until the test appends "release". It exits at once on SIGTERM, as a
# well-behaved job does, so an engine stopping without live restore need not wait 10 s to kill it.
START_MARK = "echo started >> /dev/termination-log"
HELD_JOB = f'trap "exit 143" TERM; {START_MARK}; until grep -q release /dev/termination-log; do sleep 0.1; done; exit 0'
QUICK_JOB = START_MARK
SIGTERM_EXIT_CODE = 143
HELD_RUN = ["triggerExecution", "dequeue", "submit", "submitted", "started", "terminate"]


@pytest.fixture(scope="module")
def private_engine() -> Iterator[PrivateDockerEngine]:
    engine = PrivateDockerEngine()
    try:
        engine.start()
        engine.import_test_image()
        yield engine
    finally:
        engine.close()


@pytest.fixture(params=[True, False], ids=["live-restore", "no-live-restore"])
def engine(request: pytest.FixtureRequest, private_engine: PrivateDockerEngine) -> PrivateDockerEngine:
    """The private engine, started afresh with or without live restore."""
    if private_engine.running:
        private_engine.stop()
    private_engine.live_restore = request.param
    private_engine.start()
    return private_engine


@dataclass
class Service:
    system: LocalActorSystem
    store: SqliteStore
    settings: Settings

    def job_file(self, execution_id: str) -> Path:
        """The host side of the execution's /dev/termination-log (DockerRunner keeps it under the data dir)."""
        return self.settings.data_dir / "termination-logs" / execution_id

    def release(self, execution_id: str) -> None:
        with self.job_file(execution_id).open("a") as file:  # in place: the container has this inode mounted
            file.write("release\n")

    async def save_workflow(self, workflow_id: str, script: str) -> Workflow:
        config = WorkflowConfiguration(
            id=workflow_id, schedule="hours", docker_image=TEST_IMAGE, docker_args=["sh", "-c", script]
        )
        workflow = await self.system.commands.save_workflow(COMPONENT, config)
        await self.system.commands.patch_workflow_state(workflow.id, WorkflowStatePatch(enabled=True))
        return workflow

    async def trigger(self, workflow: Workflow, parameter: str) -> WorkflowInstance:
        await self.system.commands.trigger(TriggerRequest(workflow_id=workflow.id, parameter=parameter))
        return WorkflowInstance(workflow_id=workflow.id, parameter=parameter)

    async def running(self, wfi: WorkflowInstance, not_execution: str | None = None) -> RunState | None:
        """The instance's state once it is RUNNING (an execution other than `not_execution`)."""
        state = await self.store.active_state(wfi)
        if state is None or state.state is not State.RUNNING or state.data.execution_id == not_execution:
            return None
        return state

    async def requeued_after_exit(self, wfi: WorkflowInstance, exit_code: int) -> RunState | None:
        """The instance's state once an execution exited with `exit_code` and it waits for a retry."""
        state = await self.store.active_state(wfi)
        if state is None or state.state is not State.QUEUED or exit_code not in await self.exit_codes(wfi):
            return None
        return state

    async def events(self, wfi: WorkflowInstance) -> list[Event]:
        return [event_from_json(stored.event_json)[0] for stored in await self.store.events(wfi)]

    async def submitted_executions(self, wfi: WorkflowInstance) -> list[str]:
        events = await self.events(wfi)
        return [event.execution_id for event in events if isinstance(event, Submitted) and event.execution_id]

    async def exit_codes(self, wfi: WorkflowInstance) -> list[int | None]:
        return [event.exit_code for event in await self.events(wfi) if isinstance(event, Terminate)]


@pytest.fixture
async def service(engine: PrivateDockerEngine, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Service]:
    settings = scenario_settings(
        tmp_path,
        docker_host=engine.url,
        docker_call_timeout=timedelta(seconds=5),
        retry_base_delay=timedelta(seconds=1),
        keep_containers=True,  # the test inspects every container at the end
        # No reconcile tick during the test (it is driven by hand while the engine is down): once the engine is
        # back, only the runner's reconnected event stream can report what happened.
        state_manager_tick_interval=timedelta(hours=1),
    )
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    runner = DockerRunner(settings)
    system = await LocalActorSystem.start(settings, store, runner, clock, run_scheduler_loops=False)
    yield Service(system, store, settings)
    await system.stop()
    await runner.close()
    await store.close()


def retry_delay(state: RunState) -> timedelta:
    assert state.data.retry_delay_millis, f"{state.workflow_instance} is not waiting for a retry"
    return timedelta(milliseconds=state.data.retry_delay_millis)


async def test_an_engine_stopped_and_started_again_never_runs_an_execution_twice(
    engine: PrivateDockerEngine, service: Service, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    held = await service.save_workflow("held", HELD_JOB)
    quick = await service.save_workflow("quick", QUICK_JOB)
    finishes_in_outage, outlives_outage = held_instances = [await service.trigger(held, p) for p in RUNNING_PARTITIONS]
    first_run: dict[WorkflowInstance, RunState] = {}
    first_execution: dict[WorkflowInstance, str] = {}
    for wfi in held_instances:
        state = await wait_until(lambda wfi=wfi: service.running(wfi), timeout=30, message=f"{wfi} RUNNING")
        assert state.data.execution_id is not None
        first_run[wfi], first_execution[wfi] = state, state.data.execution_id
    with engine.client() as client:
        first_container = {wfi: client.api.inspect_container(eid) for wfi, eid in first_execution.items()}

    engine.stop()

    if engine.live_restore:
        # The containers run on without their engine; one of them finishes meanwhile.
        service.release(first_execution[finishes_in_outage])
        exited_id, running_id = (first_container[wfi]["Id"] for wfi in held_instances)
        await wait_until(lambda: engine.task_statuses().get(exited_id) == "STOPPED", message="the job to exit")
        assert engine.task_statuses()[running_id] == "RUNNING"
    else:
        # The engine stopped them on its way out (SIGTERM: the job exits 143): nothing runs any more.
        assert "RUNNING" not in engine.task_statuses().values()

    # While the engine is down a new submission is a runError naming it, retried per policy (failing again).
    late = await service.trigger(quick, SUBMITTED_DURING_OUTAGE)
    state = await wait_until(lambda: requeued_after_run_errors(service.store, late, 1), message="a runError")
    assert any(f"Docker Engine not reachable at {engine.url}" in message.line for message in state.data.messages)
    assert state.data.consecutive_failures == 1
    clock.advance(retry_delay(state))
    state = await wait_until(lambda: requeued_after_run_errors(service.store, late, 2), message="the retry to fail")
    assert state.data.consecutive_failures == 2

    if engine.live_restore:
        # A reconcile tick polls the running executions: each poll fails naming the engine (logged, the other
        # instances still polled), and nothing changes.
        caplog.clear()
        for shard in service.system.shards:
            await shard.reconcile()
        failed_polls = [r.getMessage() for r in caplog.records if r.getMessage().startswith("polling the execution")]
        assert len(failed_polls) == len(held_instances)
        assert all(engine.url in message for message in failed_polls)
        for wfi in held_instances:
            assert await service.running(wfi) is not None
            assert "runError" not in await event_names(service.store, wfi)

    engine.start()
    # Starting again an execution the engine had before it stopped (as a submit handler re-run after a service
    # restart would) finds its container, whatever it became, and does not run it again.
    for state in first_run.values():
        await service.system.runner.start(build_run_spec(state, service.settings.environment))

    if engine.live_restore:
        # Re-attached: the exit that happened while the engine was down is read, the other job still runs.
        assert await wait_finished(service.store, finishes_in_outage) == [*HELD_RUN, "success"]
        state = await service.running(outlives_outage)
        assert state is not None and state.data.execution_id == first_execution[outlives_outage]
        service.release(first_execution[outlives_outage])
        waiting = [late]
    else:
        # Reported failed with the exit code of their SIGTERM (told by the engine's last events before it went,
        # or by the full picture the event stream publishes on reconnecting), waiting to be retried per policy.
        for wfi in held_instances:
            await wait_until(
                lambda wfi=wfi: service.requeued_after_exit(wfi, SIGTERM_EXIT_CODE), message=f"{wfi} to fail"
            )
        waiting = [late, *held_instances]
    states = [await service.store.active_state(wfi) for wfi in waiting]
    clock.advance(max(retry_delay(state) for state in states if state is not None))
    if not engine.live_restore:  # each retried under a new execution id
        for wfi in held_instances:
            state = await wait_until(
                lambda wfi=wfi: service.running(wfi, not_execution=first_execution[wfi]), message=f"{wfi} re-run"
            )
            assert state.data.execution_id is not None
            service.release(state.data.execution_id)
    for wfi in (*held_instances, late):
        names = await wait_finished(service.store, wfi)
        assert names[-1] == "success", names

    run_error = ["submit", "runError", "retryAfter", "dequeue"]
    assert await event_names(service.store, late) == [
        "triggerExecution",
        "dequeue",
        *run_error,
        *run_error,
        "submit",
        "submitted",
        "started",
        "terminate",
        "success",
    ]
    for wfi in held_instances:
        if engine.live_restore:
            assert await event_names(service.store, wfi) == [*HELD_RUN, "success"]
            assert await service.exit_codes(wfi) == [0]
        else:  # (a retry that came due while the engine was still down was one more runError)
            assert await service.exit_codes(wfi) == [SIGTERM_EXIT_CODE, 0]
        assert (await service.submitted_executions(wfi))[0] == first_execution[wfi]

    # No execution started twice: one `submitted` and one container per execution id, each started once.
    executions = [eid for wfi in (*held_instances, late) for eid in await service.submitted_executions(wfi)]
    assert len(executions) == len(set(executions)) == (3 if engine.live_restore else 5)
    with engine.client() as client:
        installation = {"label": f"{LABEL_INSTALLATION}={service.settings.docker_installation_id}"}
        containers = client.containers.list(all=True, filters=installation)
        assert Counter(c.labels[LABEL_EXECUTION_ID] for c in containers) == Counter(executions)
        for eid in executions:
            assert service.job_file(eid).read_text().count("started") == 1, f"{eid} started more than once"
            assert client.api.inspect_container(eid)["RestartCount"] == 0
        for wfi, before in first_container.items():  # the first containers were never started again
            after = client.api.inspect_container(first_execution[wfi])["State"]
            assert after["StartedAt"] == before["State"]["StartedAt"]
            assert after["ExitCode"] == (0 if engine.live_restore else SIGTERM_EXIT_CODE)
