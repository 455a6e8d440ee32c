"""What one actor may ask of another through a port: one `Protocol` per kind of actor, so that mypy checks
every call made through a port (the method exists, its arguments, what it returns).

A port (styx_actors/actors/ports.py `LocalPort` in one process, cluster/ray_ports.py `RayPort` on Ray) awaits
any method of the object it reaches by its name, so on its own it is untyped. Each kind of port is therefore
built by one small factory that casts it to the protocol of its kind: `local_host`, `local_scheduler` and
`local_broker` in ports.py; `ActorDirectory.host`, `.scheduler`, `.broker`, `.runner` and `as_host` in
cluster/ray_ports.py. Nothing else casts.

Every method is async, as it is through a port, whether or not the target's method is; otherwise the
signatures are those of the targets, method for method (tests/unit/test_port_interfaces.py compares them):
- `HostPort`: a host of instances, `InstanceShard` (styx_actors/actors/shard.py), or a dedicated instance's
  actor on Ray. A dedicated instance's port answers None to every call when the instance has no actor (it
  is not active), which is why callers of `send`, `active_count` and `stats` accept a None;
- `SchedulerPort`: the scheduler actor, `Scheduler` (styx_actors/actors/scheduler.py);
- `BrokerPort`: the resource broker actor, `BrokerHost` and the `ResourceBroker` it forwards to
  (styx_actors/actors/broker_host.py, styx_actors/actors/resources.py);
- `RunnerPort`: a node's runner actor on Ray, `RunnerHost` (cluster/ray_runners.py), and the `Runner` it
  forwards `logs` to.

The command facade reads logs from any runner, a node's runner actor or the local `Runner` itself: it takes
`LogReader`s, which both are. The runner a shard starts executions on is no port: it is a `Runner` or, on
Ray, the `PlacingRunner` in front of the runner actors, both an `ExecutionRunner` (styx_actors/runners/base.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Protocol

from styx_actors.actors.resources import AcquireResult, HolderOwner
from styx_actors.actors.runner_choice import RunnerLoad
from styx_actors.events import Event
from styx_actors.model import (
    Backfill,
    GlobalConfig,
    RunState,
    State,
    Trigger,
    TriggerParameters,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
)
from styx_actors.runners.base import DEFAULT_LOG_TAIL_BYTES, ExecutionStatus, RunSpec


class HostPort(Protocol):
    """A host of instances: the shard an instance hashes to, or a dedicated instance's own actor."""

    async def trigger(
        self, instance: WorkflowInstance, trigger: Trigger, parameters: TriggerParameters
    ) -> RunState: ...

    async def send(self, instance: WorkflowInstance, event: Event) -> RunState | None: ...

    async def granted(self, holder: str, resource_ids: tuple[str, ...]) -> None: ...

    async def report_holders(self, restarted: bool = False) -> None: ...

    async def set_global_config(self, config: GlobalConfig) -> None: ...

    async def forget_workflow(self, workflow_id: WorkflowId) -> None: ...

    async def requeue_waiters(self, workflow_id: WorkflowId | None = None) -> None: ...

    async def stats(self) -> dict[str, int]: ...

    async def active_count(self) -> int: ...

    async def runner_status(self, execution_id: str, status: ExecutionStatus) -> None: ...


class SchedulerPort(Protocol):
    """The scheduler: natural triggers, backfill drivers, and the notices of finished instances."""

    async def workflow_changed(self, workflow_id: WorkflowId, state: WorkflowState | None) -> None: ...

    async def workflow_deleted(self, workflow_id: WorkflowId) -> None: ...

    async def backfill_changed(self, backfill: Backfill) -> None: ...

    async def edit_backfill(self, backfill_id: str, changes: dict[str, object]) -> Backfill | None: ...

    async def instance_finished(self, instance: WorkflowInstance, trigger_id: str | None, state: State) -> None: ...

    async def tick(self) -> int: ...


class BrokerPort(Protocol):
    """The resource broker: the shards' permits, the facade's limits."""

    async def acquire(
        self, holder: str, workflow_key: str, parameter: str, resource_ids: list[str]
    ) -> AcquireResult: ...

    async def release(self, holder: str) -> None: ...

    async def restore_holders(
        self,
        host: str,
        holders: Mapping[str, Iterable[str]],
        owner: HolderOwner | None = None,
        active: Collection[str] = (),
    ) -> None: ...

    async def set_limit(self, resource_id: str, limit: int) -> None: ...

    async def remove(self, resource_id: str) -> None: ...

    async def set_global_concurrency(self, concurrency: int | None) -> None: ...


class LogReader(Protocol):
    """Whatever can read the end of an execution's output: a `Runner`, or a node's runner actor."""

    async def logs(self, execution_id: str, tail_bytes: int = DEFAULT_LOG_TAIL_BYTES) -> str: ...


class RunnerPort(LogReader, Protocol):
    """A node's runner actor on Ray: what `PlacingRunner` and the command facade ask of it."""

    async def start_for(self, spec: RunSpec, owner_role: str) -> bool: ...

    async def status(self, execution_id: str) -> ExecutionStatus: ...

    async def stop(self, execution_id: str) -> None: ...

    async def load(self, execution_id: str) -> RunnerLoad: ...
