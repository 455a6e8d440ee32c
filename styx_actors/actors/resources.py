"""Resource actors: concurrency limits enforced by counters keyed by holder (reference §6).

Every resource is a logical actor (`ResourceCounter`) hosted by one `ResourceBroker`, so that acquiring all
of an instance's resources is a single step: all-or-nothing, in sorted order, with no hoarding and no
two-phase protocol between Ray actors. Waiters queue fairly: within a workflow the oldest parameter first,
across workflows round-robin. A release wakes the next waiters; nothing polls.

Counters are never a second source of truth: after a restart the shards report the holders they have in
consuming states (`restore`), rebuilding the counters from the instance snapshots.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

GLOBAL_RESOURCE_ID = "GLOBAL_STYX_CLUSTER"


@dataclass
class ResourceCounter:
    """One resource: its limit and the set of holders (so acquire and release are idempotent)."""

    limit: int
    holders: set[str] = field(default_factory=set)

    def has_room(self) -> bool:
        return len(self.holders) < self.limit


@dataclass(frozen=True, slots=True)
class Granted:
    resource_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Waiting:
    """Queued; `depleted` names the resources without room (for the "Resource limit reached" message)."""

    depleted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Missing:
    """Some referenced resources do not exist (the instance fails with Styx's message)."""

    resource_ids: tuple[str, ...]


AcquireResult = Granted | Waiting | Missing


@dataclass(order=True)
class _Waiter:
    parameter: str
    holder: str = field(compare=False)
    resource_ids: tuple[str, ...] = field(compare=False)


def limit_reached_message(depleted: Iterable[str]) -> str:
    return f"Resource limit reached for: [{', '.join(sorted(depleted))}]"


def missing_resources_message(resource_ids: Iterable[str]) -> str:
    return f"Referenced resources not found: [{', '.join(sorted(resource_ids))}]"


class ResourceBroker:
    """Hosts the resource counters and their wait queues.

    `on_granted(holder, resource_ids)` is called for every waiter that is granted later, after a release or
    a raised limit; an immediate grant is the return value of `acquire` instead.
    """

    def __init__(self, on_granted: Callable[[str, tuple[str, ...]], None]) -> None:
        self._on_granted = on_granted
        self._counters: dict[str, ResourceCounter] = {}
        # workflow key -> min-heap of waiters (oldest parameter first); OrderedDict order = round-robin turn
        self._queues: OrderedDict[str, list[_Waiter]] = OrderedDict()
        self._waiting: dict[str, tuple[str, tuple[str, ...]]] = {}  # holder -> (workflow key, resource ids)

    # -- configuration --------------------------------------------------------------------------------------

    def set_limit(self, resource_id: str, limit: int) -> None:
        """Create or change a resource. A lowered limit only blocks new acquisitions."""
        counter = self._counters.get(resource_id)
        if counter is None:
            self._counters[resource_id] = ResourceCounter(limit=limit)
        else:
            counter.limit = limit
        self._wake()

    def remove(self, resource_id: str) -> None:
        """Delete a resource; its holders keep running and their releases become no-ops."""
        self._counters.pop(resource_id, None)

    def set_global_concurrency(self, concurrency: int | None) -> None:
        if concurrency is None:
            self.remove(GLOBAL_RESOURCE_ID)
        else:
            self.set_limit(GLOBAL_RESOURCE_ID, concurrency)

    def sync_limits(self, limits: dict[str, int]) -> None:
        """Make the set of resources exactly `limits` (the global resource is kept as configured)."""
        for resource_id in list(self._counters):
            if resource_id != GLOBAL_RESOURCE_ID and resource_id not in limits:
                self.remove(resource_id)
        for resource_id, limit in limits.items():
            self.set_limit(resource_id, limit)

    def uses_global(self) -> bool:
        return GLOBAL_RESOURCE_ID in self._counters

    # -- acquisition ----------------------------------------------------------------------------------------

    def acquire(self, holder: str, workflow_key: str, parameter: str, resource_ids: Iterable[str]) -> AcquireResult:
        ids = tuple(sorted(set(resource_ids)))
        if self.uses_global() and GLOBAL_RESOURCE_ID not in ids:
            ids = tuple(sorted((*ids, GLOBAL_RESOURCE_ID)))
        missing = tuple(rid for rid in ids if rid not in self._counters)
        if missing:
            self.cancel(holder)
            return Missing(missing)
        if all(holder in self._counters[rid].holders for rid in ids):
            return Granted(ids)  # a repeated request of a holder that already got its permits
        depleted = self._depleted(holder, ids)
        if not depleted and not self._others_waiting_before(holder, workflow_key, parameter):
            self._take(holder, ids)
            self.cancel(holder)
            return Granted(ids)
        self._enqueue(holder, workflow_key, parameter, ids)
        return Waiting(depleted or tuple(ids))

    def release(self, holder: str) -> None:
        released = False
        for counter in self._counters.values():
            if holder in counter.holders:
                counter.holders.discard(holder)
                released = True
        self.cancel(holder)
        if released:
            self._wake()

    def cancel(self, holder: str) -> None:
        """Forget a waiter (halted or retried while queued)."""
        waiting = self._waiting.pop(holder, None)
        if waiting is None:
            return
        workflow_key = waiting[0]
        queue = self._queues.get(workflow_key, [])
        queue[:] = [w for w in queue if w.holder != holder]
        heapq.heapify(queue)
        if not queue:
            self._queues.pop(workflow_key, None)

    def restore(self, holder: str, resource_ids: Iterable[str]) -> None:
        """Re-register a holder found in a consuming state after a restart (may exceed a lowered limit)."""
        for rid in resource_ids:
            counter = self._counters.get(rid)
            if counter is not None:
                counter.holders.add(holder)

    # -- introspection --------------------------------------------------------------------------------------

    def usage(self) -> dict[str, tuple[int, int]]:
        """resource id -> (holders, limit)."""
        return {rid: (len(c.holders), c.limit) for rid, c in self._counters.items()}

    def holders(self, resource_id: str) -> set[str]:
        counter = self._counters.get(resource_id)
        return set(counter.holders) if counter else set()

    def waiting_count(self) -> int:
        return len(self._waiting)

    # -- internals ------------------------------------------------------------------------------------------

    def _depleted(self, holder: str, ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(
            rid for rid in ids if holder not in self._counters[rid].holders and not self._counters[rid].has_room()
        )

    def _others_waiting_before(self, holder: str, workflow_key: str, parameter: str) -> bool:
        """An older waiter of the same workflow goes first (fairness within a workflow)."""
        queue = self._queues.get(workflow_key)
        # A heap: its two smallest waiters are among its first three entries.
        return bool(queue) and any(w.holder != holder and w.parameter < parameter for w in queue[:3])

    def _take(self, holder: str, ids: tuple[str, ...]) -> None:
        for rid in ids:
            self._counters[rid].holders.add(holder)

    def _enqueue(self, holder: str, workflow_key: str, parameter: str, ids: tuple[str, ...]) -> None:
        if self._waiting.get(holder) == (workflow_key, ids):
            return
        self.cancel(holder)  # it asks for other resources now (its workflow changed)
        heapq.heappush(self._queues.setdefault(workflow_key, []), _Waiter(parameter, holder, ids))
        self._waiting[holder] = (workflow_key, ids)

    def _wake(self) -> None:
        """Grant waiters round-robin across workflows until a full round grants nothing."""
        progress = True
        while progress and self._queues:
            progress = False
            for workflow_key in list(self._queues):
                queue = self._queues.get(workflow_key)
                if not queue:
                    continue
                head = queue[0]
                if any(rid not in self._counters for rid in head.resource_ids):
                    continue  # the resource was deleted: the instance finds out when it asks again
                if self._depleted(head.holder, head.resource_ids):
                    continue
                heapq.heappop(queue)
                del self._waiting[head.holder]
                self._take(head.holder, head.resource_ids)
                # Give this workflow the last turn of the next round.
                self._queues.move_to_end(workflow_key)
                if not queue:
                    del self._queues[workflow_key]
                self._on_granted(head.holder, head.resource_ids)
                progress = True
