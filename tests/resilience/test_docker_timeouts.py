"""A Docker Engine that accepts connections and never answers: every call is bounded by
`docker_call_timeout`, a hung start becomes a runError retried per policy, and the hung call blocks neither
the instance's mailbox (halt answers at once) nor other instances."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from styx_actors.actors.local import LocalActorSystem
from styx_actors.clock import ManualClock
from styx_actors.model import (
    RunState,
    State,
    TriggerRequest,
    WorkflowConfiguration,
    WorkflowInstance,
    WorkflowStatePatch,
)
from styx_actors.runners.base import RunnerError
from styx_actors.runners.docker import DockerRunner
from styx_actors.settings import Settings
from styx_actors.store.sqlite import SqliteStore
from tests.conftest import wait_until
from tests.integration.conftest import TEST_IMAGE, scenario_settings
from tests.integration.test_scenarios import event_names

CALL_TIMEOUT = timedelta(seconds=0.5)
COMPONENT = "styx-hung"


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A unix socket that listens and never accepts: connections queue in the backlog, requests never answer."""
    path = tmp_path / "silent-docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    yield f"unix://{path}"
    listener.close()


async def requeued_after_run_errors(store: SqliteStore, wfi: WorkflowInstance, count: int) -> RunState | None:
    """The instance's state once `count` runErrors happened and the retry policy put it back in QUEUED."""
    state = await store.active_state(wfi)
    names = await event_names(store, wfi)
    if state is None or state.state is not State.QUEUED or names.count("runError") < count:
        return None
    return state


def hung_settings(tmp_path: Path, engine_url: str) -> Settings:
    return scenario_settings(
        tmp_path, docker_host=engine_url, docker_call_timeout=CALL_TIMEOUT, retry_base_delay=timedelta(seconds=1)
    )


async def test_every_call_to_a_silent_engine_ends_within_the_call_timeout(tmp_path: Path, silent_engine: str) -> None:
    runner = DockerRunner(hung_settings(tmp_path, silent_engine))
    try:
        for call in (runner.status("styx-run-1"), runner.owned_executions(), runner.stop("styx-run-1")):
            begin = time.monotonic()
            with pytest.raises(RunnerError, match=silent_engine):
                await call
            assert time.monotonic() - begin < 5 * CALL_TIMEOUT.total_seconds()
    finally:
        await runner.close()


async def test_a_hung_start_blocks_neither_halt_nor_other_instances_and_becomes_a_run_error(
    tmp_path: Path, silent_engine: str, clock: ManualClock
) -> None:
    settings = hung_settings(tmp_path, silent_engine)
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    runner = DockerRunner(settings)
    system = await LocalActorSystem.start(settings, store, runner, clock, run_scheduler_loops=False)
    try:
        config = WorkflowConfiguration(id="job", schedule="hours", docker_image=TEST_IMAGE, docker_args=["true"])
        workflow = await system.commands.save_workflow(COMPONENT, config)
        await system.commands.patch_workflow_state(workflow.id, WorkflowStatePatch(enabled=True))
        halted, retried = (
            WorkflowInstance(workflow_id=workflow.id, parameter=p) for p in ("2016-03-14T10", "2016-03-14T11")
        )
        for wfi in (halted, retried):
            await system.commands.trigger(TriggerRequest(workflow_id=workflow.id, parameter=wfi.parameter))

        async def both_submitting() -> bool:
            states = [await store.active_state(wfi) for wfi in (halted, retried)]
            return all(state is not None and state.state is State.SUBMITTING for state in states)

        await wait_until(both_submitting, timeout=10, message="both starts in flight")
        begin = time.monotonic()
        after_halt = await system.commands.halt(halted)
        assert after_halt is not None and after_halt.state is State.ERROR
        assert time.monotonic() - begin < CALL_TIMEOUT.total_seconds()  # the mailbox did not wait for Docker

        state = await wait_until(
            lambda: requeued_after_run_errors(store, retried, 1), timeout=10, message="the hung start to be a runError"
        )
        assert state.data.retry_delay_millis
        run_error = next(m.line for m in state.data.messages if silent_engine in m.line)
        assert "Docker Engine" in run_error
        assert (await event_names(store, halted))[-1] == "halt"  # the late runError of the halted one was dropped
    finally:
        await system.stop()
        await runner.close()
        await store.close()


async def test_submissions_to_an_unreachable_engine_become_run_errors_retried_per_policy(
    tmp_path: Path, clock: ManualClock
) -> None:
    """No socket at all behind DOCKER_HOST (an engine that never came up; test_docker_engine_outage.py stops and
    restarts a real one)."""
    engine_url = f"unix://{tmp_path / 'no-docker-here.sock'}"
    settings = hung_settings(tmp_path, engine_url)
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    runner = DockerRunner(settings)
    system = await LocalActorSystem.start(settings, store, runner, clock, run_scheduler_loops=False)
    try:
        config = WorkflowConfiguration(id="job", schedule="hours", docker_image=TEST_IMAGE, docker_args=["true"])
        workflow = await system.commands.save_workflow(COMPONENT, config)
        wfi = WorkflowInstance(workflow_id=workflow.id, parameter="2016-03-14T10")
        await system.commands.trigger(TriggerRequest(workflow_id=workflow.id, parameter=wfi.parameter))

        state = await wait_until(lambda: requeued_after_run_errors(store, wfi, 1), timeout=10, message="a runError")
        assert state.data.consecutive_failures == 1 and state.data.retry_delay_millis == 1000
        assert any(f"Docker Engine not reachable at {engine_url}" in m.line for m in state.data.messages)
        clock.advance(timedelta(seconds=1))  # the first retry delay (retry_base_delay) has passed
        state = await wait_until(
            lambda: requeued_after_run_errors(store, wfi, 2), timeout=10, message="the retried submission to fail"
        )
        assert state.data.consecutive_failures == 2 and state.data.retry_delay_millis  # and retried again later
    finally:
        await system.stop()
        await runner.close()
        await store.close()
