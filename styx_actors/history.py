"""Views rebuilt from an instance's event log: its execution history (docs/semantics.md#execution-history)
and the state of one backfill partition, and from those the status list of a whole backfill
(docs/semantics.md#backfill-statuses).

Event logs are replayed in counter order. A stored event that cannot be parsed raises EventParseError: a
corrupt log is reported, not silently shortened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from styx_actors.events import (
    Created,
    Event,
    Halt,
    RunError,
    Started,
    Stop,
    Submit,
    Submitted,
    Success,
    Terminate,
    Timeout,
    TimeTrigger,
    TriggerExecution,
    event_from_json,
)
from styx_actors.model import Backfill, RunState, RunStateData, StateData, WorkflowInstance
from styx_actors.retry import MISSING_DEPS_EXIT_CODE, SUCCESS_EXIT_CODE
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.state_machine import IllegalTransition, new_instance_state, transition
from styx_actors.store.base import StoredEvent
from styx_actors.timeutil import format_instant, from_millis

UNKNOWN_TRIGGER_ID = "UNKNOWN"


def _decoded(events: Iterable[StoredEvent]) -> list[tuple[StoredEvent, Event]]:
    return [(stored, event_from_json(stored.event_json)[0]) for stored in sorted(events, key=lambda e: e.counter)]


def _iso(millis: int) -> str:
    return format_instant(from_millis(millis))


# ---------------------------------------------------------------------------------------------------------
# Execution history (WorkflowInstanceExecutionData)


@dataclass
class _Execution:
    execution_id: str | None = None
    docker_image: str | None = None
    commit_sha: str | None = None
    runner_id: str | None = None
    statuses: list[dict[str, Any]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return self.execution_id is None and not self.statuses

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "docker_image": self.docker_image,
            "commit_sha": self.commit_sha,
            "runner_id": self.runner_id,
            "statuses": self.statuses,
        }


@dataclass
class _Trigger:
    trigger_id: str = UNKNOWN_TRIGGER_ID
    timestamp: int | None = None
    parameters: dict[str, Any] | None = None
    complete: bool = False
    executions: list[_Execution] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        assert self.timestamp is not None, "only dated triggers are written"
        return {
            "trigger_id": self.trigger_id,
            "timestamp": _iso(self.timestamp),
            "parameters": self.parameters,
            "complete": self.complete,
            "executions": [execution.to_json() for execution in self.executions],
        }


class _HistoryBuilder:
    """Styx's WFIExecutionBuilder: one pass over the log, one open trigger and one open execution at a time."""

    def __init__(self) -> None:
        self.triggers: list[dict[str, Any]] = []
        self.trigger = _Trigger()
        self.execution = _Execution()

    def apply(self, event: Event, millis: int) -> None:
        match event:
            case TriggerExecution(trigger=trigger, parameters=parameters):
                self._open_trigger(trigger.trigger_id, millis, parameters.model_dump(mode="json"))
            case TimeTrigger():
                self._open_trigger(UNKNOWN_TRIGGER_ID, millis, None)
            case Submit(execution_description=description, execution_id=execution_id):
                self._touch(millis)
                self.execution.docker_image = description.docker_image
                self.execution.commit_sha = description.commit_sha
                self.execution.execution_id = execution_id
            case Submitted(execution_id=execution_id, runner_id=runner_id):
                if execution_id is not None:
                    self.execution.execution_id = execution_id
                self.execution.runner_id = runner_id
                self._status(millis, "SUBMITTED")
            case Created(execution_id=execution_id, docker_image=docker_image):
                self.execution.execution_id = execution_id
                self.execution.docker_image = docker_image
                self._status(millis, "SUBMITTED")
            case Started():
                self._status(millis, "STARTED")
            case Terminate(exit_code=exit_code):
                self._status(millis, _termination_status(exit_code), _exit_line(exit_code))
                self._close_execution()
            case RunError(message=message):
                self._status(millis, "FAILED", message)
                self._close_execution()
            case Timeout():
                # Styx: a timeout before anything else only dates the trigger.
                if self.trigger.timestamp is None:
                    self.trigger.timestamp = millis
                else:
                    self._status(millis, "TIMEOUT")
                    self._close_execution()
            case Halt():
                self._status(millis, "HALTED")
                self.trigger.complete = True
                self.close_trigger()
            case Success() | Stop():
                self.trigger.complete = True
                self.close_trigger()
            # info, dequeue, retryAfter and retry add nothing to the history.

    def _touch(self, millis: int) -> None:
        """Legacy logs may start without a trigger event: such a trigger is dated by its first event."""
        if self.trigger.timestamp is None:
            self.trigger.timestamp = millis

    def _status(self, millis: int, status: str, message: str | None = None) -> None:
        self._touch(millis)
        self.execution.statuses.append({"timestamp": _iso(millis), "status": status, "message": message})

    def _open_trigger(self, trigger_id: str, millis: int, parameters: dict[str, Any] | None) -> None:
        self.close_trigger()
        self.trigger = _Trigger(trigger_id=trigger_id, timestamp=millis, parameters=parameters)

    def _close_execution(self) -> None:
        if not self.execution.is_empty():
            self.trigger.executions.append(self.execution)
        self.execution = _Execution()

    def close_trigger(self) -> None:
        self._close_execution()
        if self.trigger.timestamp is not None:
            self.triggers.append(self.trigger.to_json())
        self.trigger = _Trigger()


def _termination_status(exit_code: int | None) -> str:
    if exit_code == SUCCESS_EXIT_CODE:
        return "SUCCESS"
    if exit_code == MISSING_DEPS_EXIT_CODE:
        return "MISSING_DEPS"
    return "FAILED"


def _exit_line(exit_code: int | None) -> str:
    return "Exit code unknown" if exit_code is None else f"Exit code: {exit_code}"


def execution_history(instance: WorkflowInstance, events: Iterable[StoredEvent]) -> dict[str, Any]:
    """The instance's triggers and their executions in the contract's shape ("Get Workflow Instance")."""
    builder = _HistoryBuilder()
    for stored, event in _decoded(events):
        builder.apply(event, stored.timestamp)
    builder.close_trigger()
    return {"workflow_instance": instance.contract_json(), "triggers": builder.triggers}


# ---------------------------------------------------------------------------------------------------------
# Backfill statuses


def replay_backfill_partition(
    instance: WorkflowInstance, events: Iterable[StoredEvent], backfill_id: str
) -> RunStateData | None:
    """The state one backfill left an instance in: replay from the first triggerExecution of the backfill up
    to the next triggerExecution, skipping illegal transitions. None when the backfill never triggered it."""
    run_state: RunState | None = None
    initial_timestamp = 0
    for stored, event in _decoded(events):
        if isinstance(event, TriggerExecution):
            if run_state is not None:
                break
            if event.trigger.trigger_id != backfill_id:
                continue
            run_state = new_instance_state(instance, stored.counter - 1, stored.timestamp)
            initial_timestamp = stored.timestamp
        elif run_state is None:
            continue
        try:
            run_state = transition(run_state, event, stored.timestamp)
        except IllegalTransition:
            continue
    if run_state is None:
        return None
    return RunStateData(
        workflow_instance=instance,
        state=run_state.state.value,
        state_data=run_state.data,
        initial_timestamp=initial_timestamp,
        latest_timestamp=run_state.timestamp,
    )


EventsOf = Callable[[str], Awaitable[list[StoredEvent]]]


def _pseudo_state(instance: WorkflowInstance, state: str) -> RunStateData:
    return RunStateData(workflow_instance=instance, state=state, state_data=StateData())


def backfill_partitions(backfill: Backfill, schedule: Schedule, first: datetime | None = None) -> Iterator[datetime]:
    """The backfill's partitions in ascending time order, lazily, from the first at or after `first` (so a
    page of a long backfill is read without walking the partitions before it)."""
    start = backfill.start
    if first is not None and first > start:
        if first >= backfill.end:
            return iter(())
        start = first if schedule.is_aligned(first) else schedule.next(first)
    return schedule.iter_range(start, backfill.end)


async def backfill_statuses(
    backfill: Backfill,
    schedule: Schedule,
    active: Mapping[str, RunState],
    events_of: EventsOf,
    partitions: Iterable[datetime] | None = None,
) -> list[RunStateData]:
    """One entry per partition of the backfill, or per one of `partitions` (a page of backfill_partitions),
    in ascending time order (docs/semantics.md#backfill-statuses).

    `schedule` is the backfill's own schedule, `active` maps parameters to the active states of the
    workflow's instances, and `events_of(parameter)` reads one instance's event log. Partitions the cursor
    has passed show their active state, else their replayed state, else UNKNOWN; the rest are WAITING.
    """

    def passed(instant: datetime) -> bool:
        # A forward backfill triggers upwards from its start, a reverse one downwards from its last partition.
        return instant > backfill.next_trigger if backfill.reverse else instant < backfill.next_trigger

    async def status(instant: datetime) -> RunStateData:
        instance = WorkflowInstance(workflow_id=backfill.workflow_id, parameter=to_parameter(schedule, instant))
        if not passed(instant):
            return _pseudo_state(instance, "WAITING")
        run_state = active.get(instance.parameter)
        if run_state is not None and run_state.data.trigger_id == backfill.id:
            return RunStateData.of(run_state)
        replayed = replay_backfill_partition(instance, await events_of(instance.parameter), backfill.id)
        return replayed if replayed is not None else _pseudo_state(instance, "UNKNOWN")

    if partitions is None:
        partitions = backfill_partitions(backfill, schedule)
    return list(await asyncio.gather(*(status(instant) for instant in partitions)))
