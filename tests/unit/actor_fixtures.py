"""Shared pieces of the actor unit tests (test_shard.py, test_backfill_driver.py): a SQLite store in the test's
temporary directory that can be made to fail, a runner whose executions keep running until told otherwise, and
an InstanceShard wired to a resource broker the way the local actor system wires it (styx_actors/actors/local.py),
all in the test's own event loop: no Ray, no HTTP.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.local import load_resource_limits
from styx_actors.actors.placement import Sharded
from styx_actors.actors.ports import ShardRouter, local_broker, local_host
from styx_actors.actors.shard import InstanceShard
from styx_actors.clock import ManualClock
from styx_actors.events import event_from_json
from styx_actors.model import (
    Backfill,
    RunState,
    State,
    Trigger,
    TriggerParameters,
    Workflow,
    WorkflowConfiguration,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
)
from styx_actors.runners.base import (
    DEFAULT_LOG_TAIL_BYTES,
    ExecutionStatus,
    Exited,
    OutputKeeper,
    Runner,
    RunnerError,
    Running,
    RunSpec,
    StatusListener,
    StatusListeners,
)
from styx_actors.runners.noop import NoopRunner
from styx_actors.settings import Settings
from styx_actors.store.base import StoreError, Transition
from styx_actors.store.sqlite import SqliteStore
from styx_actors.timeutil import UTC
from tests.conftest import settings_for_tests, wait_until

COMPONENT = "unit"
WORKFLOW = WorkflowId(component_id=COMPONENT, id="hourly")


def at(hour: int, minute: int = 0) -> datetime:
    """An instant on the day of the `clock` fixture (2016-03-14, which it starts at 15:30 UTC)."""
    return datetime(2016, 3, 14, hour, minute, tzinfo=UTC)


def instance(parameter: str, workflow_id: WorkflowId = WORKFLOW) -> WorkflowInstance:
    return WorkflowInstance(workflow_id=workflow_id, parameter=parameter)


def workflow(workflow_id: WorkflowId = WORKFLOW, **configuration: Any) -> Workflow:
    """An hourly workflow with an image, so that PREPARE submits it."""
    values: dict[str, Any] = {"id": workflow_id.id, "schedule": "hours", "docker_image": "busybox:1"}
    values.update(configuration)
    return Workflow.create(workflow_id.component_id, WorkflowConfiguration(**values))


def unit_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """One shard; reconcile ticks (real time) far away, so that only what a test does moves an instance."""
    values: dict[str, Any] = {
        "runner": "noop",
        "shard_count": 1,
        "state_manager_tick_interval": timedelta(hours=1),
    }
    return settings_for_tests(tmp_path, "unit-test", **{**values, **overrides})


class ProcessStopped(Exception):
    """Stands for the process dying at that point: nothing after it runs."""


class ProbedStore(SqliteStore):
    """A SQLite store that records every group commit and workflow read, fails on demand, and holds on demand
    the commits into one state (a commit backlog)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits: list[list[Transition]] = []
        self.failing_commits = 0  # the next this many commit calls raise StoreError, writing nothing
        self.stop_at_put_backfill = False  # put_backfill raises ProcessStopped, writing nothing
        self.held_state: State | None = None  # commits into this state wait until `held` is set
        self.held = asyncio.Event()
        self.holding = False  # a commit is waiting on `held`
        self.workflow_reads = 0  # workflows read, batched or not

    async def commit(self, transitions: Sequence[Transition]) -> list[bool]:
        if self.failing_commits > 0:
            self.failing_commits -= 1
            raise StoreError("the store is away")
        if any(t.state.state is self.held_state for t in transitions):
            self.holding = True
            await self.held.wait()
        self.commits.append(list(transitions))
        return await super().commit(transitions)

    async def get_workflows(self, workflow_ids: Sequence[WorkflowId]) -> list[tuple[Workflow, WorkflowState] | None]:
        self.workflow_reads += len(workflow_ids)
        return await super().get_workflows(workflow_ids)

    async def put_backfill(self, backfill: Backfill) -> None:
        if self.stop_at_put_backfill:
            raise ProcessStopped(f"stopped before writing backfill {backfill.id}")
        await super().put_backfill(backfill)

    def committed_states(self, wfi: WorkflowInstance) -> list[State]:
        """The states of `wfi` in the order they were committed (written or refused)."""
        return [t.state.state for batch in self.commits for t in batch if t.instance == wfi]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ProbedStore]:
    backend = ProbedStore(tmp_path / "styx.db")
    await backend.open()
    yield backend
    await backend.close()


class HeldRunner:
    """A runner whose executions start and keep running until `exit()`; it remembers what it was asked to stop."""

    def __init__(self, runner_id: str = "default") -> None:
        self.runner_id = runner_id
        self.started: list[str] = []
        self.stopped: list[str] = []
        self._status: dict[str, ExecutionStatus] = {}
        self._listeners = StatusListeners()

    async def start(self, spec: RunSpec) -> None:
        if spec.execution_id not in self._status:
            self.started.append(spec.execution_id)
            self._set(spec.execution_id, Running())

    async def status(self, execution_id: str) -> ExecutionStatus:
        if execution_id not in self._status:
            raise RunnerError(f"no execution {execution_id}")  # never asked in these tests
        return self._status[execution_id]

    async def stop(self, execution_id: str) -> None:
        self.stopped.append(execution_id)

    def exit(self, execution_id: str, exit_code: int) -> None:
        self._set(execution_id, Exited(exit_code=exit_code))

    def detach(self) -> None:
        """Forget every watcher (their process is gone)."""
        self._listeners = StatusListeners()

    def _set(self, execution_id: str, status: ExecutionStatus) -> None:
        self._status[execution_id] = status
        self._listeners.publish(execution_id, status)

    async def owned_executions(self) -> dict[str, ExecutionStatus]:
        return dict(self._status)

    def watch(self, listener: StatusListener) -> None:
        self._listeners.add(listener)

    async def logs(self, execution_id: str, tail_bytes: int = DEFAULT_LOG_TAIL_BYTES) -> str:
        return ""

    async def cleanup(self, wanted_execution_ids: set[str], keep_output: OutputKeeper | None = None) -> None:
        return None

    async def close(self) -> None:
        return None


class Finishes:
    """The shard's `on_finished` listener: records (instance, trigger id, final state) and passes it on."""

    def __init__(self) -> None:
        self.seen: list[tuple[WorkflowInstance, str | None, State]] = []
        self.listeners: list[Callable[[WorkflowInstance, str | None, State], None]] = []

    def __call__(self, wfi: WorkflowInstance, trigger_id: str | None, state: State) -> None:
        self.seen.append((wfi, trigger_id, state))
        for listener in self.listeners:
            listener(wfi, trigger_id, state)


@dataclass
class ShardHost:
    """A started shard and what it talks to."""

    shard: InstanceShard
    runner: Runner
    broker: BrokerHost
    finishes: Finishes

    @property
    def router(self) -> ShardRouter:
        """How the rest of the system triggers (AlreadyActive becomes Conflict)."""
        return ShardRouter([local_host(self.shard)])


ShardFactory = Callable[..., Awaitable[ShardHost]]


@pytest.fixture
async def start_shard(store: ProbedStore, tmp_path: Path, clock: ManualClock) -> AsyncIterator[ShardFactory]:
    """Start (and at the end stop) shards over the test's store, wired as the local actor system wires them."""
    started: list[InstanceShard] = []

    async def start(
        runner: Runner | None = None, settings: Settings | None = None, broker: BrokerHost | None = None
    ) -> ShardHost:
        """A shard with its own broker, or on `broker` (a broker that outlives a shard: its grants are the
        test's to route)."""
        settings = settings or unit_settings(tmp_path)
        runner = runner or NoopRunner(settings.docker_runner_id)
        shards: list[InstanceShard] = []
        if broker is None:
            broker = BrokerHost(on_granted=lambda holder, ids: shards[0].granted(holder, ids))
            await load_resource_limits(broker.broker, store)
        finishes = Finishes()
        shard = InstanceShard(
            Sharded(0, 1), store, runner, local_broker(broker), settings, clock, finishes, random.Random(7)
        )
        shards.append(shard)
        await shard.start()
        started.append(shard)
        return ShardHost(shard, runner, broker, finishes)

    yield start
    for shard in started:
        await shard.stop()


async def event_log(store: SqliteStore, wfi: WorkflowInstance) -> list[tuple[int, str]]:
    """(counter, event name) of every stored event of `wfi`, in the order the store returns them."""
    return [(e.counter, event_from_json(e.event_json)[0].name) for e in await store.events(wfi)]


async def event_names(store: SqliteStore, wfi: WorkflowInstance) -> list[str]:
    return [name for _, name in await event_log(store, wfi)]


async def trigger_count(store: SqliteStore, wfi: WorkflowInstance) -> int:
    return (await event_names(store, wfi)).count("triggerExecution")


async def wait_inactive(store: SqliteStore, wfi: WorkflowInstance, timeout: float = 5) -> list[str]:
    """Wait until `wfi` has events and no active snapshot (DONE or ERROR); its event names."""

    async def inactive() -> bool:
        return await store.latest_event_counter(wfi) >= 0 and await store.active_state(wfi) is None

    await wait_until(inactive, timeout, message=f"{wfi} to finish")
    return await event_names(store, wfi)


async def wait_state(shard: InstanceShard, wfi: WorkflowInstance, state: State, timeout: float = 5) -> RunState:
    """Wait until the shard holds `wfi` in `state`; that state."""

    def reached() -> RunState | None:
        current = shard.state_of(wfi)
        return current if current is not None and current.state is state else None

    return await wait_until(reached, timeout, interval=0.01, message=f"{wfi} to reach {state.value}")


async def trigger_adhoc(host: ShardHost, wfi: WorkflowInstance, trigger_id: str = "adhoc-1") -> RunState:
    return await host.shard.trigger(wfi, Trigger.adhoc(trigger_id), TriggerParameters())


async def put_workflow(store: SqliteStore, wf: Workflow | None = None) -> Workflow:
    wf = wf or workflow()
    await store.put_workflow(wf, WorkflowState(enabled=True))
    return wf
