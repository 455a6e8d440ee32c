"""Natural triggers: a min-heap of the next fire time of every workflow (docs/semantics.md#natural-triggers).

A tick pops the workflows whose fire time has passed (strictly: `now > fire`), triggers the instance of
each enabled one, and advances its pointer by one schedule step. Missed periods are therefore caught up one
per tick, as in Styx; disabled workflows advance without triggering; a failed trigger (other than "already
active") does not advance, so it is retried on the next tick. Nothing is scanned: only due entries are read.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from styx_actors.clock import Clock
from styx_actors.errors import Conflict
from styx_actors.model import (
    Trigger,
    TriggerParameters,
    Workflow,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
    WorkflowStatePatch,
)
from styx_actors.schedule import Schedule, advance_natural_trigger, effective_offset, to_parameter
from styx_actors.store.base import Store

log = logging.getLogger(__name__)

# Due workflows processed at once (read in one round trip, triggered concurrently): a burst of thousands
# overlaps its store and actor round trips, while the store's connection pool stays bounded.
TICK_CONCURRENCY = 1000

TriggerFn = Callable[[WorkflowInstance, Trigger, TriggerParameters], Awaitable[object]]


class NaturalTriggers:
    def __init__(self, store: Store, trigger: TriggerFn, clock: Clock) -> None:
        self._store = store
        self._trigger = trigger
        self._clock = clock
        self._heap: list[tuple[datetime, str]] = []
        self._fire_at: dict[str, datetime] = {}  # the live entry per workflow; heap entries not matching are stale
        self._ids: dict[str, WorkflowId] = {}

    async def load(self) -> None:
        self._heap, self._fire_at, self._ids = [], {}, {}
        for workflow, state in await self._store.workflows():
            self.workflow_changed(workflow.id, state)

    def workflow_changed(self, workflow_id: WorkflowId, state: WorkflowState | None) -> None:
        key = workflow_id.key()
        fire = state.next_natural_offset_trigger if state else None
        if fire is None:
            self._fire_at.pop(key, None)
            return
        self._ids[key] = workflow_id
        if self._fire_at.get(key) != fire:
            self._fire_at[key] = fire
            heapq.heappush(self._heap, (fire, key))

    def workflow_deleted(self, workflow_id: WorkflowId) -> None:
        self._fire_at.pop(workflow_id.key(), None)

    def next_fire(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def _drop_stale(self) -> None:
        while self._heap and self._fire_at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    async def tick(self) -> int:
        """One trigger tick; returns how many instances were triggered."""
        if not (await self._store.get_config()).enabled:
            return 0
        now = self._clock.now()
        due: list[str] = []
        self._drop_stale()
        while self._heap and now > self._heap[0][0]:
            fire, key = heapq.heappop(self._heap)
            if self._fire_at.get(key) == fire:
                due.append(key)
            self._drop_stale()
        triggered = 0
        for offset in range(0, len(due), TICK_CONCURRENCY):
            chunk = due[offset : offset + TICK_CONCURRENCY]
            ids = [self._ids[key] for key in chunk]
            try:
                found = await self._store.get_workflows(ids)
            except Exception:
                self._requeue(due[offset:])
                raise
            results = await asyncio.gather(
                *(self._process(workflow_id, pair, now) for workflow_id, pair in zip(ids, found, strict=True)),
                return_exceptions=True,
            )
            for key, result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):  # the store failed: keep the entry for the next tick
                    log.error("natural trigger of %s failed; retrying next tick", key, exc_info=result)
                    self._requeue([key])
                else:
                    triggered += result
        return triggered

    def _requeue(self, keys: list[str]) -> None:
        for key in keys:
            if key in self._fire_at:
                heapq.heappush(self._heap, (self._fire_at[key], key))

    async def _process(
        self, workflow_id: WorkflowId, found: tuple[Workflow, WorkflowState] | None, now: datetime
    ) -> int:
        key = workflow_id.key()
        if found is None:
            self._fire_at.pop(key, None)
            return 0
        workflow, state = found
        logical, fire = state.next_natural_trigger, state.next_natural_offset_trigger
        if logical is None or fire is None:
            self._fire_at.pop(key, None)
            return 0
        if not now > fire:  # changed meanwhile: wait for the new time
            self._fire_at.pop(key, None)
            self.workflow_changed(workflow_id, state)
            return 0
        config = workflow.configuration
        schedule = Schedule.parse(config.schedule)
        triggered = 0
        if state.enabled and config.has_execution_info():
            instance = WorkflowInstance(workflow_id=workflow_id, parameter=to_parameter(schedule, logical))
            try:
                await self._trigger(instance, Trigger.natural(), TriggerParameters())
                triggered = 1
            except Conflict:
                log.info("natural trigger of %s: already active", instance)
            except Exception:
                log.exception("natural trigger of %s failed; retrying next tick", instance)
                self._fire_at.pop(key, None)
                self.workflow_changed(workflow_id, state)
                return 0
        next_logical, next_fire = advance_natural_trigger(schedule, effective_offset(schedule, config.offset), logical)
        patched = await self._store.patch_workflow_state(
            workflow_id, WorkflowStatePatch(next_natural_trigger=next_logical, next_natural_offset_trigger=next_fire)
        )
        self._fire_at.pop(key, None)
        self.workflow_changed(workflow_id, patched)
        return triggered
