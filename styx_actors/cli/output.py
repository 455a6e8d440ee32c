"""The three output modes of the CLI (docs/cli.md#output-modes): pretty (rich tables and colours, the
default), plain (space-separated lines for unix tools) and JSON (machine readable; messages as JSON strings).

Renderers take the API's JSON payloads. JSON mode prints them as the API sent them; pretty and plain read
them through the contract models. Errors never pass through here: they go to stderr (see __init__.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any, Protocol

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from styx_actors.cli.views import (
    EventInfo,
    PartitionCounts,
    StateGroups,
    compact_json,
    env_text,
)
from styx_actors.model import Backfill, Resource, RunStateData, Workflow, WorkflowState
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.timeutil import format_instant, from_millis

NA = "N/A"
NO_EXECUTION_ID = "<no-execution-id>"
NO_INFO = "No info"
NO_ACTIVE_INSTANCES = (
    "No active workflow instances. Finished ones are not listed: "
    "`styx events COMPONENT WORKFLOW PARAMETER` shows what happened to one."
)
TRUNCATED_LENGTH = 20
ELLIPSIS = "..."
# Piped pretty output is not folded at rich's default 80 columns (tables are only as wide as their cells).
PIPED_WIDTH = 1000

STATE_STYLES = {
    "WAITING": "bright_black",
    "NEW": "bright_black",
    "QUEUED": "bright_black",
    "TERMINATED": "bright_black",
    "PREPARE": "cyan",
    "SUBMITTING": "cyan",
    "SUBMITTED": "cyan",
    "RUNNING": "bright_blue",
    "FAILED": "red",
    "UNKNOWN": "bright_red",
    "ERROR": "bright_red",
    "DONE": "bright_green",
}
MESSAGE_STYLES = {"INFO": "green", "WARNING": "yellow", "ERROR": "red"}

BACKFILL_COLUMNS = (
    "BACKFILL ID",
    "HALTED",
    "ALL TRIGGERED",
    "CONCURRENCY",
    "START (INCL)",
    "END (EXCL)",
    "REVERSE",
    "NEXT TRIGGER",
    "COMPONENT",
    "WORKFLOW",
    "CREATED",
    "LAST MODIFIED",
    "DESCRIPTION",
    "TRIGGER ENV",
)
STATE_COLUMNS = ("WORKFLOW INSTANCE", "STATE", "EXECUTION ID", "TRIES", "PREVIOUS EXECUTION MESSAGE")
UNBROKEN_STATE_COLUMNS = ("WORKFLOW INSTANCE", "STATE")


class ProgressDisplay(Protocol):
    """Shows a watched backfill's partition counts as they change."""

    def update(self, counts: PartitionCounts) -> None: ...


class Output(Protocol):
    def message(self, text: str) -> None: ...
    def states(self, groups: StateGroups) -> None: ...
    def events(self, events: list[EventInfo]) -> None: ...
    def events_header(self) -> None: ...
    def event(self, event: EventInfo) -> None: ...
    def backfill(self, backfill: dict[str, Any], no_trunc: bool) -> None: ...
    def backfill_payload(self, payload: dict[str, Any], no_trunc: bool) -> None: ...
    def backfills(self, payloads: list[dict[str, Any]], no_trunc: bool) -> None: ...
    def backfill_progress(
        self, backfill_id: str, first: PartitionCounts
    ) -> AbstractContextManager[ProgressDisplay]: ...
    def resources(self, resources: list[dict[str, Any]]) -> None: ...
    def workflow(self, workflow_with_state: dict[str, Any]) -> None: ...
    def workflows(self, workflows: list[dict[str, Any]]) -> None: ...


def make_output(json_mode: bool, plain: bool) -> Output:
    if json_mode:
        return JsonOutput()
    if plain:
        return PlainOutput()
    return PrettyOutput()


def warn(text: str) -> None:
    """A warning: on stderr, so that it never mixes with a command's (JSON or plain) output."""
    print(f"Warning: {text}", file=sys.stderr)


def event_time(timestamp_ms: int) -> str:
    """`yyyy-MM-ddTHH:mm:ss` in UTC."""
    return from_millis(timestamp_ms).strftime("%Y-%m-%dT%H:%M:%S")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _truncated(text: str | None, no_trunc: bool) -> str:
    if text is None:
        return NA
    if no_trunc or len(text) <= TRUNCATED_LENGTH:
        return text
    return text[:TRUNCATED_LENGTH] + ELLIPSIS


def _instant(value: datetime | None) -> str:
    """To the second: enough to tell changes apart in a table."""
    return format_instant(value.replace(microsecond=0)) if value is not None else NA


def _backfill_fields(backfill: Backfill, no_trunc: bool) -> list[str]:
    """The cells of a backfill row, in BACKFILL_COLUMNS order; partition instants in the schedule's form."""
    schedule = Schedule.parse(backfill.schedule)
    env = backfill.trigger_parameters.env if backfill.trigger_parameters is not None else None
    return [
        backfill.id,
        _bool(backfill.halted),
        _bool(backfill.all_triggered),
        str(backfill.concurrency),
        to_parameter(schedule, backfill.start),
        to_parameter(schedule, backfill.end),
        _bool(backfill.reverse),
        to_parameter(schedule, backfill.next_trigger),
        backfill.workflow_id.component_id,
        backfill.workflow_id.id,
        _instant(backfill.created),
        _instant(backfill.last_modified),
        _truncated(backfill.description, no_trunc),
        _truncated(env_text(env) if env is not None else None, no_trunc),
    ]


def _workflow_fields(workflow: Workflow, state: WorkflowState) -> list[tuple[str, str]]:
    config = workflow.configuration
    config_json = config.model_dump(mode="json")  # schedule, timeout and instants in their contract forms
    state_json = state.model_dump(mode="json")
    return [
        ("Component", workflow.component_id),
        ("Workflow", workflow.workflow_id),
        ("Schedule", config_json["schedule"]),
        ("Offset", config.offset or ""),
        ("Docker Image", config.docker_image or ""),
        ("Docker Arguments", json.dumps(config.docker_args or [])),
        ("Termination Logging", _bool(config.docker_termination_logging)),
        ("Service Account", config.service_account or ""),
        ("Resources", json.dumps(config.resources)),
        ("Environment", env_text(config.env)),
        ("Timeout", config_json["running_timeout"] or ""),
        ("Commit", config.commit_sha or ""),
        ("Retry Condition", config.retry_condition or ""),
        ("Enabled", _bool(state.enabled)),
        ("Next Trigger", state_json["next_natural_trigger"] or ""),
        ("Next Trigger (offset)", state_json["next_natural_offset_trigger"] or ""),
    ]


def _last_message(state: RunStateData) -> tuple[str, str]:
    """(level, line) of the instance's last message, or Styx's `No info`."""
    message = state.state_data.last_message()
    return (message.level.value, message.line) if message is not None else ("UNKNOWN", NO_INFO)


# ---------------------------------------------------------------------------------------------------------
# Pretty


class PrettyOutput:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(
            highlight=False, markup=False, emoji=False, width=None if sys.stdout.isatty() else PIPED_WIDTH
        )

    def message(self, text: str) -> None:
        self.console.print(text)

    def states(self, groups: StateGroups) -> None:
        self.console.print(self._states_table(groups) if groups else NO_ACTIVE_INSTANCES)

    def _states_table(self, groups: StateGroups) -> Table:
        table = _table(*STATE_COLUMNS, unbroken=UNBROKEN_STATE_COLUMNS)
        for key, entries in groups.items():
            component, _, workflow = key.partition("#")
            table.add_row(Text.assemble((component, "cyan"), " ", (workflow, "blue")))
            for entry in entries:
                state = RunStateData.model_validate(entry)
                level, line = _last_message(state)
                table.add_row(
                    "  " + state.workflow_instance.parameter,
                    Text(state.state, style=STATE_STYLES.get(state.state, "")),
                    state.state_data.execution_id or NO_EXECUTION_ID,
                    str(state.state_data.tries),
                    Text(line, style=MESSAGE_STYLES.get(level, "")),
                )
        return table

    def events(self, events: list[EventInfo]) -> None:
        self.events_header()
        for event in events:
            self.event(event)

    def events_header(self) -> None:
        self.console.print(Text(f"{'TIME':<20} {'EVENT':<18} DATA", style="bold"))

    def event(self, event: EventInfo) -> None:
        self.console.print(f"{event_time(event.timestamp):<20} {event.name:<18} {event.info}")

    def backfill(self, backfill: dict[str, Any], no_trunc: bool) -> None:
        self.backfills([{"backfill": backfill, "statuses": None}], no_trunc)

    def backfill_payload(self, payload: dict[str, Any], no_trunc: bool) -> None:
        self.backfills([payload], no_trunc)

    def backfills(self, payloads: list[dict[str, Any]], no_trunc: bool) -> None:
        rows = [_backfill_fields(Backfill.model_validate(payload["backfill"]), no_trunc) for payload in payloads]
        table = _table(*BACKFILL_COLUMNS)
        for row in rows:
            table.add_row(*row)
        unbounded = self.console.options.update_width(PIPED_WIDTH)
        if Measurement.get(self.console, unbounded, table).maximum <= self.console.width:
            self.console.print(table)
        else:  # fourteen columns rarely fit a terminal: one labelled block per backfill instead
            self._backfill_blocks(rows)
        for payload in payloads:
            if payload.get("statuses") is not None:
                self.console.print()
                self.console.print(self._states_table(_partition_group(payload)))

    def _backfill_blocks(self, rows: list[list[str]]) -> None:
        for index, row in enumerate(rows):
            if index:
                self.console.print()
            self._labelled(list(zip(BACKFILL_COLUMNS, row, strict=True)))

    def _labelled(self, fields: list[tuple[str, str]]) -> None:
        """`Label:  value` lines, values aligned."""
        width = max(len(label) for label, _ in fields) + 2
        for label, value in fields:
            self.console.print(Text.assemble((f"{label + ':':<{width}}", "bold"), value))

    @contextmanager
    def backfill_progress(self, backfill_id: str, first: PartitionCounts) -> Iterator[ProgressDisplay]:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("[bright_green]{task.fields[done]} done[/]"),
            TextColumn("[bright_blue]{task.fields[running]} running[/]"),
            TextColumn("[red]{task.fields[failed]} failed[/]"),
            TextColumn("[bright_black]{task.fields[waiting]} waiting[/]"),
            TextColumn("of {task.total}"),
            console=self.console,
        )
        bar = _ProgressBar(progress, progress.add_task(backfill_id))
        bar.update(first)  # before the first frame is drawn, so that it shows the total
        with progress:
            yield bar

    def resources(self, resources: list[dict[str, Any]]) -> None:
        table = _table("RESOURCE", "CONCURRENCY")
        for resource in (Resource.model_validate(item) for item in resources):
            table.add_row(resource.id, str(resource.concurrency))
        self.console.print(table)

    def workflow(self, workflow_with_state: dict[str, Any]) -> None:
        self._labelled(
            _workflow_fields(
                Workflow.model_validate(workflow_with_state["workflow"]),
                WorkflowState.model_validate(workflow_with_state["state"]),
            )
        )

    def workflows(self, workflows: list[dict[str, Any]]) -> None:
        table = _table("COMPONENT", "WORKFLOW")
        for workflow in sorted(workflows, key=lambda w: (w["component_id"], w["workflow_id"])):
            table.add_row(workflow["component_id"], workflow["workflow_id"])
        self.console.print(table)


class _ProgressBar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def update(self, counts: PartitionCounts) -> None:
        self._progress.update(
            self._task,
            total=counts.total,
            completed=counts.done + counts.failed,
            done=counts.done,
            running=counts.running,
            failed=counts.failed,
            waiting=counts.waiting,
        )


def _table(*columns: str, unbroken: Collection[str] = ()) -> Table:
    """A table whose cells fold when the terminal is narrow, except in the `unbroken` columns."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in unbroken)
    return table


def _partition_group(payload: dict[str, Any]) -> StateGroups:
    """A backfill's partitions as one group, in the time order the API gives."""
    workflow_id = payload["backfill"]["workflow_id"]
    return {f"{workflow_id['component_id']}#{workflow_id['id']}": payload["statuses"]["active_states"]}


# ---------------------------------------------------------------------------------------------------------
# Plain


class PlainOutput:
    def message(self, text: str) -> None:
        print(text)

    def states(self, groups: StateGroups) -> None:
        for entries in groups.values():
            for entry in entries:
                state = RunStateData.model_validate(entry)
                workflow_id = state.workflow_instance.workflow_id
                print(
                    workflow_id.component_id,
                    workflow_id.id,
                    state.workflow_instance.parameter,
                    state.state,
                    state.state_data.execution_id or NO_EXECUTION_ID,
                    state.state_data.tries,
                    _last_message(state)[1],
                )

    def events(self, events: list[EventInfo]) -> None:
        for event in events:
            self.event(event)

    def events_header(self) -> None:
        pass

    def event(self, event: EventInfo) -> None:
        print(event_time(event.timestamp), event.name, event.info, flush=True)  # followed events show at once

    def backfill(self, backfill: dict[str, Any], no_trunc: bool) -> None:
        self.backfill_payload({"backfill": backfill, "statuses": None}, no_trunc)

    def backfill_payload(self, payload: dict[str, Any], no_trunc: bool) -> None:
        print(*_backfill_fields(Backfill.model_validate(payload["backfill"]), no_trunc=True))
        if payload.get("statuses") is not None:
            self.states(_partition_group(payload))

    def backfills(self, payloads: list[dict[str, Any]], no_trunc: bool) -> None:
        for payload in payloads:
            self.backfill_payload(payload, no_trunc)

    def backfill_progress(self, backfill_id: str, first: PartitionCounts) -> AbstractContextManager[ProgressDisplay]:
        lines = _ProgressLines(backfill_id)
        lines.update(first)
        return nullcontext(lines)

    def resources(self, resources: list[dict[str, Any]]) -> None:
        for resource in (Resource.model_validate(item) for item in resources):
            print(resource.id, resource.concurrency)

    def workflow(self, workflow_with_state: dict[str, Any]) -> None:
        fields = _workflow_fields(
            Workflow.model_validate(workflow_with_state["workflow"]),
            WorkflowState.model_validate(workflow_with_state["state"]),
        )
        print(*(value or NA for _, value in fields))

    def workflows(self, workflows: list[dict[str, Any]]) -> None:
        for workflow in sorted(workflows, key=lambda w: (w["component_id"], w["workflow_id"])):
            print(workflow["component_id"], workflow["workflow_id"])


class _ProgressLines:
    """One line whenever the counts change: `<id> done=N running=N failed=N waiting=N total=N`."""

    def __init__(self, backfill_id: str) -> None:
        self._backfill_id = backfill_id
        self._shown: PartitionCounts | None = None

    def update(self, counts: PartitionCounts) -> None:
        if counts != self._shown:
            fields = " ".join(f"{name}={value}" for name, value in counts.fields().items())
            print(self._backfill_id, f"{fields} total={counts.total}", flush=True)
            self._shown = counts


# ---------------------------------------------------------------------------------------------------------
# JSON


class _NoProgress:
    def update(self, counts: PartitionCounts) -> None:
        pass


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


class JsonOutput:
    def message(self, text: str) -> None:
        _print_json(text)

    def states(self, groups: StateGroups) -> None:
        _print_json(groups)

    def events(self, events: list[EventInfo]) -> None:
        _print_json([event.to_json() for event in events])

    def events_header(self) -> None:
        pass

    def event(self, event: EventInfo) -> None:
        """Followed events are JSON Lines: one compact object per line, as each arrives."""
        print(compact_json(event.to_json()), flush=True)

    def backfill(self, backfill: dict[str, Any], no_trunc: bool) -> None:
        _print_json(backfill)

    def backfill_payload(self, payload: dict[str, Any], no_trunc: bool) -> None:
        _print_json(payload)

    def backfills(self, payloads: list[dict[str, Any]], no_trunc: bool) -> None:
        _print_json(payloads)

    def backfill_progress(self, backfill_id: str, first: PartitionCounts) -> AbstractContextManager[ProgressDisplay]:
        """Nothing while watching: the final payload is the one JSON document printed."""
        return nullcontext(_NoProgress())

    def resources(self, resources: list[dict[str, Any]]) -> None:
        _print_json(resources)

    def workflow(self, workflow_with_state: dict[str, Any]) -> None:
        _print_json(workflow_with_state)

    def workflows(self, workflows: list[dict[str, Any]]) -> None:
        _print_json(workflows)
