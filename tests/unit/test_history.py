"""Views replayed from event logs: execution history and backfill statuses
(docs/semantics.md#execution-history, docs/semantics.md#backfill-statuses)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from styx_actors.events import (
    Created,
    Dequeue,
    Event,
    Halt,
    Info,
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
    event_to_json_text,
)
from styx_actors.history import backfill_statuses, execution_history, replay_backfill_partition
from styx_actors.model import (
    Backfill,
    ExecutionDescription,
    Message,
    RunState,
    RunStateData,
    State,
    StateData,
    Trigger,
    TriggerParameters,
    WorkflowId,
    WorkflowInstance,
)
from styx_actors.schedule import Schedule
from styx_actors.store.base import StoredEvent
from styx_actors.timeutil import UTC, to_millis

WORKFLOW = WorkflowId(component_id="styx-canary", id="StyxCanary")
INSTANCE = WorkflowInstance(workflow_id=WORKFLOW, parameter="2016-07-13T08")
T0 = to_millis(datetime(2016, 7, 13, 9, 0, 23, 941_000, tzinfo=UTC))
IMAGE = "styx-canary-dummy:dummy"
DESCRIPTION = ExecutionDescription(docker_image=IMAGE, commit_sha="19c1a6")
BACKFILL_ID = "backfill-1489054446085-53384"


def log(*events: Event, first_counter: int = 0, instance: WorkflowInstance = INSTANCE) -> list[StoredEvent]:
    """An event log with one event per second from T0."""
    return [
        StoredEvent(counter=first_counter + i, timestamp=T0 + 1000 * i, event_json=event_to_json_text(event, instance))
        for i, event in enumerate(events)
    ]


def iso(seconds_after_t0: int) -> str:
    return (datetime(2016, 7, 13, 9, 0, 23, 941_000) + timedelta(seconds=seconds_after_t0)).isoformat(
        timespec="milliseconds"
    ) + "Z"


def status(seconds: int, name: str, message: str | None = None) -> dict[str, Any]:
    return {"timestamp": iso(seconds), "status": name, "message": message}


def execution(execution_id: str | None, statuses: list[dict[str, Any]], runner_id: str | None = "production",
              docker_image: str | None = IMAGE, commit_sha: str | None = "19c1a6") -> dict[str, Any]:  # fmt: skip
    return {
        "execution_id": execution_id,
        "docker_image": docker_image,
        "commit_sha": commit_sha,
        "runner_id": runner_id,
        "statuses": statuses,
    }


def attempt(execution_id: str) -> tuple[Event, ...]:
    return Dequeue(()), Submit(DESCRIPTION, execution_id), Submitted(execution_id, "production"), Started()


NO_PARAMETERS = {"env": {}}


# ---------------------------------------------------------------------------------------------------------
# Execution history


def test_happy_path_matches_the_contract_example() -> None:
    history = execution_history(
        INSTANCE, log(TriggerExecution(Trigger.natural()), *attempt("styx-run-qcp3r"), Terminate(0), Success())
    )
    assert history == {
        "workflow_instance": {
            "workflow": {"component_id": "styx-canary", "id": "StyxCanary"},
            "parameter": "2016-07-13T08",
        },
        "triggers": [
            {
                "trigger_id": "natural-trigger",
                "timestamp": "2016-07-13T09:00:23.941Z",
                "parameters": NO_PARAMETERS,
                "complete": True,
                "executions": [
                    execution(
                        "styx-run-qcp3r",
                        [status(3, "SUBMITTED"), status(4, "STARTED"), status(5, "SUCCESS", "Exit code: 0")],
                    )
                ],
            }
        ],
    }


def test_retries_give_one_execution_each() -> None:
    params = TriggerParameters(env={"FOO": "bar"})
    history = execution_history(
        INSTANCE,
        log(
            TriggerExecution(Trigger.adhoc("ad-hoc-cli-1-2"), params),
            *attempt("run-1"), Terminate(20), RetryAfter(600_000),  # 1..6
            *attempt("run-2"), Terminate(1), RetryAfter(180_000),  # 7..12
            *attempt("run-3"), Terminate(0), Success(),  # 13..18
        ),
    )  # fmt: skip
    [trigger] = history["triggers"]
    assert trigger["trigger_id"] == "ad-hoc-cli-1-2"
    assert trigger["parameters"] == {"env": {"FOO": "bar"}}
    assert trigger["complete"] is True
    assert trigger["executions"] == [
        execution("run-1", [status(3, "SUBMITTED"), status(4, "STARTED"), status(5, "MISSING_DEPS", "Exit code: 20")]),
        execution("run-2", [status(9, "SUBMITTED"), status(10, "STARTED"), status(11, "FAILED", "Exit code: 1")]),
        execution("run-3", [status(15, "SUBMITTED"), status(16, "STARTED"), status(17, "SUCCESS", "Exit code: 0")]),
    ]


def test_unknown_exit_code_and_run_error_then_give_up() -> None:
    history = execution_history(
        INSTANCE,
        log(
            TriggerExecution(Trigger.natural()),
            *attempt("run-1"), Terminate(None), RetryAfter(180_000),  # 1..6
            Dequeue(()), Submit(DESCRIPTION, "run-2"), RunError("Failed to start container"), Stop(),  # 7..10
        ),
    )  # fmt: skip
    [trigger] = history["triggers"]
    assert trigger["complete"] is True
    assert trigger["executions"] == [
        execution("run-1", [status(3, "SUBMITTED"), status(4, "STARTED"), status(5, "FAILED", "Exit code unknown")]),
        execution("run-2", [status(9, "FAILED", "Failed to start container")], runner_id=None),
    ]


def test_timeout_closes_the_execution() -> None:
    history = execution_history(
        INSTANCE,
        log(TriggerExecution(Trigger.natural()), *attempt("run-1"), Timeout(), RetryAfter(0), *attempt("run-2")),
    )
    [trigger] = history["triggers"]
    assert trigger["complete"] is False  # still running: the open execution is listed too
    assert trigger["executions"] == [
        execution("run-1", [status(3, "SUBMITTED"), status(4, "STARTED"), status(5, "TIMEOUT")]),
        execution("run-2", [status(9, "SUBMITTED"), status(10, "STARTED")]),
    ]


def test_halt_completes_the_trigger() -> None:
    history = execution_history(INSTANCE, log(TriggerExecution(Trigger.natural()), Info(Message.info("q")), Halt()))
    [trigger] = history["triggers"]
    assert trigger["complete"] is True
    # Halted before anything ran: the HALTED status stands in an execution without an id.
    assert trigger["executions"] == [
        execution(None, [status(2, "HALTED")], runner_id=None, docker_image=None, commit_sha=None)
    ]


def test_a_retriggered_instance_has_two_triggers() -> None:
    history = execution_history(
        INSTANCE,
        log(
            TriggerExecution(Trigger.natural()), *attempt("run-1"), Terminate(50), Stop(),  # 0..6
            TriggerExecution(Trigger.backfill(BACKFILL_ID)), *attempt("run-2"), Terminate(0), Success(),  # 7..13
        ),
    )  # fmt: skip
    assert [(t["trigger_id"], t["timestamp"], t["complete"]) for t in history["triggers"]] == [
        ("natural-trigger", iso(0), True),
        (BACKFILL_ID, iso(7), True),
    ]
    assert [[e["execution_id"] for e in t["executions"]] for t in history["triggers"]] == [["run-1"], ["run-2"]]


def test_an_unfinished_trigger_is_closed_at_the_end() -> None:
    history = execution_history(INSTANCE, log(TriggerExecution(Trigger.natural()), Dequeue(())))
    assert history["triggers"] == [
        {
            "trigger_id": "natural-trigger",
            "timestamp": iso(0),
            "parameters": NO_PARAMETERS,
            "complete": False,
            "executions": [],
        }
    ]


def test_legacy_time_trigger_and_created() -> None:
    history = execution_history(
        INSTANCE, log(TimeTrigger(), Created("styx-run-qcp3r", "UNKNOWN"), Started(), Terminate(0), Success())
    )
    assert history["triggers"] == [
        {
            "trigger_id": "UNKNOWN",
            "timestamp": iso(0),
            "parameters": None,
            "complete": True,
            "executions": [
                execution(
                    "styx-run-qcp3r",
                    [status(1, "SUBMITTED"), status(2, "STARTED"), status(3, "SUCCESS", "Exit code: 0")],
                    runner_id=None,
                    docker_image="UNKNOWN",
                    commit_sha=None,
                )
            ],
        }
    ]


def test_legacy_log_without_a_trigger_event_shows_an_unknown_trigger() -> None:
    history = execution_history(INSTANCE, log(Info(Message.info("old")), Created("e", "img"), Started()))
    [trigger] = history["triggers"]
    assert (trigger["trigger_id"], trigger["timestamp"], trigger["complete"]) == ("UNKNOWN", iso(1), False)
    assert trigger["executions"][0]["statuses"] == [status(1, "SUBMITTED"), status(2, "STARTED")]


def test_legacy_trigger_id_string() -> None:
    legacy = json.dumps({"@type": "triggerExecution", "workflow_instance": INSTANCE.key(), "trigger_id": "trig1"})
    stored = [StoredEvent(0, T0, legacy)]
    assert execution_history(INSTANCE, stored)["triggers"][0]["trigger_id"] == "trig1"


def test_timeout_before_any_trigger_only_dates_it() -> None:
    history = execution_history(INSTANCE, log(Timeout(), Created("e", "img")))
    [trigger] = history["triggers"]
    assert trigger["timestamp"] == iso(0)
    assert trigger["executions"][0]["statuses"] == [status(1, "SUBMITTED")]


def test_events_are_replayed_in_counter_order() -> None:
    events = log(TriggerExecution(Trigger.natural()), *attempt("run-1"), Terminate(0), Success())
    assert execution_history(INSTANCE, list(reversed(events))) == execution_history(INSTANCE, events)


def test_no_events_no_triggers() -> None:
    assert execution_history(INSTANCE, [])["triggers"] == []


# ---------------------------------------------------------------------------------------------------------
# One backfill partition


def test_replay_covers_only_the_backfills_own_trigger() -> None:
    events = log(
        TriggerExecution(Trigger.natural()), *attempt("run-0"), Terminate(1), Stop(),  # 0..6: earlier natural run
        TriggerExecution(Trigger.backfill(BACKFILL_ID)), *attempt("run-1"), Terminate(0), Success(),  # 7..13
        TriggerExecution(Trigger.adhoc("ad-hoc-cli-1-2")), Dequeue(()), Timeout(),  # 14..16: a later ad-hoc run
        first_counter=10,
    )  # fmt: skip
    replayed = replay_backfill_partition(INSTANCE, events, BACKFILL_ID)
    assert replayed == RunStateData(
        workflow_instance=INSTANCE,
        state="DONE",
        state_data=StateData(
            tries=1,
            last_exit=0,
            trigger=Trigger.backfill(BACKFILL_ID),
            trigger_id=BACKFILL_ID,
            execution_id="run-1",
            runner_id="production",
            execution_description=DESCRIPTION,
            resource_ids=[],
            trigger_parameters=TriggerParameters(),
            messages=[Message.info("Exit code: 0")],
        ),
        initial_timestamp=T0 + 7000,
        latest_timestamp=T0 + 13000,
    )


def test_replay_skips_illegal_events() -> None:
    events = log(TriggerExecution(Trigger.backfill(BACKFILL_ID)), Terminate(0), Dequeue(("r",)), Success())
    replayed = replay_backfill_partition(INSTANCE, events, BACKFILL_ID)
    assert replayed is not None
    assert (replayed.state, replayed.state_data.resource_ids) == ("PREPARE", ["r"])
    assert (replayed.initial_timestamp, replayed.latest_timestamp) == (T0, T0 + 2000)


def test_replay_without_the_backfills_trigger_is_none() -> None:
    events = log(TriggerExecution(Trigger.backfill("backfill-other")), Halt())
    assert replay_backfill_partition(INSTANCE, events, BACKFILL_ID) is None


# ---------------------------------------------------------------------------------------------------------
# Whole backfill status lists

HOURLY = Schedule.parse("hours")


def hour(h: int) -> datetime:
    return datetime(2017, 1, 1, tzinfo=UTC) + timedelta(hours=h)


def hourly_backfill(next_trigger: datetime, reverse: bool = False, end: datetime = hour(24)) -> Backfill:
    return Backfill(
        id=BACKFILL_ID,
        start=hour(0),
        end=end,
        workflow_id=WORKFLOW,
        concurrency=2,
        next_trigger=next_trigger,
        schedule="hours",
        reverse=reverse,
    )


def instance(parameter: str) -> WorkflowInstance:
    return WorkflowInstance(workflow_id=WORKFLOW, parameter=parameter)


def active_state(parameter: str, state: State, trigger: Trigger) -> RunState:
    data = StateData(trigger=trigger, trigger_id=trigger.trigger_id, tries=1)
    return RunState(workflow_instance=instance(parameter), state=state, timestamp=T0, data=data, counter=5)


def events_reader(logs: dict[str, list[StoredEvent]]):
    requested: list[str] = []

    async def events_of(parameter: str) -> list[StoredEvent]:
        requested.append(parameter)
        return logs.get(parameter, [])

    return events_of, requested


async def test_reference_example_forward() -> None:
    running = active_state("2017-01-01T01", State.RUNNING, Trigger.backfill(BACKFILL_ID))
    events_of, requested = events_reader({})
    statuses = await backfill_statuses(hourly_backfill(hour(2)), HOURLY, {"2017-01-01T01": running}, events_of)
    assert len(statuses) == 24
    assert [s.state for s in statuses] == ["UNKNOWN", "RUNNING"] + ["WAITING"] * 22
    assert [s.workflow_instance.parameter for s in statuses] == [f"2017-01-01T{h:02d}" for h in range(24)]
    unknown = RunStateData(workflow_instance=instance("2017-01-01T00"), state="UNKNOWN", state_data=StateData())
    assert statuses[0] == unknown
    assert statuses[1] == RunStateData.of(running)  # latest_timestamp only
    assert (statuses[1].initial_timestamp, statuses[1].latest_timestamp) == (None, T0)
    assert statuses[2].state_data == StateData() and statuses[2].latest_timestamp is None
    assert requested == ["2017-01-01T00"]  # waiting partitions and active ones need no event log


async def test_forward_replays_finished_partitions_and_ignores_other_triggers() -> None:
    done_log = log(TriggerExecution(Trigger.backfill(BACKFILL_ID)), *attempt("r"), Terminate(0), Success(),
                   instance=instance("2017-01-01T00"))  # fmt: skip
    # T01 is active again, but for a natural trigger: the backfill's own run is read from the log.
    natural = active_state("2017-01-01T01", State.QUEUED, Trigger.natural())
    halted_log = log(TriggerExecution(Trigger.backfill(BACKFILL_ID)), Halt(), TriggerExecution(Trigger.natural()),
                     instance=instance("2017-01-01T01"))  # fmt: skip
    events_of, _ = events_reader({"2017-01-01T00": done_log, "2017-01-01T01": halted_log})
    statuses = await backfill_statuses(
        hourly_backfill(hour(3), end=hour(4)), HOURLY, {"2017-01-01T01": natural}, events_of
    )
    assert [(s.workflow_instance.parameter, s.state) for s in statuses] == [
        ("2017-01-01T00", "DONE"),
        ("2017-01-01T01", "ERROR"),
        ("2017-01-01T02", "UNKNOWN"),
        ("2017-01-01T03", "WAITING"),
    ]
    assert (statuses[1].initial_timestamp, statuses[1].latest_timestamp) == (T0, T0 + 1000)


async def test_reverse_lists_waiting_then_processed_in_ascending_order() -> None:
    # Reverse over T00..T05: T05 and T04 have been triggered, the cursor points at T03.
    done_log = log(TriggerExecution(Trigger.backfill(BACKFILL_ID)), *attempt("r"), Terminate(0), Success(),
                   instance=instance("2017-01-01T05"))  # fmt: skip
    queued = active_state("2017-01-01T04", State.QUEUED, Trigger.backfill(BACKFILL_ID))
    events_of, requested = events_reader({"2017-01-01T05": done_log})
    statuses = await backfill_statuses(
        hourly_backfill(hour(3), reverse=True, end=hour(6)), HOURLY, {"2017-01-01T04": queued}, events_of
    )
    assert [(s.workflow_instance.parameter, s.state) for s in statuses] == [
        ("2017-01-01T00", "WAITING"),
        ("2017-01-01T01", "WAITING"),
        ("2017-01-01T02", "WAITING"),
        ("2017-01-01T03", "WAITING"),
        ("2017-01-01T04", "QUEUED"),
        ("2017-01-01T05", "DONE"),
    ]
    assert requested == ["2017-01-01T05"]


@pytest.mark.parametrize(
    ("reverse", "next_trigger"),
    [(False, hour(6)), (True, hour(-1))],  # the cursor past the last partition in either direction
    ids=["forward", "reverse"],
)
async def test_fully_triggered_backfill_has_no_waiting_partitions(reverse: bool, next_trigger: datetime) -> None:
    events_of, requested = events_reader({})
    statuses = await backfill_statuses(
        hourly_backfill(next_trigger, reverse=reverse, end=hour(6)), HOURLY, {}, events_of
    )
    assert [s.state for s in statuses] == ["UNKNOWN"] * 6
    assert sorted(requested) == [f"2017-01-01T{h:02d}" for h in range(6)]
    assert [s.workflow_instance.parameter for s in statuses] == sorted(requested)
