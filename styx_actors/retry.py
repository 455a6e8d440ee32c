"""The retry decision after an execution ends: success, retry after a delay, or stop (docs/semantics.md#retries).

Pure logic: the caller supplies the RunState, the workflow's current `retry_condition` (None when the
workflow has none or is not known) and a random source, and sends the returned event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from styx_actors import events
from styx_actors.model import RunState, State
from styx_actors.retry_condition import condition_allows_retry
from styx_actors.settings import Settings

SUCCESS_EXIT_CODE = 0
MISSING_DEPS_EXIT_CODE = 20
FAIL_FAST_EXIT_CODE = 50

MISSING_DEPS_COST = 0.1
FAILURE_COST = 1.0


def exit_code_cost(exit_code: int | None) -> float:
    """What one execution ending with `exit_code` adds to the retry cost (unknown exit counts as a failure)."""
    if exit_code == SUCCESS_EXIT_CODE:
        return 0.0
    if exit_code == MISSING_DEPS_EXIT_CODE:
        return MISSING_DEPS_COST
    return FAILURE_COST


def failures_after(previous: int, exit_code: int | None) -> int:
    """Consecutive failures after an execution ends: success and missing dependencies reset the count."""
    if exit_code in (SUCCESS_EXIT_CODE, MISSING_DEPS_EXIT_CODE):
        return 0
    return previous + 1


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: timedelta = timedelta(seconds=180)
    max_exponent: int = 4
    missing_deps_delay: timedelta = timedelta(seconds=600)
    max_cost: float = 50.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_delay=settings.retry_base_delay,
            max_exponent=settings.retry_max_exponent,
            missing_deps_delay=settings.missing_deps_delay,
            max_cost=settings.max_retry_cost,
        )

    def backoff_millis(self, consecutive_failures: int, rng: random.Random) -> int:
        """Full-jitter exponential backoff: base × max(1, U{0 .. 2^min(failures, max_exponent) − 1})."""
        exponent = min(max(consecutive_failures, 0), self.max_exponent)
        multiplier = max(1, rng.randint(0, 2**exponent - 1))
        return _millis(self.base_delay) * multiplier

    def decide(self, run_state: RunState, retry_condition: str | None, rng: random.Random) -> events.Event:
        """Stop or RetryAfter for a failed execution (TERMINATED with a non-zero/unknown exit, or FAILED)."""
        data = run_state.data
        if data.retry_cost >= self.max_cost or data.last_exit == FAIL_FAST_EXIT_CODE:
            return events.Stop()
        if retry_condition is not None and not condition_allows_retry(retry_condition, condition_variables(run_state)):
            return events.Stop()
        if data.last_exit == MISSING_DEPS_EXIT_CODE:
            return events.RetryAfter(_millis(self.missing_deps_delay))
        return events.RetryAfter(self.backoff_millis(data.consecutive_failures, rng))

    def on_terminal_state(
        self, run_state: RunState, retry_condition: str | None, rng: random.Random
    ) -> events.Event | None:
        """The event that follows TERMINATED or FAILED (Success for exit 0), None for any other state."""
        if run_state.state is State.TERMINATED and run_state.data.last_exit == SUCCESS_EXIT_CODE:
            return events.Success()
        if run_state.state in (State.TERMINATED, State.FAILED):
            return self.decide(run_state, retry_condition, rng)
        return None


def condition_variables(run_state: RunState) -> dict[str, object]:
    """The variables a retry_condition sees (docs/semantics.md#retry-condition)."""
    data = run_state.data
    return {
        "exitCode": data.last_exit,
        "tries": data.tries,
        "consecutiveFailures": data.consecutive_failures,
        "triggerType": data.trigger.type.value if data.trigger is not None else None,
    }


def _millis(delay: timedelta) -> int:
    return delay // timedelta(milliseconds=1)
