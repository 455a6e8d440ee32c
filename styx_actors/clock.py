"""Injectable clocks: every component asks a Clock for the time so tests can move it."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from styx_actors.timeutil import UTC, to_millis, utc


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (thread-safe, picklable for Ray).

    A copy made by pickling keeps the time it had, unless the clock was shared through a file
    (`share_through`): then every copy, in any process on this machine, reads the time the original sets,
    which is how tests move the time of actors on Ray."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._path: Path | None = None
        self._lock = threading.Lock()

    def share_through(self, path: Path) -> None:
        with self._lock:
            self._path = path
            self._write(self._now)

    def now(self) -> datetime:
        with self._lock:
            if self._path is not None:
                self._now = datetime.fromisoformat(self._path.read_text())
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._write(utc(when))

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            if self._path is not None:
                self._now = datetime.fromisoformat(self._path.read_text())
            self._write(self._now + delta)
            return self._now

    def _write(self, when: datetime) -> None:
        self._now = when
        if self._path is not None:  # replaced whole, so a reader never sees half a time
            temporary = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
            temporary.write_text(when.isoformat())
            os.replace(temporary, self._path)

    def __getstate__(self) -> dict[str, Any]:
        return {"now": self._now, "path": self._path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._now = state["now"]
        self._path = state.get("path")
        self._lock = threading.Lock()


def now_millis(clock: Clock) -> int:
    return to_millis(clock.now())
