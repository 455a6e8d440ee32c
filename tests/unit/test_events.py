"""Persisted event JSON (docs/semantics.md#events): round trips, Styx's legacy forms, info strings and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from styx_actors.events import (
    EVENT_TYPES,
    Created,
    Dequeue,
    Event,
    EventParseError,
    Halt,
    Info,
    Retry,
    RetryAfter,
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
    event_to_json,
    event_to_json_text,
)
from styx_actors.model import (
    ExecutionDescription,
    Message,
    MessageLevel,
    Trigger,
    TriggerParameters,
    WorkflowInstance,
)

INSTANCE = WorkflowInstance.of("styx-canary", "StyxCanary", "2017-01-01T01")
KEY = "styx-canary#StyxCanary#2017-01-01T01"
DESCRIPTION = ExecutionDescription(
    docker_image="busybox:1.36",
    docker_args=["echo", "{}"],
    docker_termination_logging=True,
    service_account="sa@example.iam.gserviceaccount.com",
    commit_sha="f0433330",
    env={"FOO": "bar"},
)

# Every event type with all of its fields set, and with the optional ones left out.
EVENTS: list[Event] = [
    TriggerExecution(Trigger.natural()),
    TriggerExecution(Trigger.adhoc("ad-hoc-cli-1489054446085-53384"), TriggerParameters(env={"A": "1"})),
    TriggerExecution(Trigger.backfill("backfill-1489054446085-53384")),
    TriggerExecution(Trigger.unknown("trig1")),
    Info(Message.warning("Referenced resources not found: [r1]")),
    Dequeue(("a", "b")),
    Dequeue(),
    Submit(DESCRIPTION, "styx-run-1"),
    Submit(ExecutionDescription()),
    Submitted("styx-run-1", "default"),
    Submitted(),
    Started(),
    Terminate(0),
    Terminate(20),
    Terminate(),
    RunError("Failed to pull image"),
    Success(),
    RetryAfter(600_000),
    Stop(),
    Timeout(),
    Halt(),
    TimeTrigger(),
    Created("styx-run-legacy", "busybox:old"),
    Retry(),
]


def test_every_event_type_is_exercised() -> None:
    assert {event.name for event in EVENTS} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.name)
def test_round_trip_through_json(event: Event) -> None:
    as_dict = event_to_json(event, INSTANCE)
    assert as_dict["@type"] == event.name
    assert as_dict["workflow_instance"] == KEY
    assert event_from_json(as_dict) == (event, KEY)
    text = event_to_json_text(event, INSTANCE)
    assert json.loads(text) == as_dict
    assert event_from_json(text) == (event, KEY)


@pytest.mark.parametrize(
    ("event", "persisted"),
    [
        (TriggerExecution(Trigger.natural()), {"trigger": {"@type": "natural"}, "parameters": {"env": {}}}),
        (
            TriggerExecution(Trigger.backfill("backfill-1"), TriggerParameters(env={"X": "y"})),
            {"trigger": {"@type": "backfill", "trigger_id": "backfill-1"}, "parameters": {"env": {"X": "y"}}},
        ),
        (Info(Message.info("hi")), {"message": {"level": "INFO", "line": "hi"}}),
        (Dequeue(("r1",)), {"resource_ids": ["r1"]}),
        (Submitted(), {}),
        (Terminate(), {}),
        (Terminate(1), {"exit_code": 1}),
        (RetryAfter(1500), {"delay_millis": 1500}),
        (Created("e", "img"), {"execution_id": "e", "docker_image": "img"}),
        (Halt(), {}),
    ],
    ids=lambda v: v.name if isinstance(v, Event) else "",
)
def test_persisted_form_omits_absent_fields(event: Event, persisted: dict[str, Any]) -> None:
    assert event_to_json(event, INSTANCE) == {"@type": event.name, "workflow_instance": KEY, **persisted}


# ---------------------------------------------------------------------------------------------------------
# Legacy and lenient input


def parse(**fields: Any) -> Event:
    return event_from_json({"workflow_instance": KEY, **fields})[0]


def test_legacy_trigger_id_string_becomes_an_unknown_trigger() -> None:
    event = parse(**{"@type": "triggerExecution", "trigger_id": "natural-trigger-legacy"})
    assert event == TriggerExecution(Trigger.unknown("natural-trigger-legacy"), TriggerParameters())


def test_trigger_execution_without_any_trigger_is_unknown() -> None:
    assert parse(**{"@type": "triggerExecution"}) == TriggerExecution(Trigger.unknown("UNKNOWN"))


def test_missing_optional_fields_take_their_defaults() -> None:
    assert parse(**{"@type": "dequeue"}) == Dequeue(())
    assert parse(**{"@type": "submitted"}) == Submitted(None, None)
    assert parse(**{"@type": "terminate"}) == Terminate(None)
    assert parse(**{"@type": "created", "execution_id": "e"}) == Created("e", "UNKNOWN")
    submit = parse(**{"@type": "submit", "execution_description": {"docker_image": "busybox"}})
    assert submit == Submit(ExecutionDescription(docker_image="busybox"), None)


def test_unknown_fields_and_legacy_pod_name_are_ignored() -> None:
    assert parse(**{"@type": "started", "pod_name": "styx-run-1"}) == Started()
    event = parse(**{"@type": "submit", "execution_id": "e", "execution_description": {"secret": {"name": "s"}}})
    assert event == Submit(ExecutionDescription(), "e")


def test_resource_ids_are_sorted_and_a_single_string_is_one_id() -> None:
    assert parse(**{"@type": "dequeue", "resource_ids": ["zeta", "alpha"]}) == Dequeue(("alpha", "zeta"))
    assert parse(**{"@type": "dequeue", "resource_ids": "pool"}) == Dequeue(("pool",))


def test_unknown_message_level_reads_as_unknown() -> None:
    event = parse(**{"@type": "info", "message": {"level": "DEBUG", "line": "x"}})
    assert event == Info(Message(level=MessageLevel.UNKNOWN, line="x"))


def test_an_event_without_an_instance_still_parses() -> None:
    assert event_from_json({"@type": "halt"}) == (Halt(), None)


# ---------------------------------------------------------------------------------------------------------
# info() strings shown by `styx events`


@pytest.mark.parametrize(
    ("event", "info"),
    [
        (TriggerExecution(Trigger.natural()), 'Trigger id: natural-trigger, Parameters: {"env":{}}'),
        (
            TriggerExecution(Trigger.adhoc("ad-hoc-cli-1-2"), TriggerParameters(env={"B": "2", "A": "1"})),
            'Trigger id: ad-hoc-cli-1-2, Parameters: {"env":{"A":"1","B":"2"}}',
        ),
        (Info(Message.info("all good")), "all good"),
        (Created("e", "img"), "Execution id: e, Docker image: img"),
        (Terminate(3), "Exit code: 3"),
        (Terminate(), "Exit code: -"),
        (RunError("boom"), "Error message: boom"),
        (RetryAfter(179_999), "Delay (seconds): 179"),
        (Submitted("e", "default"), "Execution id: e, runner id: default"),
        (Dequeue(("r",)), ""),
        (Started(), ""),
        (Success(), ""),
        (Stop(), ""),
        (Timeout(), ""),
        (Halt(), ""),
        (TimeTrigger(), ""),
        (Retry(), ""),
    ],
    ids=lambda v: v.name if isinstance(v, Event) else "",
)
def test_info_strings(event: Event, info: str) -> None:
    assert event.info() == info


def test_submit_info_names_the_description_and_execution_id() -> None:
    info = Submit(DESCRIPTION, "styx-run-1").info()
    assert info.startswith("Execution description: ")
    assert "busybox:1.36" in info
    assert info.endswith(", id: styx-run-1")


# ---------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "invalid event JSON"),
        ("[1, 2]", "an event must be a JSON object"),
        ('"terminate"', "an event must be a JSON object"),
        ({"workflow_instance": KEY}, "unknown event type: None"),
        ({"@type": "explode"}, "unknown event type: 'explode'"),
        ({"@type": ["halt"]}, "unknown event type"),
        ({"@type": "terminate", "exit_code": "1"}, "invalid terminate event"),
        ({"@type": "terminate", "exit_code": True}, "invalid terminate event"),
        ({"@type": "retryAfter"}, "invalid retryAfter event"),
        ({"@type": "retryAfter", "delay_millis": 1.5}, "invalid retryAfter event"),
        ({"@type": "info"}, "invalid info event"),
        ({"@type": "info", "message": "hello"}, "invalid info event"),
        ({"@type": "runError"}, "invalid runError event"),
        ({"@type": "submit"}, "invalid submit event"),
        ({"@type": "created"}, "invalid created event"),
        ({"@type": "dequeue", "resource_ids": [1]}, "invalid dequeue event"),
        ({"@type": "triggerExecution", "trigger": {"@type": "sometimes"}}, "invalid triggerExecution event"),
        (
            {"@type": "triggerExecution", "trigger": {"@type": "natural"}, "parameters": {"env": 3}},
            "invalid triggerExecution event",
        ),
    ],
)
def test_bad_input_is_an_event_parse_error(data: dict[str, Any] | str, message: str) -> None:
    with pytest.raises(EventParseError, match=message.replace("[", r"\[")):
        event_from_json(data)
