"""The run summaries behind the dashboard's grid, chart and workflow list (api/dashboard/runs.py): an event log
replayed through the real state machine gives the latest trigger's state, tries and execution timings."""

from __future__ import annotations

from api.dashboard.runs import summarize_run
from styx_actors.events import (
    Dequeue,
    Event,
    Halt,
    RetryAfter,
    RunError,
    Started,
    Submit,
    Submitted,
    Success,
    Terminate,
    TriggerExecution,
    event_to_json_text,
)
from styx_actors.model import ExecutionDescription, Trigger, WorkflowInstance
from styx_actors.store.base import StoredEvent

INSTANCE = WorkflowInstance.of("demo", "hello", "2024-01-01")


def log(*timed_events: tuple[int, Event]) -> list[StoredEvent]:
    return [
        StoredEvent(counter=counter, timestamp=millis, event_json=event_to_json_text(event, INSTANCE))
        for counter, (millis, event) in enumerate(timed_events)
    ]


def execution(execution_id: str, at: int) -> list[tuple[int, Event]]:
    """Dequeued, submitted and started from `at` to `at + 3`."""
    return [
        (at, Dequeue()),
        (at + 1, Submit(execution_description=ExecutionDescription(docker_image="busybox"), execution_id=execution_id)),
        (at + 2, Submitted(execution_id=execution_id, runner_id="default")),
        (at + 3, Started()),
    ]


def test_a_retried_run_reports_its_tries_and_the_latest_execution_only() -> None:
    events = log(
        (1_000, TriggerExecution(trigger=Trigger.adhoc("t1"))),
        *execution("first", 1_010),
        (5_000, Terminate(exit_code=1)),
        (5_001, RetryAfter(delay_millis=60_000)),
        *execution("second", 70_000),
        (72_500, Terminate(exit_code=0)),
        (72_501, Success()),
    )
    summary = summarize_run(INSTANCE, events)
    assert summary is not None
    assert (summary.state, summary.tries, summary.message) == ("DONE", 2, "Exit code: 0")
    # The duration is the second execution's (started at 70,003, ended at 72,500), the wait all before it.
    assert (summary.triggered_at, summary.started_at, summary.ended_at) == (1_000, 70_003, 72_500)
    assert summary.updated_at == 72_501


def test_a_running_execution_has_no_end_and_a_re_trigger_starts_a_new_run() -> None:
    first_run = [(1_000, TriggerExecution(trigger=Trigger.adhoc("t1"))), *execution("a", 1_010)]
    first_run += [(2_000, Terminate(exit_code=0)), (2_001, Success())]
    running = summarize_run(
        INSTANCE, log(*first_run, (9_000, TriggerExecution(trigger=Trigger.adhoc("t2"))), *execution("b", 9_010))
    )
    assert running is not None
    assert (running.state, running.tries, running.triggered_at) == ("RUNNING", 1, 9_000)
    assert (running.started_at, running.ended_at) == (9_013, None)


def test_a_halt_ends_the_run_in_error_and_an_execution_that_never_started_has_no_duration() -> None:
    halted = summarize_run(
        INSTANCE, log((1_000, TriggerExecution(trigger=Trigger.adhoc("t1"))), *execution("a", 1_010), (4_000, Halt()))
    )
    assert halted is not None
    assert (halted.state, halted.started_at, halted.ended_at) == ("ERROR", 1_013, 4_000)

    never_started = summarize_run(
        INSTANCE,
        log(
            (1_000, TriggerExecution(trigger=Trigger.adhoc("t1"))),
            *execution("a", 1_010)[:2],
            (1_500, RunError(message="Failed to pull image")),
        ),
    )
    assert never_started is not None
    assert (never_started.state, never_started.started_at, never_started.message) == (
        "FAILED",
        None,
        "Failed to pull image",
    )


def test_an_instance_without_events_has_no_summary() -> None:
    assert summarize_run(INSTANCE, []) is None
