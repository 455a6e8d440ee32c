"""The RunState state machine against its transition table (docs/semantics.md#transitions),
written out here as data."""

from __future__ import annotations

import time

import pytest

from styx_actors.events import (
    EVENT_TYPES,
    Created,
    Dequeue,
    Event,
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
)
from styx_actors.model import (
    ExecutionDescription,
    Message,
    MessageLevel,
    RunState,
    State,
    StateData,
    Trigger,
    TriggerParameters,
    WorkflowInstance,
)
from styx_actors.state_machine import IllegalTransition, is_legal, new_instance_state, transition

INSTANCE = WorkflowInstance.of("c", "w", "2016-04-04")
T0 = 1_460_000_000_000
DESCRIPTION = ExecutionDescription(docker_image="busybox:1.36", docker_args=["echo", "hi"], commit_sha="abc123")

# One representative of every event type, by its persisted @type name.
SAMPLE_EVENTS: dict[str, Event] = {
    "triggerExecution": TriggerExecution(Trigger.backfill("backfill-1"), TriggerParameters(env={"A": "1"})),
    "info": Info(Message.info("waiting for resources")),
    "dequeue": Dequeue(("r2", "r1")),
    "submit": Submit(DESCRIPTION, "styx-run-1"),
    "submitted": Submitted("styx-run-1", "default"),
    "started": Started(),
    "terminate": Terminate(1),
    "runError": RunError("image pull failed"),
    "success": Success(),
    "retryAfter": RetryAfter(180_000),
    "stop": Stop(),
    "timeout": Timeout(),
    "halt": Halt(),
    "timeTrigger": TimeTrigger(),
    "created": Created("styx-run-legacy", "busybox:old"),
    "retry": Retry(),
}

S = State
EVERY_STATE = frozenset(State)
# event name -> (states it is accepted in, state it leads to); docs/semantics.md#transitions.
TABLE: dict[str, tuple[frozenset[State], State]] = {
    "triggerExecution": (frozenset({S.NEW}), S.QUEUED),
    "info": (frozenset({S.QUEUED}), S.QUEUED),
    "dequeue": (frozenset({S.QUEUED}), S.PREPARE),
    "submit": (frozenset({S.PREPARE, S.QUEUED}), S.SUBMITTING),
    "submitted": (frozenset({S.SUBMITTING}), S.SUBMITTED),
    "started": (frozenset({S.SUBMITTED, S.PREPARE}), S.RUNNING),
    "terminate": (frozenset({S.RUNNING}), S.TERMINATED),
    "runError": (frozenset({S.QUEUED, S.PREPARE, S.SUBMITTING, S.SUBMITTED, S.RUNNING}), S.FAILED),
    "success": (frozenset({S.TERMINATED}), S.DONE),
    "retryAfter": (frozenset({S.TERMINATED, S.FAILED, S.QUEUED}), S.QUEUED),
    "stop": (frozenset({S.TERMINATED, S.FAILED}), S.ERROR),
    "timeout": (EVERY_STATE, S.FAILED),
    "halt": (EVERY_STATE, S.ERROR),
    "timeTrigger": (frozenset({S.NEW}), S.SUBMITTED),
    "created": (frozenset({S.QUEUED, S.PREPARE}), S.SUBMITTED),
    "retry": (frozenset({S.TERMINATED, S.FAILED, S.QUEUED}), S.PREPARE),
}


def at(state: State, data: StateData | None = None, counter: int = 4) -> RunState:
    return RunState(workflow_instance=INSTANCE, state=state, timestamp=T0, data=data or StateData(), counter=counter)


def test_the_table_covers_every_event_type() -> None:
    assert set(SAMPLE_EVENTS) == set(TABLE) == set(EVENT_TYPES)
    assert all(SAMPLE_EVENTS[name].name == name for name in SAMPLE_EVENTS)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("event_name", list(TABLE))
def test_every_state_and_event_pair(state: State, event_name: str) -> None:
    allowed, target = TABLE[event_name]
    event = SAMPLE_EVENTS[event_name]
    before = at(state)
    if state in allowed:
        assert is_legal(state, event)
        after = transition(before, event, T0 + 1234)
        assert after.state is target
        assert after.counter == before.counter + 1
        assert after.timestamp == T0 + 1234
        assert after.workflow_instance == INSTANCE
    else:
        assert not is_legal(state, event)
        with pytest.raises(IllegalTransition) as raised:
            transition(before, event, T0 + 1234)
        assert str(raised.value) == f"c#w#2016-04-04 received {event_name} while in {state.value}"
        assert raised.value.state is state and raised.value.event_name == event_name


def test_illegal_transition_is_a_value_error_with_styx_text() -> None:
    with pytest.raises(ValueError, match=r"^c#w#2016-04-04 received terminate while in QUEUED$"):
        transition(at(State.QUEUED), Terminate(0), T0)


def test_a_transition_leaves_the_original_state_untouched() -> None:
    before = at(State.RUNNING, StateData(tries=1, execution_id="styx-run-1"))
    transition(before, Terminate(1), T0 + 1)
    assert before == at(State.RUNNING, StateData(tries=1, execution_id="styx-run-1"))


# ---------------------------------------------------------------------------------------------------------
# StateData changes, event by event


def test_trigger_execution_records_trigger_id_and_parameters() -> None:
    params = TriggerParameters(env={"FOO": "bar"})
    after = transition(at(State.NEW), TriggerExecution(Trigger.adhoc("ad-hoc-cli-1-2"), params), T0)
    assert after.data == StateData(
        trigger=Trigger.adhoc("ad-hoc-cli-1-2"), trigger_id="ad-hoc-cli-1-2", trigger_parameters=params
    )


def test_natural_trigger_id_is_the_constant() -> None:
    after = transition(at(State.NEW), TriggerExecution(Trigger.natural()), T0)
    assert after.data.trigger_id == "natural-trigger"
    assert after.data.trigger_parameters == TriggerParameters()


def test_info_replaces_the_messages_and_nothing_else() -> None:
    data = StateData(tries=2, messages=[Message.error("Exit code: 1")], retry_delay_millis=5)
    after = transition(at(State.QUEUED, data), Info(Message.warning("Referenced resources not found: [r]")), T0 + 9)
    assert after.data == data.model_copy(update={"messages": [Message.warning("Referenced resources not found: [r]")]})
    assert (after.state, after.timestamp, after.counter) == (State.QUEUED, T0 + 9, 5)


def test_dequeue_clears_the_delay_and_stores_sorted_resources() -> None:
    after = transition(at(State.QUEUED, StateData(retry_delay_millis=180_000, tries=1)), Dequeue(("zeta", "alpha")), T0)
    assert after.data == StateData(tries=1, resource_ids=["alpha", "zeta"])


def test_dequeue_without_resources_stores_an_empty_list_not_null() -> None:
    assert transition(at(State.QUEUED), Dequeue(), T0).data.resource_ids == []


@pytest.mark.parametrize("source", [State.PREPARE, State.QUEUED])
def test_submit_records_description_and_execution_id(source: State) -> None:
    after = transition(at(source, StateData(tries=1)), Submit(DESCRIPTION, "styx-run-2"), T0)
    assert after.data == StateData(tries=1, execution_description=DESCRIPTION, execution_id="styx-run-2")


def test_submitted_counts_a_try_and_keeps_the_submitted_execution_id() -> None:
    data = StateData(tries=1, execution_id="styx-run-2", execution_description=DESCRIPTION)
    after = transition(at(State.SUBMITTING, data), Submitted("other-id", "runner-a"), T0)
    assert after.data == data.model_copy(update={"tries": 2, "runner_id": "runner-a"})


def test_submitted_takes_the_runners_execution_id_when_none_was_set() -> None:
    after = transition(at(State.SUBMITTING), Submitted("styx-run-9", None), T0)
    assert (after.data.execution_id, after.data.runner_id, after.data.tries) == ("styx-run-9", None, 1)


def test_started_changes_no_data() -> None:
    data = StateData(tries=1, execution_id="styx-run-1")
    assert transition(at(State.SUBMITTED, data), Started(), T0).data == data


@pytest.mark.parametrize(
    ("exit_code", "cost", "failures", "level", "line"),
    [
        (0, 0.0, 0, MessageLevel.INFO, "Exit code: 0"),
        (20, 0.1, 0, MessageLevel.WARNING, "Exit code: 20"),
        (1, 1.0, 4, MessageLevel.ERROR, "Exit code: 1"),
        (50, 1.0, 4, MessageLevel.ERROR, "Exit code: 50"),
        (-9, 1.0, 4, MessageLevel.ERROR, "Exit code: -9"),
        (None, 1.0, 4, MessageLevel.ERROR, "Exit code: -"),
    ],
)
def test_terminate_applies_the_exit_code_rules(
    exit_code: int | None, cost: float, failures: int, level: MessageLevel, line: str
) -> None:
    data = StateData(tries=4, consecutive_failures=3, retry_cost=2.5, last_exit=7, execution_id="e")
    after = transition(at(State.RUNNING, data), Terminate(exit_code), T0)
    assert after.data.retry_cost == pytest.approx(2.5 + cost)
    assert after.data.consecutive_failures == failures
    assert after.data.last_exit == exit_code
    assert after.data.messages == [Message(level=level, line=line)]
    assert (after.data.tries, after.data.execution_id) == (4, "e")


@pytest.mark.parametrize("source", [State.QUEUED, State.PREPARE, State.SUBMITTING, State.SUBMITTED, State.RUNNING])
def test_run_error_costs_one_and_clears_the_exit_code(source: State) -> None:
    data = StateData(consecutive_failures=1, retry_cost=0.1, last_exit=20, execution_id="e")
    after = transition(at(source, data), RunError("Failed to pull image"), T0)
    assert after.state is State.FAILED
    assert after.data.retry_cost == pytest.approx(1.1)
    assert after.data.model_copy(update={"retry_cost": 0.1}) == data.model_copy(
        update={"consecutive_failures": 2, "last_exit": None, "messages": [Message.error("Failed to pull image")]}
    )


@pytest.mark.parametrize("source", [State.TERMINATED, State.FAILED, State.QUEUED])
def test_retry_after_clears_the_execution_and_keeps_the_history(source: State) -> None:
    kept = dict(
        tries=3,
        consecutive_failures=2,
        retry_cost=2.0,
        last_exit=1,
        trigger=Trigger.natural(),
        trigger_id="natural-trigger",
        runner_id="default",
        trigger_parameters=TriggerParameters(),
        messages=[Message.error("Exit code: 1")],
    )
    data = StateData(**kept, execution_id="e", execution_description=DESCRIPTION, resource_ids=["r"])
    after = transition(at(source, data), RetryAfter(360_000), T0)
    assert after.data == StateData(**kept, retry_delay_millis=360_000)


@pytest.mark.parametrize(
    ("event", "source", "target"),
    [
        (Success(), State.TERMINATED, State.DONE),
        (Stop(), State.FAILED, State.ERROR),
        (Timeout(), State.RUNNING, State.FAILED),
        (Halt(), State.QUEUED, State.ERROR),
        (Retry(), State.FAILED, State.PREPARE),
    ],
    ids=lambda v: v.name if isinstance(v, Event) else v.value,
)
def test_events_without_data_keep_the_data(event: Event, source: State, target: State) -> None:
    data = StateData(tries=2, consecutive_failures=1, retry_cost=1.0, last_exit=1, execution_id="e")
    after = transition(at(source, data), event, T0)
    assert (after.state, after.data) == (target, data)


def test_time_trigger_marks_an_unknown_trigger() -> None:
    after = transition(at(State.NEW), TimeTrigger(), T0)
    assert after.data == StateData(trigger=Trigger.unknown("UNKNOWN"), trigger_id="UNKNOWN")


@pytest.mark.parametrize("source", [State.QUEUED, State.PREPARE])
def test_created_records_execution_and_counts_a_try(source: State) -> None:
    after = transition(at(source, StateData(tries=1)), Created("styx-run-legacy", "busybox:old"), T0)
    assert after.data == StateData(
        tries=2, execution_id="styx-run-legacy", execution_description=ExecutionDescription(docker_image="busybox:old")
    )


# ---------------------------------------------------------------------------------------------------------
# Counters and whole sequences


def run(state: RunState, *events: Event) -> list[RunState]:
    """Apply the events one second apart and return every intermediate state."""
    states = []
    for step, event in enumerate(events, start=1):
        state = transition(state, event, state.timestamp + 1000 * step)
        states.append(state)
    return states


def test_first_triggered_state_has_counter_zero() -> None:
    fresh = new_instance_state(INSTANCE, -1, T0)
    assert (fresh.state, fresh.counter, fresh.timestamp, fresh.data) == (State.NEW, -1, T0, StateData())
    assert transition(fresh, TriggerExecution(Trigger.natural()), T0).counter == 0


def test_a_retriggered_instance_continues_numbering_after_its_events() -> None:
    fresh = new_instance_state(INSTANCE, 7, T0)
    assert transition(fresh, TriggerExecution(Trigger.natural()), T0).counter == 8


def test_happy_path() -> None:
    states = run(
        new_instance_state(INSTANCE, -1, T0),
        TriggerExecution(Trigger.natural()),
        Dequeue(("r1",)),
        Submit(DESCRIPTION, "styx-run-1"),
        Submitted("styx-run-1", "default"),
        Started(),
        Terminate(0),
        Success(),
    )
    assert [s.state for s in states] == [
        State.QUEUED,
        State.PREPARE,
        State.SUBMITTING,
        State.SUBMITTED,
        State.RUNNING,
        State.TERMINATED,
        State.DONE,
    ]
    assert [s.counter for s in states] == list(range(7))
    done = states[-1]
    assert done.data == StateData(
        tries=1,
        last_exit=0,
        trigger=Trigger.natural(),
        trigger_id="natural-trigger",
        execution_id="styx-run-1",
        runner_id="default",
        execution_description=DESCRIPTION,
        resource_ids=["r1"],
        trigger_parameters=TriggerParameters(),
        messages=[Message.info("Exit code: 0")],
    )
    assert done.state.is_terminal


def test_retry_loop_then_success() -> None:
    attempt = (Dequeue(()), Submit(DESCRIPTION, "e"), Submitted("e", "default"), Started())
    states = run(
        new_instance_state(INSTANCE, -1, T0),
        TriggerExecution(Trigger.natural()),
        *attempt, Terminate(1), RetryAfter(180_000),
        *attempt, RunError("boom"), RetryAfter(360_000),
        *attempt, Terminate(20), RetryAfter(600_000),
        *attempt, Terminate(0), Success(),
    )  # fmt: skip
    requeued = [s for s in states if s.state is State.QUEUED][1:]
    assert [s.data.retry_delay_millis for s in requeued] == [180_000, 360_000, 600_000]
    assert [(s.data.consecutive_failures, s.data.last_exit) for s in requeued] == [(1, 1), (2, None), (0, 20)]
    done = states[-1]
    assert done.state is State.DONE
    assert done.data.tries == 4
    assert done.data.retry_cost == pytest.approx(2.1)
    assert done.data.retry_delay_millis is None
    assert done.counter == len(states) - 1


def test_give_up_after_fail_fast_exit() -> None:
    states = run(
        new_instance_state(INSTANCE, -1, T0),
        TriggerExecution(Trigger.natural()),
        Dequeue(()),
        Submit(DESCRIPTION, "e"),
        Submitted("e", "default"),
        Started(),
        Terminate(50),
        Stop(),
    )
    assert [s.state for s in states[-2:]] == [State.TERMINATED, State.ERROR]
    assert states[-1].data.messages == [Message.error("Exit code: 50")]


def test_timeout_then_retry_costs_nothing() -> None:
    submitted = at(State.SUBMITTED, StateData(tries=1, retry_cost=1.0, consecutive_failures=1))
    states = run(submitted, Timeout(), RetryAfter(0))
    assert states[0].state is State.FAILED
    assert states[1].state is State.QUEUED
    assert (states[1].data.retry_cost, states[1].data.consecutive_failures) == (1.0, 1)


def test_a_transition_takes_microseconds() -> None:
    """Measured figure, printed rather than asserted (timings vary with load): 6-10 µs per terminate on 2 cores."""
    running = at(State.RUNNING, StateData(tries=1, execution_id="e", execution_description=DESCRIPTION))
    event = Terminate(1)
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        transition(running, event, T0)
    per_transition = (time.perf_counter() - started) / rounds
    print(f"\nstate machine: {per_transition * 1e6:.1f} µs per terminate transition")
    assert transition(running, event, T0).state is State.TERMINATED
