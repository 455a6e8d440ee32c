"""The one store interface every backend implements (APScheduler 4's `DataStore` pattern).

What is stored (docs/store.md#what-is-stored):
- workflows with their state (enabled flag and next natural trigger instants),
- resources, backfills, the global config,
- one snapshot per *active* workflow instance (its RunState, keyed by instance),
- the append-only event log of every instance, ordered by the RunState counter, and an index of the
  instances each workflow has events for (served by the instances endpoint),
- an index of the *finished* instances by the time of their terminal transition, by which the history of
  those finished longer ago than the retention is deleted (docs/store.md, "Retention and sizing"),
- the end of each finished execution's output, kept until it expires (docs/store.md, "Execution output").

The write path of the scheduler is `commit()`: a batch of transitions, each writing its instance's snapshot
and its event atomically. A snapshot is only written when its counter is newer than the stored one, so a
zombie writer can never roll an instance back; terminal states delete the snapshot and keep the events,
until `delete_expired_history` deletes those of instances finished longer ago than the retention.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from styx_actors.model import (
    Backfill,
    GlobalConfig,
    Resource,
    RunState,
    Workflow,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
    WorkflowStatePatch,
)

ACTIVE_STATES_PAGE = 1000  # snapshots per page of `active_state_pages`: ~1 MB of JSON


class StoreError(Exception):
    """The backend could not be reached or refused the operation; the caller may retry."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One entry of an instance's event log. `event_json` is the persisted event JSON (docs/semantics.md#events)."""

    counter: int
    timestamp: int  # epoch milliseconds
    event_json: str


@dataclass(frozen=True, slots=True)
class ExecutionOutput:
    """What is kept of one execution's output once its container is gone."""

    instance: WorkflowInstance
    execution_id: str
    ended_at: int  # epoch milliseconds
    output: str  # the end of its stdout and stderr (at most STYX_OUTPUT_TAIL_BYTES bytes of UTF-8)
    expires_at: int | None = None  # epoch milliseconds (wall clock) from which it is gone; None: never

    @property
    def size(self) -> int:
        """Bytes of the output as UTF-8 (what it costs in the store)."""
        return len(self.output.encode())


@dataclass(frozen=True, slots=True)
class OutputSummary:
    """One kept output without its text (listings)."""

    execution_id: str
    ended_at: int  # epoch milliseconds
    size: int  # bytes of the output as UTF-8


@dataclass(frozen=True, slots=True)
class Transition:
    """One persisted step of an instance: its new RunState and the event that produced it.

    `insert` marks the transition that makes an instance active (triggerExecution): it only succeeds when
    the instance has no active snapshot. Every other transition only succeeds when a snapshot exists and
    its counter is lower than `state.counter`.
    """

    state: RunState
    event_json: str
    insert: bool = False

    @property
    def instance(self) -> WorkflowInstance:
        return self.state.workflow_instance


class Store(abc.ABC):
    """Async persistence for everything the scheduler knows. Every method may raise StoreError."""

    @property
    @abc.abstractmethod
    def identity(self) -> str | None:
        """Where the data lives, without credentials (`sqlite:////abs/path.db`, `redis://host:6379/0?prefix=styx`);
        None in memory. The data dir remembers one installation marker per identity (marker.py)."""

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and create what the backend needs (tables, scripts)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError unless the backend answers."""

    # -- workflows ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_workflow(self, workflow: Workflow, state: WorkflowState) -> None:
        """Create or replace a workflow's configuration together with its state."""

    @abc.abstractmethod
    async def get_workflow(self, workflow_id: WorkflowId) -> tuple[Workflow, WorkflowState] | None:
        """The workflow and its state, or None when it does not exist."""

    async def get_workflows(self, workflow_ids: Sequence[WorkflowId]) -> list[tuple[Workflow, WorkflowState] | None]:
        """`get_workflow` of each id, in order; a backend may answer them in one round trip."""
        return [await self.get_workflow(workflow_id) for workflow_id in workflow_ids]

    @abc.abstractmethod
    async def workflows(self, component_id: str | None = None) -> list[tuple[Workflow, WorkflowState]]:
        """All workflows (of one component when given), sorted by component then workflow id."""

    @abc.abstractmethod
    async def delete_workflow(self, workflow_id: WorkflowId) -> bool:
        """Delete the workflow record only (events, instances and backfills stay). False if it was absent."""

    @abc.abstractmethod
    async def patch_workflow_state(self, workflow_id: WorkflowId, patch: WorkflowStatePatch) -> WorkflowState | None:
        """Overwrite the state fields that are set in `patch`; None when the workflow does not exist."""

    # -- resources ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_resource(self, resource: Resource) -> None: ...

    @abc.abstractmethod
    async def get_resource(self, resource_id: str) -> Resource | None: ...

    @abc.abstractmethod
    async def resources(self) -> list[Resource]:
        """All resources, sorted by id."""

    @abc.abstractmethod
    async def delete_resource(self, resource_id: str) -> bool: ...

    # -- backfills ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_backfill(self, backfill: Backfill) -> None: ...

    @abc.abstractmethod
    async def get_backfill(self, backfill_id: str) -> Backfill | None: ...

    @abc.abstractmethod
    async def backfills(
        self,
        component_id: str | None = None,
        workflow_id: str | None = None,
        include_finished: bool = False,
    ) -> list[Backfill]:
        """Backfills filtered by component and/or workflow id; without `include_finished` only those neither
        halted nor all-triggered. Sorted by id."""

    # -- global config --------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_config(self) -> GlobalConfig:
        """The global config; the defaults when none was ever stored."""

    @abc.abstractmethod
    async def put_config(self, config: GlobalConfig) -> None: ...

    # -- installation marker (styx_actors/store/marker.py) --------------------------------------------------

    @abc.abstractmethod
    async def get_marker(self) -> str | None:
        """The store's installation marker, None when none was ever written (or the data is gone)."""

    @abc.abstractmethod
    async def put_marker_if_absent(self, marker: str) -> str:
        """Write `marker` unless one exists; the marker the store holds afterwards."""

    # -- active instances and their events ------------------------------------------------------------------

    @abc.abstractmethod
    async def commit(self, transitions: Sequence[Transition]) -> list[bool]:
        """Persist a batch of transitions (group commit); one result per transition, True when written.

        Each transition is atomic on its own: its snapshot change and its event are written together or
        not at all. A refused transition (stale counter, insert over an active instance, update of an
        instance that is not active) writes nothing. Transitions of the same instance in one batch are
        applied in order.

        A counter is stale unless it is above every stored event counter of the instance (inserts too).
        A transition whose event already is the instance's last one (same counter, timestamp and JSON)
        reports True without writing again, so a commit retried after a lost reply is safe.
        """

    @abc.abstractmethod
    async def active_state(self, instance: WorkflowInstance) -> RunState | None: ...

    @abc.abstractmethod
    async def active_states(self, component_id: str | None = None, workflow_id: str | None = None) -> list[RunState]:
        """Snapshots of active instances (all, of a component, or of a component's workflow), sorted by
        instance key. This is the recovery path: it must stay fast for 100,000 snapshots."""

    async def owned_active_states(self, owns: Callable[[str], bool]) -> list[RunState]:
        """Snapshots of the active instances whose key `owns` accepts, in no particular order: a shard's
        recovery. A backend that can tell the key before decoding a snapshot decodes only the owned ones
        (each shard would otherwise decode every shard's snapshots)."""
        return [state for state in await self.active_states() if owns(state.workflow_instance.key())]

    @abc.abstractmethod
    def active_state_pages(self, page_size: int = ACTIVE_STATES_PAGE) -> AsyncIterator[list[RunState]]:
        """Every active instance's snapshot in instance key order, at most `page_size` at a time, so that a
        reader of all of them (GET /status/activeStates unfiltered, /metrics) never holds them all. Not one
        snapshot in time: an instance that starts or ends during the read may be listed or not, at its state
        when its page was read; none is listed twice."""

    @abc.abstractmethod
    async def active_states_by_trigger(self, trigger_id: str) -> list[RunState]:
        """Active instances whose trigger id is `trigger_id` (a backfill's instances), sorted by key."""

    @abc.abstractmethod
    async def events(self, instance: WorkflowInstance) -> list[StoredEvent]:
        """The instance's event log in counter order (empty when it has none)."""

    @abc.abstractmethod
    async def latest_event_counter(self, instance: WorkflowInstance) -> int:
        """The highest stored event counter of the instance, -1 when it has no events."""

    async def latest_event_counters(self, instances: Sequence[WorkflowInstance]) -> list[int]:
        """`latest_event_counter` of each instance, in order; a backend may answer them in one round trip."""
        return [await self.latest_event_counter(instance) for instance in instances]

    @abc.abstractmethod
    async def delete_expired_history(self, finished_before_millis: int, limit: int) -> int:
        """Delete the event logs of at most `limit` finished instances whose terminal transition is older than
        `finished_before_millis` (epoch milliseconds), oldest first, with their entries in the instances index
        and the finished index; how many instances were deleted.

        An active instance is never touched: `commit()` indexes an instance as finished with its terminal
        transition and unindexes it with its next insert (a re-trigger), atomically with each. Afterwards the
        instance reads as one never seen: no events, latest counter -1, not listed.
        """

    @abc.abstractmethod
    async def instance_parameters(
        self,
        workflow_id: WorkflowId,
        start: str | None = None,
        stop: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[str]:
        """Parameters of the workflow's instances that have events, in lexicographic order, from `start`
        (inclusive) to `stop` (exclusive), at most `limit` of them. `newest_first`: in reverse order, so
        that `limit` keeps the latest ones (the dashboard's recent instances)."""

    # -- execution output -----------------------------------------------------------------------------------
    # Expired outputs are never returned: Redis drops them itself (key TTLs), SQLite filters them on read
    # and deletes them in bounded batches (`delete_expired_outputs`, called by the janitor).

    @abc.abstractmethod
    async def put_execution_output(self, output: ExecutionOutput) -> None:
        """Keep an execution's output until `output.expires_at`, replacing what was kept of that execution."""

    @abc.abstractmethod
    async def execution_output(self, instance: WorkflowInstance, execution_id: str) -> ExecutionOutput | None:
        """The output kept of the instance's execution `execution_id`; None when none is (or it expired)."""

    @abc.abstractmethod
    async def execution_outputs(self, instance: WorkflowInstance) -> list[OutputSummary]:
        """The instance's kept outputs, sorted by end time, then execution id."""

    @abc.abstractmethod
    async def delete_expired_outputs(self, limit: int) -> int:
        """Delete at most `limit` outputs whose expiry has passed; how many were deleted. A backend whose
        records expire by themselves (Redis) has none to delete."""
