"""Run summaries for the dashboard (docs/dashboard.md): what an instance's latest trigger did, replayed from
its event log with the state machine, so one read per instance gives its state, tries and timings whether it
is still active or long finished (the snapshot of an active instance is the same replay, persisted)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from styx_actors.events import (
    Halt,
    RunError,
    Started,
    Submit,
    Terminate,
    Timeout,
    TimeTrigger,
    TriggerExecution,
    event_from_json,
)
from styx_actors.model import RunState, WorkflowId, WorkflowInstance
from styx_actors.state_machine import IllegalTransition, new_instance_state, transition
from styx_actors.store.base import Store, StoredEvent

# Events that end an execution that has started: its exit, a runner error, a timeout, or a halt (which kills it).
_EXECUTION_ENDS = (Terminate, RunError, Timeout, Halt)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One instance as the dashboard draws it. Times are epoch milliseconds; `started_at`/`ended_at` are
    those of the latest execution (`ended_at` None while it runs), `updated_at` is the last event's."""

    parameter: str
    state: str
    tries: int
    triggered_at: int | None
    started_at: int | None
    ended_at: int | None
    updated_at: int
    message: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize_run(instance: WorkflowInstance, events: Iterable[StoredEvent]) -> RunSummary | None:
    """The state the instance's latest trigger left it in (None without events). Events the state machine
    refuses are skipped, as when backfill partitions are replayed (styx_actors/history.py)."""
    run_state: RunState | None = None
    triggered_at = started_at = ended_at = None
    updated_at: int | None = None
    for stored in sorted(events, key=lambda e: e.counter):
        event = event_from_json(stored.event_json)[0]
        updated_at = stored.timestamp
        if isinstance(event, TriggerExecution | TimeTrigger):  # a new trigger starts a new run
            run_state = new_instance_state(instance, stored.counter - 1, stored.timestamp)
            triggered_at, started_at, ended_at = stored.timestamp, None, None
        if run_state is None:
            continue
        try:
            run_state = transition(run_state, event, stored.timestamp)
        except IllegalTransition:
            continue
        if isinstance(event, Submit):  # a new execution (a retry) starts its own clock
            started_at = ended_at = None
        elif isinstance(event, Started):
            started_at = stored.timestamp
        elif isinstance(event, _EXECUTION_ENDS) and started_at is not None and ended_at is None:
            ended_at = stored.timestamp
    if run_state is None or updated_at is None:
        return None
    last_message = run_state.data.last_message()
    return RunSummary(
        parameter=instance.parameter,
        state=run_state.state.value,
        tries=run_state.data.tries,
        triggered_at=triggered_at,
        started_at=started_at,
        ended_at=ended_at,
        updated_at=updated_at,
        message=last_message.line if last_message else None,
    )


async def recent_runs(store: Store, workflow_id: WorkflowId, parameters: Iterable[str]) -> list[dict[str, Any]]:
    """The summaries of the given instances of the workflow, in the order given (instances without a trigger
    in their log are left out)."""

    async def summary(parameter: str) -> RunSummary | None:
        instance = WorkflowInstance(workflow_id=workflow_id, parameter=parameter)
        return summarize_run(instance, await store.events(instance))

    summaries = await asyncio.gather(*(summary(parameter) for parameter in parameters))
    return [found.to_json() for found in summaries if found is not None]


async def newest_parameters(store: Store, workflow_id: WorkflowId, count: int) -> list[str]:
    """The `count` latest instances of the workflow that exist, whatever their dates, oldest first."""
    newest = await store.instance_parameters(workflow_id, limit=count, newest_first=True)
    return newest[::-1]
