"""The scheduler actor: emits the ticks of natural triggers and backfills, hears of finished instances, and
deletes the history of instances finished longer ago than the retention (one round for the whole cluster)."""

from __future__ import annotations

import asyncio
import logging
import random

from styx_actors.actors.backfill import BackfillDrivers
from styx_actors.actors.janitor import HISTORY_EXPIRY_INTERVAL, delete_expired_history
from styx_actors.actors.loops import every
from styx_actors.actors.natural import NaturalTriggers, TriggerFn
from styx_actors.clock import Clock, now_millis
from styx_actors.model import Backfill, State, WorkflowId, WorkflowInstance, WorkflowState
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_actors.store.marker import MarkerGuard

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self, store: Store, trigger: TriggerFn, clock: Clock, settings: Settings, marker: str | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self.natural = NaturalTriggers(store, trigger, clock)
        self.backfills = BackfillDrivers(store, trigger, settings.backfill_max_triggers_per_tick)
        self.marker = MarkerGuard(store, marker)
        self._loops: list[asyncio.Task[None]] = []
        self._rng = random.Random()

    async def start(self, run_loops: bool = True) -> None:
        await self.marker.start()
        await self.natural.load()
        await self.backfill_tick()
        if run_loops:
            self._loops = [
                asyncio.create_task(every(self._settings.trigger_tick_interval, self.natural_tick, self._rng)),
                asyncio.create_task(every(self._settings.backfill_tick_interval, self.backfill_tick, self._rng)),
                asyncio.create_task(every(HISTORY_EXPIRY_INTERVAL, self.expire_history, self._rng)),
            ]

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        self._loops = []

    # -- notifications from the facade and the shards -------------------------------------------------------

    def workflow_changed(self, workflow_id: WorkflowId, state: WorkflowState | None) -> None:
        self.natural.workflow_changed(workflow_id, state)

    def workflow_deleted(self, workflow_id: WorkflowId) -> None:
        self.natural.workflow_deleted(workflow_id)

    async def backfill_changed(self, backfill: Backfill) -> None:
        await self.backfills.backfill_changed(backfill)

    async def edit_backfill(self, backfill_id: str, changes: dict[str, object]) -> Backfill | None:
        return await self.backfills.edit(backfill_id, changes)

    def instance_finished(self, instance: WorkflowInstance, trigger_id: str | None, state: State) -> None:
        self.backfills.instance_finished(instance, trigger_id)

    async def tick(self) -> int:
        """One natural-trigger tick and one backfill tick (tests drive time with these)."""
        return await self.natural_tick() + await self.backfill_tick()

    # A store that lost its data (StoreLost) would make every partition look untriggered: no tick then. A
    # store with another installation's marker is not this one's to delete history from either.

    async def natural_tick(self) -> int:
        await self.marker.verify()
        return await self.natural.tick()

    async def backfill_tick(self) -> int:
        await self.marker.verify()
        return await self.backfills.tick()

    async def expire_history(self) -> int:
        """One round of the history janitor at the clock's time; how many instances' history it deleted."""
        await self.marker.verify()
        return await delete_expired_history(self._store, self._settings.event_retention, now_millis(self._clock))
