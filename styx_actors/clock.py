"""Injectable clocks: every component asks a Clock for the time so tests can move it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Protocol

from styx_actors.timeutil import UTC, to_millis, utc


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (thread-safe, picklable for Ray)."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = utc(when)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def __getstate__(self) -> dict:
        return {"now": self._now}

    def __setstate__(self, state: dict) -> None:
        self._now = state["now"]
        self._lock = threading.Lock()


def now_millis(clock: Clock) -> int:
    return to_millis(clock.now())
