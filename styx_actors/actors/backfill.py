"""Backfill actors: each active backfill keeps at most `concurrency` of its instances active
(docs/semantics.md#backfills).

A driver triggers the partitions at its cursor, advances the cursor (forward or reverse) and persists it,
until the last partition is triggered (`all_triggered`). The partitions that fit in its free slots are
triggered together, as one round, and the cursor is persisted once per round. It is woken when one of its
instances ends, so a freed slot is refilled at once, and by the periodic tick, which also picks up edits
made through other API processes. Already-active partitions are skipped (and count as triggered, as in
Styx).

Exactly once: should the process die between a round's triggers and its cursor write, the driver finds on
restart which partitions of the next round (at most `concurrency` from the cursor) already carry a trigger
of this backfill in their event log, and steps past those instead of running them again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from styx_actors.actors.natural import TriggerFn
from styx_actors.errors import Conflict
from styx_actors.events import TriggerExecution, event_from_json
from styx_actors.model import Backfill, Trigger, TriggerParameters, WorkflowInstance
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.store.base import Store
from styx_actors.timeutil import to_millis

log = logging.getLogger(__name__)


class BackfillDriver:
    def __init__(self, backfill: Backfill, store: Store, trigger: TriggerFn) -> None:
        self.backfill = backfill
        self._store = store
        self._trigger = trigger
        self._active: set[str] = set()
        # Partitions past the cursor that are triggered already: skipped until the cursor moves past them.
        self._ahead: set[str] = set()
        self._lock = asyncio.Lock()

    @property
    def id(self) -> str:
        return self.backfill.id

    async def start(self) -> None:
        """Learn which instances of this backfill are active, and which partitions of the next round were
        triggered just before a crash."""
        states = await self._store.active_states_by_trigger(self.id)
        self._active = {
            s.workflow_instance.parameter
            for s in states
            if s.workflow_instance.workflow_id == self.backfill.workflow_id
        }
        async with self._lock:
            schedule = await self._schedule()
            if schedule is None:
                return
            for cursor in self._next_cursors(schedule, self.backfill.concurrency):
                if await self._was_triggered(schedule, cursor):
                    self._ahead.add(to_parameter(schedule, cursor))

    def update(self, backfill: Backfill) -> None:
        """An edit (concurrency, description, halt) made elsewhere."""
        if backfill.model_dump() != self.backfill.model_dump():
            self.backfill = self.backfill.model_copy(
                update={
                    "concurrency": backfill.concurrency,
                    "description": backfill.description,
                    "halted": backfill.halted,
                }
            )

    def instance_finished(self, parameter: str) -> None:
        self._active.discard(parameter)

    async def edit(self, changes: dict[str, object]) -> Backfill:
        """Apply an edit (concurrency, description, halt) between rounds: the driver is the only writer of
        an active backfill, so an edit and a cursor move can never overwrite each other."""
        async with self._lock:
            await self._save(**changes)
            return self.backfill

    @property
    def finished(self) -> bool:
        return self.backfill.halted or self.backfill.all_triggered

    async def pump(self, max_triggers: int | None = None) -> int:
        """Trigger partitions while there is room, a round at a time; returns how many were triggered."""
        async with self._lock:
            schedule = await self._schedule()
            if schedule is None:
                return 0
            triggered = 0
            while not self.finished:
                room = self.backfill.concurrency - len(self._active)
                if max_triggers is not None:
                    room = min(room, max_triggers - triggered)
                if room <= 0:
                    break
                cursors = self._next_cursors(schedule, room)
                if not cursors:
                    await self._save(all_triggered=True)
                    break
                outcomes = await asyncio.gather(*(self._trigger_partition(schedule, cursor) for cursor in cursors))
                # The cursor moves past the round's partitions up to the first that failed; those triggered
                # after it are remembered, so that they are not triggered again when the cursor gets there,
                # however many rounds that partition fails first.
                failed = outcomes.index(None) if None in outcomes else len(outcomes)
                for cursor, outcome in zip(cursors[failed + 1 :], outcomes[failed + 1 :], strict=True):
                    if outcome:
                        self._ahead.add(to_parameter(schedule, cursor))
                self._ahead.difference_update(to_parameter(schedule, cursor) for cursor in cursors[:failed])
                triggered += sum(1 for outcome in outcomes if outcome)
                if failed > 0:
                    await self._advance(schedule, cursors[failed - 1])
                if failed < len(outcomes):
                    break  # retried on the next tick
            return triggered

    async def _trigger_partition(self, schedule: Schedule, cursor: datetime) -> bool | None:
        """True: triggered; False: skipped (already active, or triggered before a restart); None: failed."""
        parameter = to_parameter(schedule, cursor)
        if parameter in self._ahead:
            return False
        instance = WorkflowInstance(workflow_id=self.backfill.workflow_id, parameter=parameter)
        # Counted before the trigger returns: the instance may finish (and be discounted) before that.
        self._active.add(parameter)
        try:
            await self._trigger(
                instance, Trigger.backfill(self.id), self.backfill.trigger_parameters or TriggerParameters()
            )
            return True
        except Conflict:
            self._active.discard(parameter)
            log.info("backfill %s: %s already active, skipped", self.id, instance)
            return False
        except Exception:
            self._active.discard(parameter)
            log.exception("backfill %s: triggering %s failed; retrying next tick", self.id, instance)
            return None

    def _next_cursors(self, schedule: Schedule, count: int) -> list[datetime]:
        """Up to `count` partitions from the cursor on, in the backfill's direction."""
        end = self._exclusive_end(schedule)
        cursors: list[datetime] = []
        cursor = self.backfill.next_trigger
        while len(cursors) < count and cursor != end:
            cursors.append(cursor)
            cursor = self._step(schedule, cursor)
        return cursors

    def _step(self, schedule: Schedule, cursor: datetime) -> datetime:
        return schedule.previous(cursor) if self.backfill.reverse else schedule.next(cursor)

    async def _schedule(self) -> Schedule | None:
        """The workflow's current schedule; a backfill whose workflow is gone is halted."""
        found = await self._store.get_workflow(self.backfill.workflow_id)
        if found is None:
            await self._save(halted=True)
            return None
        return Schedule.parse(found[0].configuration.schedule)

    def _exclusive_end(self, schedule: Schedule) -> datetime:
        return schedule.previous(self.backfill.start) if self.backfill.reverse else self.backfill.end

    async def _advance(self, schedule: Schedule, cursor: datetime) -> None:
        """Persist the cursor just past `cursor`."""
        following = self._step(schedule, cursor)
        await self._save(next_trigger=following, all_triggered=following == self._exclusive_end(schedule))

    async def _save(self, **changes: object) -> None:
        # Re-read so that an edit through another API process (concurrency, halt) is not overwritten.
        stored = await self._store.get_backfill(self.id) or self.backfill
        self.backfill = stored.model_copy(update=changes)
        await self._store.put_backfill(self.backfill)

    async def _was_triggered(self, schedule: Schedule, cursor: datetime) -> bool:
        instance = WorkflowInstance(workflow_id=self.backfill.workflow_id, parameter=to_parameter(schedule, cursor))
        for stored in reversed(await self._store.events(instance)):
            event, _ = event_from_json(stored.event_json)
            if isinstance(event, TriggerExecution):
                created = to_millis(self.backfill.created) if self.backfill.created else 0
                return event.trigger.trigger_id == self.id and stored.timestamp >= created
        return False


class BackfillDrivers:
    """Hosts the driver of every active backfill."""

    def __init__(self, store: Store, trigger: TriggerFn, max_triggers_per_tick: int) -> None:
        self._store = store
        self._trigger = trigger
        self._max_per_tick = max_triggers_per_tick
        self._drivers: dict[str, BackfillDriver] = {}
        self._wakeups: set[asyncio.Task[int]] = set()
        self._waking: set[str] = set()  # drivers with a wake-up that has not started pumping yet

    def active_ids(self) -> list[str]:
        return sorted(self._drivers)

    async def tick(self) -> int:
        """Sync with the stored backfills, then let each driver trigger up to the per-tick cap."""
        if not (await self._store.get_config()).enabled:
            return 0
        stored = {b.id: b for b in await self._store.backfills()}
        for backfill_id in list(self._drivers):
            if backfill_id not in stored:
                del self._drivers[backfill_id]
        for backfill in stored.values():
            await self._ensure(backfill)
        triggered = 0
        for driver in list(self._drivers.values()):
            triggered += await driver.pump(self._max_per_tick)
            if driver.finished:
                self._drivers.pop(driver.id, None)
        return triggered

    async def edit(self, backfill_id: str, changes: dict[str, object]) -> Backfill | None:
        """Edit a stored backfill through its driver when it is active; None when there is no such backfill."""
        stored = await self._store.get_backfill(backfill_id)
        if stored is None:
            return None
        driver = self._drivers.get(backfill_id)
        if driver is None and not (stored.halted or stored.all_triggered):
            driver = await self._ensure(stored)
        if driver is None:  # finished backfills have no driver and nothing else writes them
            updated = stored.model_copy(update=changes)
            await self._store.put_backfill(updated)
            return updated
        updated = await driver.edit(changes)
        if driver.finished:
            self._drivers.pop(driver.id, None)
        else:
            self._wake(driver)
        return updated

    async def backfill_changed(self, backfill: Backfill) -> None:
        if backfill.halted or backfill.all_triggered:
            self._drivers.pop(backfill.id, None)
            return
        driver = await self._ensure(backfill)
        self._wake(driver)

    def instance_finished(self, instance: WorkflowInstance, trigger_id: str | None) -> None:
        driver = self._drivers.get(trigger_id or "")
        if driver is not None and driver.backfill.workflow_id == instance.workflow_id:
            driver.instance_finished(instance.parameter)
            self._wake(driver)

    async def _ensure(self, backfill: Backfill) -> BackfillDriver:
        driver = self._drivers.get(backfill.id)
        if driver is None:
            driver = BackfillDriver(backfill, self._store, self._trigger)
            self._drivers[backfill.id] = driver
            await driver.start()
        else:
            driver.update(backfill)
        return driver

    def _wake(self, driver: BackfillDriver) -> None:
        """Pump the driver soon; the many instances of a burst that finish together wake it once."""
        if driver.id in self._waking:
            return
        self._waking.add(driver.id)
        task = asyncio.create_task(self._pump(driver))
        self._wakeups.add(task)
        task.add_done_callback(self._wakeups.discard)

    async def _pump(self, driver: BackfillDriver) -> int:
        self._waking.discard(driver.id)
        enabled = (await self._store.get_config()).enabled
        triggered = await driver.pump() if enabled else 0
        if driver.finished:
            self._drivers.pop(driver.id, None)
        return triggered
