"""Stale-state timeouts (docs/semantics.md#timeouts): how long an instance may stay in one state before it times out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from styx_actors.model import RunState, State
from styx_actors.settings import Settings
from styx_actors.timeutil import duration_millis

_DEFAULT_KEY = "default"
_KNOWN_KEYS = frozenset(state.value.lower() for state in State) | {_DEFAULT_KEY}


@dataclass(frozen=True)
class TimeoutConfig:
    """TTLs keyed by lower-case state name plus the mandatory `default`.

    Keys that name no state (Styx's shipped configs carry `creating` and `awaiting_retry`) are dropped.
    """

    ttls: Mapping[str, timedelta]
    max_running_timeout: timedelta | None = None

    def __post_init__(self) -> None:
        ttls = {key.lower(): value for key, value in self.ttls.items()}
        if _DEFAULT_KEY not in ttls:
            raise ValueError("stale-state TTLs need a 'default' entry")
        # A plain dict rather than a read-only proxy: the config is pickled into Ray actors.
        object.__setattr__(self, "ttls", {key: value for key, value in ttls.items() if key in _KNOWN_KEYS})

    @classmethod
    def from_settings(cls, settings: Settings) -> TimeoutConfig:
        return cls(
            ttls=settings.stale_state_ttls,
            max_running_timeout=settings.max_running_timeout,
        )

    def _own_ttl(self, state: State) -> timedelta:
        return self.ttls.get(state.value.lower(), self.ttls[_DEFAULT_KEY])

    def max_running_timeout_for_validation(self) -> timedelta:
        """The largest running_timeout a workflow may ask for: max-running-timeout, else the RUNNING TTL
        (which itself falls back to the default)."""
        if self.max_running_timeout is not None:
            return self.max_running_timeout
        return self._own_ttl(State.RUNNING)

    def ttl(self, state: State, workflow_running_timeout: timedelta | None = None) -> timedelta:
        """The TTL of `state`; RUNNING honours the workflow's running_timeout, capped by the maximum."""
        if state is State.RUNNING:
            wanted = workflow_running_timeout if workflow_running_timeout is not None else self._own_ttl(state)
            return min(wanted, self.max_running_timeout_for_validation())
        return self._own_ttl(state)

    def deadline_millis(self, run_state: RunState, workflow_running_timeout: timedelta | None = None) -> int:
        """Epoch milliseconds at which `run_state` times out unless another transition happens first."""
        return run_state.timestamp + duration_millis(self.ttl(run_state.state, workflow_running_timeout))

    def has_timed_out(
        self, run_state: RunState, now_millis: int, workflow_running_timeout: timedelta | None = None
    ) -> bool:
        if run_state.state.is_terminal:
            return False
        return self.deadline_millis(run_state, workflow_running_timeout) <= now_millis
