"""The retry decision (docs/semantics.md#retries) and the behaviours Styx's TerminationHandlerTest checks."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from styx_actors import events
from styx_actors.model import RunState, State, StateData, Trigger, WorkflowInstance
from styx_actors.retry import RetryPolicy, condition_variables, exit_code_cost, failures_after
from styx_actors.settings import Settings

INSTANCE = WorkflowInstance.of("component", "workflow", "2024-01-01")
THREE_MINUTES = 180_000
TEN_MINUTES = 600_000
POLICY = RetryPolicy()


def run_state(state: State = State.TERMINATED, **data: object) -> RunState:
    defaults: dict[str, object] = {"tries": 1, "consecutive_failures": 1, "retry_cost": 1.0, "last_exit": 1}
    return RunState(workflow_instance=INSTANCE, state=state, timestamp=0, data=StateData(**{**defaults, **data}))


def decide(state: RunState, retry_condition: str | None = None) -> events.Event:
    return POLICY.decide(state, retry_condition, random.Random(7))


@pytest.mark.parametrize(("exit_code", "cost"), [(0, 0.0), (20, 0.1), (50, 1.0), (1, 1.0), (None, 1.0), (-1, 1.0)])
def test_exit_code_cost(exit_code: int | None, cost: float) -> None:
    assert exit_code_cost(exit_code) == cost


@pytest.mark.parametrize(
    ("previous", "exit_code", "after"),
    [(3, 0, 0), (3, 20, 0), (3, 50, 4), (3, 1, 4), (3, None, 4), (0, 1, 1)],
)
def test_failures_after(previous: int, exit_code: int | None, after: int) -> None:
    assert failures_after(previous, exit_code) == after


@pytest.mark.parametrize("failures", range(7))
def test_backoff_covers_exactly_the_full_jitter_range(failures: int) -> None:
    rng = random.Random(1234 + failures)
    multipliers = {POLICY.backoff_millis(failures, rng) / THREE_MINUTES for _ in range(3000)}
    draws = 2 ** min(failures, 4)  # randInt(0 .. draws - 1), with 0 counted as 1
    assert multipliers == {float(max(1, k)) for k in range(draws)}


def test_backoff_caps_at_45_minutes_and_treats_negative_failures_as_none() -> None:
    rng = random.Random(99)
    assert max(POLICY.backoff_millis(100, rng) for _ in range(2000)) == 15 * THREE_MINUTES
    assert POLICY.backoff_millis(-3, rng) == THREE_MINUTES


def test_backoff_is_deterministic_for_a_seeded_random() -> None:
    first = [POLICY.backoff_millis(4, random.Random(5)) for _ in range(3)]
    assert len(set(first)) == 1


def test_policy_from_settings() -> None:
    settings = Settings(
        retry_base_delay=timedelta(seconds=2),
        retry_max_exponent=2,
        missing_deps_delay=timedelta(milliseconds=1500),
        max_retry_cost=3.0,
    )
    policy = RetryPolicy.from_settings(settings)
    assert policy == RetryPolicy(
        base_delay=timedelta(seconds=2), max_exponent=2, missing_deps_delay=timedelta(milliseconds=1500), max_cost=3.0
    )
    assert policy.decide(run_state(last_exit=20), None, random.Random(1)) == events.RetryAfter(1500)
    assert policy.decide(run_state(retry_cost=3.0), None, random.Random(1)) == events.Stop()
    assert {policy.backoff_millis(9, random.Random(seed)) for seed in range(200)} == {2000, 4000, 6000}


def test_defaults_are_styx_constants() -> None:
    assert RetryPolicy.from_settings(Settings()) == RetryPolicy()
    assert RetryPolicy() == RetryPolicy(timedelta(minutes=3), 4, timedelta(minutes=10), 50.0)


# -----------------------------------------------------------------------------------------------------------
# TerminationHandler decisions (docs/semantics.md#retries)


def test_exit_zero_is_success() -> None:
    state = run_state(last_exit=0, consecutive_failures=0, retry_cost=0.0)
    assert POLICY.on_terminal_state(state, "false", random.Random(1)) == events.Success()


def test_exit_one_backs_off() -> None:
    assert decide(run_state(last_exit=1, consecutive_failures=1)) == events.RetryAfter(THREE_MINUTES)


def test_missing_exit_code_backs_off() -> None:
    assert decide(run_state(last_exit=None, consecutive_failures=1)) == events.RetryAfter(THREE_MINUTES)


def test_backoff_uses_the_state_consecutive_failures() -> None:
    state = run_state(consecutive_failures=6)
    assert decide(state) == events.RetryAfter(POLICY.backoff_millis(6, random.Random(7)))


@pytest.mark.parametrize(
    ("cost", "expected"), [(49.9, events.RetryAfter(THREE_MINUTES)), (50.0, events.Stop()), (51.0, events.Stop())]
)
def test_cost_budget(cost: float, expected: events.Event) -> None:
    assert decide(run_state(retry_cost=cost)) == expected


def test_missing_dependencies_retry_after_ten_minutes() -> None:
    assert decide(run_state(last_exit=20, consecutive_failures=0, retry_cost=0.1)) == events.RetryAfter(TEN_MINUTES)


def test_fail_fast_exit_stops() -> None:
    assert decide(run_state(last_exit=50)) == events.Stop()


def test_unknown_workflow_still_retries() -> None:
    assert decide(run_state(), retry_condition=None) == events.RetryAfter(THREE_MINUTES)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("true", events.RetryAfter(THREE_MINUTES)),
        ("#exitCode == 1 && #tries == 1", events.RetryAfter(THREE_MINUTES)),
        ("false", events.Stop()),
        ("#tries >", events.Stop()),  # parse error
        ("'a' < 1", events.Stop()),  # evaluation error
        ("21 * 2", events.Stop()),  # not a boolean
        ("'foo'", events.Stop()),
        ("#exitCode", events.Stop()),
    ],
)
def test_retry_condition(condition: str, expected: events.Event) -> None:
    assert decide(run_state(), condition) == expected


def test_retry_condition_with_null_variables_stops() -> None:
    state = run_state(last_exit=None)
    assert decide(state, "#exitCode == 1") == events.Stop()
    assert decide(state, "#exitCode == null") == events.RetryAfter(THREE_MINUTES)
    assert decide(state, "#triggerType == null") == events.RetryAfter(THREE_MINUTES)  # no trigger recorded


def test_retry_condition_sees_the_run_state() -> None:
    state = run_state(tries=3, consecutive_failures=2, last_exit=7, trigger=Trigger.backfill("backfill-1"))
    variables = {"exitCode": 7, "tries": 3, "consecutiveFailures": 2, "triggerType": "backfill"}
    assert condition_variables(state) == variables
    condition = "(#tries < 2 && #triggerType == 'backfill') || (#triggerType != 'backfill')"
    assert decide(state, condition) == events.Stop()
    natural = run_state(tries=3, trigger=Trigger.natural())
    assert decide(natural, condition) == events.RetryAfter(THREE_MINUTES)


def test_order_of_checks() -> None:
    # The cost budget and fail-fast exit stop even when the condition allows a retry ...
    assert decide(run_state(retry_cost=50.0), "true") == events.Stop()
    assert decide(run_state(last_exit=50), "true") == events.Stop()
    # ... and a false condition stops even a missing-dependencies retry.
    assert decide(run_state(last_exit=20), "false") == events.Stop()
    assert decide(run_state(last_exit=20), "true") == events.RetryAfter(TEN_MINUTES)


@pytest.mark.parametrize(
    ("last_exit", "expected"),
    [
        (20, events.RetryAfter(TEN_MINUTES)),
        (50, events.Stop()),
        (None, events.RetryAfter(THREE_MINUTES)),
        (0, events.RetryAfter(THREE_MINUTES)),  # an earlier success does not make a timeout a success
    ],
)
def test_failed_state_decides_with_the_lingering_exit_code(last_exit: int | None, expected: events.Event) -> None:
    # A timeout (FAILED) keeps the previous run's last_exit (docs/semantics.md#timeouts).
    assert POLICY.on_terminal_state(run_state(State.FAILED, last_exit=last_exit), None, random.Random(1)) == expected


@pytest.mark.parametrize("state", [State.NEW, State.QUEUED, State.RUNNING, State.DONE, State.ERROR])
def test_no_decision_outside_terminated_and_failed(state: State) -> None:
    assert POLICY.on_terminal_state(run_state(state), None, random.Random(1)) is None
