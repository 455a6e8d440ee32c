"""What the CLI shows, derived from API payloads without I/O: event lines, active states grouped by
workflow, and a backfill's partitions counted by progress."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from styx_actors.events import EventParseError, event_from_json
from styx_actors.schedule import Schedule, WellKnown, to_parameter

# One active-states group per workflow key `component#workflow`, instances in parameter order.
StateGroups = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class EventInfo:
    """One line of `styx events`: when, which event, and its human-readable detail (docs/semantics.md#events)."""

    timestamp: int  # epoch milliseconds
    name: str
    info: str

    @classmethod
    def of(cls, entry: dict[str, Any]) -> EventInfo:
        """From an entry of GET /status/events: `{"event": <persisted event>, "timestamp": ms}`."""
        event_json = entry.get("event") or {}
        try:
            event, _ = event_from_json(event_json)
        except EventParseError:  # a newer server's event type: show its name, without detail
            return cls(timestamp=int(entry.get("timestamp", 0)), name=str(event_json.get("@type", "?")), info="")
        return cls(timestamp=int(entry.get("timestamp", 0)), name=event.name, info=event.info())

    def to_json(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "name": self.name, "info": self.info}


def group_states(active_states: list[dict[str, Any]]) -> StateGroups:
    """RunStateData entries grouped by workflow key (sorted), each group sorted by parameter."""
    groups: StateGroups = {}
    for state in active_states:
        instance = state["workflow_instance"]
        workflow_id = instance["workflow_id"]
        groups.setdefault(f"{workflow_id['component_id']}#{workflow_id['id']}", []).append(state)
    return {
        key: sorted(groups[key], key=lambda state: state["workflow_instance"]["parameter"]) for key in sorted(groups)
    }


@dataclass(frozen=True)
class PartitionCounts:
    """A backfill's partitions by progress: finished well, in progress, finished badly, not triggered yet."""

    done: int = 0
    running: int = 0
    failed: int = 0
    waiting: int = 0

    @property
    def total(self) -> int:
        return self.done + self.running + self.failed + self.waiting

    @property
    def finished(self) -> bool:
        return self.running == 0 and self.waiting == 0

    @classmethod
    def of(cls, statuses: list[dict[str, Any]]) -> PartitionCounts:
        """From the backfill's status list: DONE is done; ERROR and UNKNOWN (no instance of this backfill
        was found for the partition) are failed; WAITING is waiting; any other state is still in progress
        (FAILED and TERMINATED too: the retry policy decides what comes next)."""
        names = [status["state"] for status in statuses]
        return cls(
            done=names.count("DONE"),
            failed=names.count("ERROR") + names.count("UNKNOWN"),
            waiting=names.count("WAITING"),
            running=sum(name not in ("DONE", "ERROR", "UNKNOWN", "WAITING") for name in names),
        )

    def fields(self) -> dict[str, int]:
        return {"done": self.done, "running": self.running, "failed": self.failed, "waiting": self.waiting}


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def env_text(env: dict[str, str]) -> str:
    """`K1=V1 K2=V2`, keys sorted."""
    return " ".join(f"{key}={env[key]}" for key in sorted(env))


def schedule_forms() -> str:
    """The schedules a workflow may have, for the error that refuses another."""
    names = ", ".join(kind.name.lower() for kind in WellKnown)
    spellings = ", ".join(f"{kind.value}/{Schedule.parse(kind.value).json_form()}" for kind in WellKnown)
    return (
        f"accepted schedules: {names} (also written {spellings}), or a 5-field cron expression "
        "'minute hour day-of-month month day-of-week' in UTC, such as '0 4 * * 1-5' (04:00 on weekdays)"
    )


def parameter_forms(parameter: str, workflow: str, schedule: Schedule, now: datetime) -> str:
    """Why a trigger's parameter is refused, with the forms the workflow's schedule takes: the latest
    partition as an example, and that any finer time is floored."""
    example = to_parameter(schedule, schedule.last(now))
    return (
        f"Cannot read the parameter {parameter!r} as a time. Workflow {workflow} (schedule {schedule.json_form()}) "
        f"takes partitions like {example}; any time yyyy-MM-dd[THH[:mm[:ss]]] in UTC (or ending in Z or "
        "+hh:mm/-hh:mm) is floored to its schedule."
    )
