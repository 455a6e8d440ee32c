"""Resource actors: concurrency limits enforced by counters keyed by holder
(docs/semantics.md#resources-and-concurrency).

Every resource is a logical actor (`ResourceCounter`) hosted by one `ResourceBroker`, so that acquiring all
of an instance's resources is a single step: all-or-nothing, in sorted order, with no hoarding and no
two-phase protocol between Ray actors. Waiters queue fairly: within a workflow the oldest parameter first,
across workflows round-robin. A release wakes the next waiters; nothing polls.

Counters are never a second source of truth: after a restart the hosts of the instances (shards) report the
holders they have in consuming states (`restore_holders`), rebuilding the counters from the instance snapshots.
Until every host has reported, a restarted broker's counters lack permits that running instances hold, so it
*recovers* first (`begin_recovery`): it answers no acquire (`Deferred`; neither granted nor refused) until each
host has reported or the deadline passed (`expire`), then answers the deferred acquires in its usual order. A
report that comes after that (a host that did not answer in time) still restores its holders, even past a limit:
they run already. The resource then grants nothing until its holders are back under the limit, and
`restore_holders` returns the resources it pushed past their limit so that the caller says so. A host that
itself restarted reports as the `owner` of its instances: permits of its instances that it does not report were
given back by an incarnation that died before its release reached the broker, and are dropped.

Pure logic: no I/O and no clock of its own (deadlines are numbers of the caller's clock). The actor around it,
which holds the deferred calls and keeps the time, is styx_actors/actors/broker_host.py.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

GLOBAL_RESOURCE_ID = "GLOBAL_STYX_CLUSTER"


class HolderOwner(Protocol):
    """Which holders (instance keys) a host of instances owns: its placement."""

    def owns(self, instance_key: str) -> bool: ...


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


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not answered yet: the broker is recovering; the answer comes through `on_answered`."""


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """The answer to a deferred acquire whose holder was released meanwhile: it no longer asks."""


AcquireResult = Granted | Waiting | Missing | Deferred | Withdrawn


@dataclass(order=True)
class _Waiter:
    parameter: str
    holder: str = field(compare=False)
    resource_ids: tuple[str, ...] = field(compare=False)


@dataclass(frozen=True, slots=True)
class _Request:
    workflow_key: str
    parameter: str
    resource_ids: tuple[str, ...]


@dataclass
class _Recovery:
    awaited_hosts: set[str]
    deadline_millis: int
    # holder -> its latest request, in the order of its first one
    deferred: OrderedDict[str, _Request] = field(default_factory=OrderedDict)


def _ignore_answer(holder: str, result: AcquireResult) -> None:
    """The default `on_answered`: a broker that never recovers never defers."""


def limit_reached_message(depleted: Iterable[str]) -> str:
    return f"Resource limit reached for: [{', '.join(sorted(depleted))}]"


def missing_resources_message(resource_ids: Iterable[str]) -> str:
    return f"Referenced resources not found: [{', '.join(sorted(resource_ids))}]"


class ResourceBroker:
    """Hosts the resource counters and their wait queues.

    `on_granted(holder, resource_ids)` is called for every waiter that is granted later, after a release or
    a raised limit; an immediate grant is the return value of `acquire` instead. `on_answered(holder, result)`
    answers an acquire that returned `Deferred` (recovery ended, or its holder was released meanwhile).
    """

    def __init__(
        self,
        on_granted: Callable[[str, tuple[str, ...]], None],
        on_answered: Callable[[str, AcquireResult], None] = _ignore_answer,
    ) -> None:
        self._on_granted = on_granted
        self._on_answered = on_answered
        self._recovery: _Recovery | None = None
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
        if self._recovery is not None:
            # Resolved when recovery ends: the global resource or the referenced ones may change meanwhile.
            self._recovery.deferred[holder] = _Request(workflow_key, parameter, tuple(sorted(set(resource_ids))))
            return Deferred()
        ids = self._with_global(resource_ids)
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
        if self._recovery is not None and self._recovery.deferred.pop(holder, None) is not None:
            self._on_answered(holder, Withdrawn())
        waiting = self._waiting.pop(holder, None)
        if waiting is None:
            return
        workflow_key = waiting[0]
        queue = self._queues.get(workflow_key, [])
        queue[:] = [w for w in queue if w.holder != holder]
        heapq.heapify(queue)
        if not queue:
            self._queues.pop(workflow_key, None)

    # -- recovery -------------------------------------------------------------------------------------------

    def begin_recovery(self, hosts: Iterable[str], deadline_millis: int) -> None:
        """Defer every acquire until each of `hosts` has reported its holders (`restore_holders`), or until
        `expire` is called at or after `deadline_millis`. No hosts: nothing to wait for."""
        awaited = set(hosts)
        if awaited:
            self._recovery = _Recovery(awaited, deadline_millis)

    def awaited_hosts(self) -> tuple[str, ...]:
        """The hosts whose report a recovering broker still waits for (none once it has recovered)."""
        return tuple(sorted(self._recovery.awaited_hosts)) if self._recovery else ()

    def restore_holders(
        self,
        host: str,
        holders: Mapping[str, Iterable[str]],
        owner: HolderOwner | None = None,
        active: Collection[str] = (),
    ) -> dict[str, tuple[int, int]]:
        """Re-register the holders `host` has in consuming states (holder -> resource ids), after a restart of
        the host or of the broker; a recovering broker that has now heard from every host answers its deferred
        acquires. Returns the resources this pushed past their limit, as (holders, limit): a limit lowered
        before the restart, or a report that came after recovery ended. Those holders run already, so they are
        counted all the same; the resource grants nothing until its holders are below the limit again.

        `owner` is given by a host that restarted, with the instances it has `active` (in any state): a permit
        held by one of its instances that is no longer active is released (the release died with the host). An
        active one keeps its permit even when it is not reported as holding it: its grant may be on its way
        to the host (the report was made before it), or it asks again and is granted at once (acquire is
        idempotent)."""
        if owner is not None:
            still_active = set(active)  # it crosses Ray as a list: one lookup per holder, not a scan
            lost = {
                h
                for c in self._counters.values()
                for h in c.holders
                if h not in holders and h not in still_active and owner.owns(h)
            }
            for holder in lost:
                self.release(holder)
        over_limit: dict[str, tuple[int, int]] = {}
        for holder, resource_ids in holders.items():
            for rid in resource_ids:
                counter = self._counters.get(rid)
                if counter is None or holder in counter.holders:
                    continue
                counter.holders.add(holder)
                if len(counter.holders) > counter.limit:
                    over_limit[rid] = (len(counter.holders), counter.limit)
        if self._recovery is not None:
            self._recovery.awaited_hosts.discard(host)
            if not self._recovery.awaited_hosts:
                self._end_recovery()
        return over_limit

    def expire(self, now_millis: int) -> tuple[str, ...]:
        """At or past the recovery deadline, stop waiting: answer the deferred acquires with the holders known
        so far. Returns the hosts that had not reported (their reports, should they come, still count)."""
        recovery = self._recovery
        if recovery is None or now_millis < recovery.deadline_millis:
            return ()
        silent = tuple(sorted(recovery.awaited_hosts))
        self._end_recovery()
        return silent

    # -- introspection --------------------------------------------------------------------------------------

    def usage(self) -> dict[str, tuple[int, int]]:
        """resource id -> (holders, limit)."""
        return {rid: (len(c.holders), c.limit) for rid, c in self._counters.items()}

    def holders(self, resource_id: str) -> set[str]:
        counter = self._counters.get(resource_id)
        return set(counter.holders) if counter else set()

    def waiting_count(self) -> int:
        """Waiters in the queues, and acquires deferred while recovering."""
        return len(self._waiting) + (len(self._recovery.deferred) if self._recovery else 0)

    # -- internals ------------------------------------------------------------------------------------------

    def _with_global(self, resource_ids: Iterable[str]) -> tuple[str, ...]:
        ids = set(resource_ids)
        if self.uses_global():
            ids.add(GLOBAL_RESOURCE_ID)
        return tuple(sorted(ids))

    def _end_recovery(self) -> None:
        """Answer the deferred acquires as if they had all come now, granting in the queues' usual order
        (oldest parameter first within a workflow, round-robin across workflows), not in order of arrival."""
        assert self._recovery is not None
        deferred = self._recovery.deferred
        self._recovery = None
        answers: dict[str, AcquireResult] = {}
        for holder, request in deferred.items():
            ids = self._with_global(request.resource_ids)
            missing = tuple(rid for rid in ids if rid not in self._counters)
            if missing:
                self.cancel(holder)
                answers[holder] = Missing(missing)
            elif all(holder in self._counters[rid].holders for rid in ids):
                answers[holder] = Granted(ids)  # restored meanwhile: a retried call of a holder
            else:
                self._enqueue(holder, request.workflow_key, request.parameter, ids)
        for holder, ids in self._grant_waiters():
            if holder in deferred:
                answers[holder] = Granted(ids)  # an immediate grant: the answer to its acquire
            else:
                self._on_granted(holder, ids)
        for holder in deferred:
            if holder not in answers:
                ids = self._waiting[holder][1]
                answers[holder] = Waiting(self._depleted(holder, ids) or ids)
            self._on_answered(holder, answers[holder])

    def _depleted(self, holder: str, ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(
            rid for rid in ids if holder not in self._counters[rid].holders and not self._counters[rid].has_room()
        )

    def _others_waiting_before(self, holder: str, workflow_key: str, parameter: str) -> bool:
        """An older waiter of the same workflow goes first (fairness within a workflow)."""
        queue = self._queues.get(workflow_key)
        # A heap: its two smallest waiters are among its first three entries.
        return queue is not None and any(w.holder != holder and w.parameter < parameter for w in queue[:3])

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
        if self._recovery is not None:
            return  # the counters are not complete yet: nothing is granted before recovery ends
        for holder, ids in self._grant_waiters():
            self._on_granted(holder, ids)

    def _grant_waiters(self) -> list[tuple[str, tuple[str, ...]]]:
        """Grant waiters round-robin across workflows until a full round grants nothing; the grants in order."""
        grants: list[tuple[str, tuple[str, ...]]] = []
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
                grants.append((head.holder, head.resource_ids))
                progress = True
        return grants
