"""What every backend does the same way: the snapshot's serialised form, the state patch, the commit rule.

Backends differ in layout (tables or keys) but never in what a record looks like or in which transitions
they accept, so both live here once. The Redis commit script mirrors `transition_outcome` in Lua.
"""

from __future__ import annotations

import enum
import gc
from collections.abc import Iterable
from typing import Any

from styx_actors.model import RunState, WorkflowInstance, WorkflowState, WorkflowStatePatch
from styx_actors.store.base import StoredEvent, Transition


def encode_run_state(state: RunState) -> str:
    return state.model_dump_json()


def decode_run_state(text: str | bytes) -> RunState:
    return RunState.model_validate_json(text)


def decode_run_states(texts: Iterable[str | bytes], sort: bool = False) -> list[RunState]:
    """Many snapshots at once (the recovery path), sorted by instance when asked.

    The cyclic garbage collector is paused meanwhile: the decoded models form no reference cycles, and the
    collections that 100,000 new models (about 1.5 million tracked objects) trigger would otherwise take
    most of the time. Their first collection afterwards is paid once, by whoever holds them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        states = [decode_run_state(text) for text in texts]
        if sort:
            states.sort(key=instance_sort_key)
        return states
    finally:
        if was_enabled:
            gc.enable()


def state_patch_json(patch: WorkflowStatePatch) -> dict[str, Any]:
    """The JSON form of the fields sent in `patch`; an explicit null resets the field to its default."""
    defaults = WorkflowState()
    values = {name: getattr(patch, name) for name in patch.model_fields_set}
    values = {name: getattr(defaults, name) if value is None else value for name, value in values.items()}
    return WorkflowState(**values).model_dump(mode="json", include=set(values))


def apply_state_patch(state: WorkflowState, patch: WorkflowStatePatch) -> WorkflowState:
    return WorkflowState.model_validate({**state.model_dump(mode="json"), **state_patch_json(patch)})


def instance_sort_key(state: RunState) -> tuple[str, str, str]:
    """Instances sort by (component, workflow, parameter): unlike the `c#w#p` string, this never lets a `#`
    inside an id reorder them. Python, SQLite (BINARY) and Redis (memcmp on UTF-8) agree on this order."""
    instance = state.workflow_instance
    return instance.workflow_id.component_id, instance.workflow_id.id, instance.parameter


def instance_parts(instance: WorkflowInstance) -> tuple[str, str, str]:
    return instance.workflow_id.component_id, instance.workflow_id.id, instance.parameter


def stored_event(transition: Transition) -> StoredEvent:
    """The event log entry a transition writes: the counter and timestamp are those of its new state."""
    return StoredEvent(
        counter=transition.state.counter, timestamp=transition.state.timestamp, event_json=transition.event_json
    )


class Outcome(enum.Enum):
    WRITE = "write"
    ALREADY_WRITTEN = "already written"
    REFUSED = "refused"


def transition_outcome(transition: Transition, active: bool, latest_event: StoredEvent | None) -> Outcome:
    """Whether `transition` is written, given whether its instance has an active snapshot and the last entry
    of its event log.

    - A transition whose event already is the last one in the log (same counter, timestamp and JSON) was
      written by an earlier attempt whose reply was lost: it counts as written and writes nothing again, so
      retrying a failed commit is safe.
    - Otherwise its counter must be above every stored event counter. Every snapshot write appends its
      event with the snapshot's counter, so this refuses any write not newer than the stored snapshot (a
      zombie writer can never roll an instance back), keeps the log strictly ordered and never overwrites
      it (an insert computed from an outdated `latest_event_counter` is stale too).
    - An insert needs the instance to be inactive; any other transition needs it active.
    """
    if latest_event is not None and latest_event == stored_event(transition):
        return Outcome.ALREADY_WRITTEN
    if latest_event is not None and transition.state.counter <= latest_event.counter:
        return Outcome.REFUSED
    return Outcome.WRITE if transition.insert != active else Outcome.REFUSED


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")


def check_active_filter(component_id: str | None, workflow_id: str | None) -> None:
    """Active states are listed for everything, one component, or one workflow of a component."""
    if workflow_id is not None and component_id is None:
        raise ValueError("filtering active states by workflow needs its component")
