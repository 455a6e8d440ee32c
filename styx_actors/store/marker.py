"""The installation marker: refuse to run on a store that lost its data.

A Redis restarted without persistence answers as if nothing had ever been scheduled; a service running on
it would re-trigger every natural partition and forget every active instance. So a random marker is written
into the store on first start and remembered in the data dir (`STORE_MARKER_FILE`):

- the service's startup compares the two (`establish_marker`): a store without a marker that the data dir
  remembers one for has lost its data, and the service refuses to start;
- the scheduler reads the store's marker when it starts and checks it before every natural-trigger and
  backfill tick (`MarkerGuard`): while it is gone or different, no tick triggers anything;
- `/readyz` checks the store against the data dir (`check_marker`), so the service reads as not ready.

To start afresh on purpose, remove the marker file from the data dir.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from styx_actors.store.base import Store, StoreError

STORE_MARKER_FILE = "store-marker"


class StoreLost(StoreError):
    """The store does not carry the installation marker it was started with: its data is gone (or it is
    another installation's store)."""


def remembered_marker(data_dir: Path) -> str | None:
    path = data_dir / STORE_MARKER_FILE
    return path.read_text().strip() or None if path.exists() else None


def lost_message(expected: str, found: str | None) -> str:
    what = "has no installation marker" if found is None else f"carries installation marker {found}"
    return (
        f"The store {what}, but this installation's is {expected}: it lost its data (restarted without "
        "persistence?) or is another installation's. Scheduling is paused so nothing is triggered twice; "
        f"restore the store, or remove {STORE_MARKER_FILE} from the data dir to start afresh."
    )


def check(expected: str, found: str | None) -> None:
    if found != expected:
        raise StoreLost(lost_message(expected, found))


async def establish_marker(store: Store, data_dir: Path) -> str:
    """On service start: write a marker into a fresh store and remember it, or check the store against the
    remembered one. Raises StoreLost when the store lost its data."""
    remembered = remembered_marker(data_dir)
    if remembered is None:
        marker = await store.put_marker_if_absent(uuid.uuid4().hex)
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / STORE_MARKER_FILE).write_text(marker + "\n")
        return marker
    check(remembered, await store.get_marker())
    return remembered


async def check_marker(store: Store, data_dir: Path) -> None:
    """Raise StoreLost unless the store carries the marker the data dir remembers (none remembered: fine)."""
    remembered = remembered_marker(data_dir)
    if remembered is not None:
        check(remembered, await store.get_marker())


class MarkerGuard:
    """The scheduler's check: the store still carries this installation's marker.

    `expected` is the marker the service established at startup. A scheduler given one never writes a marker,
    so a scheduler restarted on its own (by Ray) after the store lost its data finds it lost instead of
    re-marking the empty store. Without one (a store opened without the service, as in tests), the store's
    marker at start is the expected one, written first if absent."""

    def __init__(self, store: Store, expected: str | None = None) -> None:
        self._store = store
        self._expected = expected

    async def start(self) -> None:
        if self._expected is None:
            self._expected = await self._store.put_marker_if_absent(uuid.uuid4().hex)

    async def verify(self) -> None:
        if self._expected is not None:
            check(self._expected, await self._store.get_marker())
