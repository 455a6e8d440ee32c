"""The installation marker: refuse to run on a store that lost its data.

A Redis restarted without persistence answers as if nothing had ever been scheduled; a service running on
it would re-trigger every natural partition and forget every active instance. So a random marker is written
into the store on first start and remembered in the data dir, one file per store (`marker_file`: keyed by
the store's identity, its URL without credentials), so that a fresh store at another URL starts cleanly
while this store coming back empty is refused:

- the service's startup compares the two (`establish_marker`): a store without a marker that the data dir
  remembers one for has lost its data, and the service refuses to start;
- the scheduler reads the store's marker when it starts and checks it before every natural-trigger and
  backfill tick (`MarkerGuard`): while it is gone or different, no tick triggers anything;
- `/readyz` checks the store against the data dir (`check_marker`), so the service reads as not ready.

To start afresh on a store on purpose, delete its marker file (the refusal names it). An in-memory store
has nothing to remember: its data never outlives it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

from styx_actors.store.base import Store, StoreError

STORE_MARKERS_DIR = "store-markers"  # under the data dir: one file per store, holding its marker
_READABLE_NAME_LENGTH = 80  # of the file name's readable part; a digest of the whole identity follows


class StoreLost(StoreError):
    """The store does not carry the installation marker it was started with: its data is gone (or it is
    another installation's store)."""


def marker_file(data_dir: Path, store: Store) -> Path | None:
    """Where the data dir remembers the store's marker (None for an in-memory store): a name readable by
    a person looking for it, made unique by a digest of the store's identity."""
    identity = store.identity
    if identity is None:
        return None
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", identity).strip("-")[:_READABLE_NAME_LENGTH]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return data_dir / STORE_MARKERS_DIR / f"{readable}-{digest}"


def remembered_marker(data_dir: Path, store: Store) -> str | None:
    path = marker_file(data_dir, store)
    if path is None or not path.exists():
        return None
    return path.read_text().strip() or None


def lost_message(expected: str, found: str | None, remembered_in: Path | None = None) -> str:
    what = "has no installation marker" if found is None else f"carries installation marker {found}"
    where = str(remembered_in) if remembered_in else f"this store's file in {STORE_MARKERS_DIR}/ of the data dir"
    return (
        f"The store {what}, but this installation's is {expected} (remembered in {where}): it lost its data "
        "(restarted without persistence?) or is another installation's. Scheduling is paused so nothing is "
        f"triggered twice. Restore the store's data; or, to start afresh on this store on purpose, delete {where} "
        "(the data dir is STYX_DATA_DIR, default ~/.styx-actors) and start the service again."
    )


def check(expected: str, found: str | None, remembered_in: Path | None = None) -> None:
    if found != expected:
        raise StoreLost(lost_message(expected, found, remembered_in))


async def establish_marker(store: Store, data_dir: Path) -> str:
    """On service start: write a marker into a fresh store and remember it, or check the store against the
    remembered one. Raises StoreLost when the store lost its data."""
    path = marker_file(data_dir, store)
    remembered = remembered_marker(data_dir, store)
    if remembered is None:
        marker = await store.put_marker_if_absent(uuid.uuid4().hex)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(marker + "\n")
        return marker
    check(remembered, await store.get_marker(), path)
    return remembered


async def check_marker(store: Store, data_dir: Path) -> None:
    """Raise StoreLost unless the store carries the marker the data dir remembers for it (none: fine)."""
    remembered = remembered_marker(data_dir, store)
    if remembered is not None:
        check(remembered, await store.get_marker(), marker_file(data_dir, store))


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
