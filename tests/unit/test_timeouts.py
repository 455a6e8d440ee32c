"""Stale-state TTL selection and the timed-out test (docs/semantics.md#timeouts)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from styx_actors.model import RunState, State, WorkflowInstance
from styx_actors.settings import Settings
from styx_actors.timeouts import TimeoutConfig

INSTANCE = WorkflowInstance.of("c", "w", "2017-01-01T00")
T0 = 1_483_228_800_000
HOUR = timedelta(hours=1)

# The scheduler test configuration of Styx, with the unknown keys its shipped configs carry.
SCHEDULER_TTLS = {
    "new": timedelta(minutes=1),
    "queued": timedelta(days=2),
    "prepare": timedelta(minutes=1),
    "submitting": timedelta(minutes=10),
    "submitted": timedelta(minutes=10),
    "running": timedelta(hours=24),
    "terminated": timedelta(minutes=1),
    "failed": timedelta(minutes=1),
    "default": timedelta(days=2),
    "creating": timedelta(seconds=1),
    "awaiting_retry": timedelta(seconds=1),
}


def state_at(state: State, timestamp: int = T0) -> RunState:
    return RunState(workflow_instance=INSTANCE, state=state, timestamp=timestamp, counter=3)


def test_each_state_has_its_own_ttl_and_unknown_keys_are_dropped() -> None:
    config = TimeoutConfig(SCHEDULER_TTLS, max_running_timeout=48 * HOUR)
    assert {state: config.ttl(state) for state in State if not state.is_terminal} == {
        State.NEW: timedelta(minutes=1),
        State.QUEUED: timedelta(days=2),
        State.PREPARE: timedelta(minutes=1),
        State.SUBMITTING: timedelta(minutes=10),
        State.SUBMITTED: timedelta(minutes=10),
        State.RUNNING: timedelta(hours=24),
        State.TERMINATED: timedelta(minutes=1),
        State.FAILED: timedelta(minutes=1),
    }
    assert "creating" not in config.ttls and "awaiting_retry" not in config.ttls


def test_states_without_a_ttl_use_the_default_and_keys_are_case_insensitive() -> None:
    config = TimeoutConfig({"RUNNING": 3 * HOUR, "Default": 5 * HOUR}, max_running_timeout=None)
    assert config.ttl(State.RUNNING) == 3 * HOUR
    assert config.ttl(State.QUEUED) == 5 * HOUR
    assert config.ttl(State.SUBMITTED) == 5 * HOUR


def test_a_default_is_required() -> None:
    with pytest.raises(ValueError, match="default"):
        TimeoutConfig({"running": HOUR})


@pytest.mark.parametrize(
    ("running_ttl", "maximum", "workflow_timeout", "expected"),
    [
        (24 * HOUR, 48 * HOUR, None, 24 * HOUR),  # the RUNNING TTL
        (24 * HOUR, 48 * HOUR, 2 * HOUR, 2 * HOUR),  # the workflow's own timeout wins
        (24 * HOUR, 48 * HOUR, 30 * HOUR, 30 * HOUR),  # may exceed the RUNNING TTL up to the maximum
        (24 * HOUR, 48 * HOUR, 49 * HOUR, 48 * HOUR),  # but is capped by it
        (24 * HOUR, 12 * HOUR, None, 12 * HOUR),  # the cap applies to the RUNNING TTL too
        (24 * HOUR, None, 30 * HOUR, 24 * HOUR),  # without a maximum the RUNNING TTL is the cap
        (None, None, 30 * HOUR, 30 * HOUR),  # ... and without that the default (2 days)
    ],
)
def test_running_ttl(
    running_ttl: timedelta | None, maximum: timedelta | None, workflow_timeout: timedelta | None, expected: timedelta
) -> None:
    ttls = {"default": timedelta(days=2)} | ({"running": running_ttl} if running_ttl else {})
    config = TimeoutConfig(ttls, max_running_timeout=maximum)
    assert config.ttl(State.RUNNING, workflow_timeout) == expected


def test_workflow_running_timeout_only_affects_running() -> None:
    config = TimeoutConfig(SCHEDULER_TTLS, max_running_timeout=48 * HOUR)
    assert config.ttl(State.SUBMITTED, 2 * HOUR) == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("ttls", "maximum", "expected"),
    [
        ({"running": 24 * HOUR, "default": 72 * HOUR}, 48 * HOUR, 48 * HOUR),
        ({"running": 24 * HOUR, "default": 72 * HOUR}, None, 24 * HOUR),
        ({"default": 72 * HOUR}, None, 72 * HOUR),
    ],
)
def test_max_running_timeout_for_validation(
    ttls: dict[str, timedelta], maximum: timedelta | None, expected: timedelta
) -> None:
    assert TimeoutConfig(ttls, max_running_timeout=maximum).max_running_timeout_for_validation() == expected


def test_deadline_and_its_boundary() -> None:
    config = TimeoutConfig(SCHEDULER_TTLS, max_running_timeout=48 * HOUR)
    submitted = state_at(State.SUBMITTED)
    deadline = T0 + 10 * 60 * 1000
    assert config.deadline_millis(submitted) == deadline
    assert not config.has_timed_out(submitted, deadline - 1)
    assert config.has_timed_out(submitted, deadline)  # reaching the deadline is already a timeout
    assert config.has_timed_out(submitted, deadline + 1)


def test_running_deadline_uses_the_workflow_timeout() -> None:
    config = TimeoutConfig(SCHEDULER_TTLS, max_running_timeout=48 * HOUR)
    running = state_at(State.RUNNING)
    two_hours = T0 + 2 * 3_600_000
    assert config.deadline_millis(running, 2 * HOUR) == two_hours
    assert config.has_timed_out(running, two_hours, 2 * HOUR)
    assert not config.has_timed_out(running, two_hours)


@pytest.mark.parametrize("terminal", [State.DONE, State.ERROR])
def test_terminal_states_never_time_out(terminal: State) -> None:
    config = TimeoutConfig({"default": timedelta(seconds=1)})
    assert not config.has_timed_out(state_at(terminal), T0 + 10**12)


def test_from_settings_uses_the_configured_ttls() -> None:
    settings = Settings(stale_state_ttls={"queued": "PT8H", "creating": "PT1M"}, max_running_timeout="PT36H")
    config = TimeoutConfig.from_settings(settings)
    assert config.ttl(State.QUEUED) == 8 * HOUR
    assert config.ttl(State.SUBMITTED) == timedelta(minutes=10)  # Styx's standalone default
    assert config.ttl(State.PREPARE) == timedelta(days=2)  # the default
    assert config.ttl(State.RUNNING, 40 * HOUR) == 36 * HOUR
    assert config.max_running_timeout_for_validation() == 36 * HOUR
