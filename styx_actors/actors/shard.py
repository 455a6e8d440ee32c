"""InstanceShard: hosts the virtual instance actors it owns (Orleans-style placement).

One Ray actor is one OS process, so instances are not Ray actors by default: a fixed set of shards hosts
them, routed by a stable hash of the instance key. In dedicated placement a shard owns exactly one instance
and is its own Ray actor (placement.py). A shard owns, for its instances: the group committer,
one timer heap (retry delays and state timeouts), the execution-id routing of runner progress, and the
recovery of their snapshots from the store.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from styx_actors.actors.batching import BatchLoader
from styx_actors.actors.committer import GroupCommitter
from styx_actors.actors.instance import InstanceActor, NotActive
from styx_actors.actors.interfaces import BrokerPort
from styx_actors.actors.loops import every
from styx_actors.actors.placement import Placement
from styx_actors.actors.resources import AcquireResult, Granted, Missing
from styx_actors.clock import Clock
from styx_actors.events import Event, RetryAfter, TriggerExecution
from styx_actors.model import (
    GlobalConfig,
    RunState,
    State,
    Trigger,
    TriggerParameters,
    Workflow,
    WorkflowConfiguration,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
)
from styx_actors.retry import RetryPolicy
from styx_actors.runners.base import ExecutionRunner, ExecutionStatus, RunnerError
from styx_actors.settings import Settings
from styx_actors.state_machine import new_instance_state
from styx_actors.store.base import Store, StoreError, Transition
from styx_actors.timeouts import TimeoutConfig
from styx_actors.timeutil import to_millis
from styx_actors.validation import ValidationLimits

log = logging.getLogger(__name__)

# How often due timers (retry delays, state timeouts) are checked against the clock.
TIMER_RESOLUTION = timedelta(milliseconds=50)
# An instance has at most two live timers (its timeout, a retry delay); the heap is compacted when it holds
# more than this many entries per instance (plus the slack), which keeps compaction amortised O(1).
TIMER_COMPACTION_FACTOR = 4
TIMER_COMPACTION_SLACK = 1000


class AlreadyActive(Exception):
    """The instance is already triggered (docs/semantics.md#triggers)."""


# (instance, trigger id, final state) of every instance that reached DONE or ERROR
FinishedListener = Callable[[WorkflowInstance, str | None, State], None]


@dataclass
class _WorkflowCacheEntry:
    found: tuple[Workflow, WorkflowState] | None
    loaded_at: float


@dataclass(order=True)
class _Timer:
    at_millis: int
    seq: int
    key: str = field(compare=False)
    counter: int = field(compare=False)
    kind: str = field(compare=False)


class InstanceShard:
    def __init__(
        self,
        placement: Placement,
        store: Store,
        runner: ExecutionRunner,
        resources: BrokerPort,
        settings: Settings,
        clock: Clock,
        on_finished: FinishedListener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.placement = placement
        self._store = store
        self._runner = runner
        self._resources = resources
        self._settings = settings
        self._clock = clock
        self._on_finished = on_finished
        self.rng = rng or random.Random()
        self.runner_id = settings.docker_runner_id
        self.environment = settings.environment
        self._committer = GroupCommitter(store)
        self._workflow_loader = BatchLoader(store.get_workflows)
        self._counter_loader = BatchLoader(store.latest_event_counters)
        self._retry_policy = RetryPolicy.from_settings(settings)
        self._timeouts = TimeoutConfig.from_settings(settings)
        self._validation_limits = ValidationLimits.from_settings(settings)
        self._actors: dict[str, InstanceActor] = {}
        self._broker_holders: set[str] = set()  # instances the resource broker may count or queue
        # Instances recovered after a restart: the broker may count them (granted to the previous incarnation)
        # whatever their state, so each tells it once when it leaves.
        self._inherited: set[str] = set()
        self._by_execution: dict[str, str] = {}
        self._timers: list[_Timer] = []
        self._timer_seq = itertools.count()
        self._workflows: dict[str, _WorkflowCacheEntry] = {}
        self._config = GlobalConfig()
        self._loops: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._instance_tasks: set[asyncio.Task[None]] = set()  # mailboxes and handlers of hosted instances
        self._counts: Counter[str] = Counter()  # transitions by event, triggers by type (metrics)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover this shard's instances from the store, then start the timer and reconcile loops."""
        self._config = await self._store.get_config()
        await self.recover()
        loop = asyncio.get_running_loop()
        # Runners may report from their own threads (Docker's event stream): hop onto this loop.
        self._runner.watch(
            lambda execution_id, status: loop.call_soon_threadsafe(self.runner_status, execution_id, status)
        )
        self._loops = [
            asyncio.create_task(every(TIMER_RESOLUTION, self.fire_due_timers, self.rng, jitter=False)),
            asyncio.create_task(every(self._settings.state_manager_tick_interval, self.reconcile, self.rng)),
        ]

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        self._loops = []
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        # What instances were doing (waiting for permits, polling) is redone from their snapshots on restart.
        running = set(self._instance_tasks)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def run(self, work: Coroutine[None, None, None]) -> asyncio.Task[None]:
        """Run an instance's mailbox or handler, held here until it ends (the loop holds tasks only weakly)."""
        task = asyncio.create_task(work)
        self._instance_tasks.add(task)
        task.add_done_callback(self._instance_tasks.discard)
        return task

    def _background(self, work: Coroutine[None, None, object]) -> None:
        """Fire-and-forget work (releases, container stops) that `stop()` still lets finish."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_background_failure)

    async def recover(self) -> int:
        """Resume every active instance of this shard from its snapshot (timestamps preserved)."""
        states = await self.placement.load(self._store)
        for state in states:
            actor = InstanceActor(state, self)
            self._actors[actor.key] = actor
            if state.data.execution_id:
                self._by_execution[state.data.execution_id] = actor.key
        await self.report_holders(restarted=True)
        for actor in list(self._actors.values()):
            actor.run_handlers()
            if actor.state.state in (State.SUBMITTED, State.RUNNING):
                self._background(actor.poll())
        return len(states)

    # -- commands -------------------------------------------------------------------------------------------

    async def trigger(self, instance: WorkflowInstance, trigger: Trigger, parameters: TriggerParameters) -> RunState:
        """Make the instance active (NEW -> QUEUED); AlreadyActive when it is."""
        key = instance.key()
        if key in self._actors:
            raise AlreadyActive(key)
        latest = await self._counter_loader.load(instance)
        if key in self._actors:
            raise AlreadyActive(key)
        actor = InstanceActor(new_instance_state(instance, latest, self.now_millis()), self)
        self._actors[key] = actor
        try:
            new_state = await actor.tell(TriggerExecution(trigger=trigger, parameters=parameters), insert=True)
        except NotActive:
            self._actors.pop(key, None)
            raise AlreadyActive(key) from None
        except BaseException:
            self._actors.pop(key, None)
            raise
        assert new_state is not None
        return new_state

    async def send(self, instance: WorkflowInstance, event: Event) -> RunState | None:
        """Deliver an event from outside (retry, halt, injected timeout); None when not active."""
        actor = self._actors.get(instance.key())
        if actor is None:
            return None
        try:
            return await actor.tell(event)
        except NotActive:
            return None

    def granted(self, holder: str, resource_ids: tuple[str, ...]) -> None:
        actor = self._actors.get(holder)
        if actor is not None and actor.state.state.consumes_resources:
            return  # a second grant of the permits it holds (one on its way, and its own repeated acquire)
        if actor is None or actor.granted(resource_ids) is None:
            self._background(self._resources.release(holder))

    async def report_holders(self, restarted: bool = False) -> None:
        """Tell the resource broker which permits this shard's instances hold, in one report (a restarted
        broker grants nothing until every host has reported), and queue the instances that waited at it
        again (after the broker restarted: its wait queue is gone). A shard that `restarted` reports all its
        permits: those its previous incarnation was releasing when it died are given back."""
        holders = {
            actor.key: list(actor.state.data.resource_ids)
            for actor in self._actors.values()
            if actor.state.state.consumes_resources and actor.state.data.resource_ids
        }
        self._broker_holders.update(holders)
        if restarted:
            self._inherited = set(self._actors)
            await self._resources.restore_holders(self.placement.name, holders, self.placement, list(self._inherited))
        else:
            await self._resources.restore_holders(self.placement.name, holders)
        self.requeue_waiters()

    def set_global_config(self, config: GlobalConfig) -> None:
        self._config = config
        self.requeue_waiters()

    def forget_workflow(self, workflow_id: WorkflowId) -> None:
        """Drop the cached configuration of a changed or deleted workflow."""
        self._workflows.pop(workflow_id.key(), None)
        self.requeue_waiters(workflow_id)

    def requeue_waiters(self, workflow_id: WorkflowId | None = None) -> None:
        """Instances queued at the broker ask again (all, or one workflow's): what they wait for may have
        changed (a workflow's resources, a deleted resource, the global limit or enabled flag)."""
        for actor in list(self._actors.values()):
            state = actor.state
            if state.state is State.QUEUED and actor.key in self._broker_holders:
                if workflow_id is None or state.workflow_instance.workflow_id == workflow_id:
                    self._broker_holders.discard(actor.key)  # so that it asks (acquire is idempotent)
                    actor.run_handlers()

    def stats(self) -> dict[str, int]:
        """Totals since this shard started: `transition:<event>` and `trigger:<type>` counts."""
        return dict(self._counts)

    def active_count(self) -> int:
        return len(self._actors)

    def state_of(self, instance: WorkflowInstance) -> RunState | None:
        actor = self._actors.get(instance.key())
        return actor.state if actor else None

    # -- periodic work --------------------------------------------------------------------------------------

    def fire_due_timers(self) -> None:
        now = self.now_millis()
        while self._timers and self._timers[0].at_millis <= now:
            timer = heapq.heappop(self._timers)
            actor = self._actors.get(timer.key)
            if actor is not None:
                actor.timer_fired(timer.kind, timer.counter)

    async def reconcile(self) -> None:
        """Styx's state-manager tick: re-run handlers and poll executions, so nothing is ever stranded."""
        now = self.now_millis()
        for actor in list(self._actors.values()):
            if not actor.active:
                continue
            if actor.state.state in (State.SUBMITTED, State.RUNNING):
                try:
                    await actor.poll()
                except RunnerError as exc:  # the engine is away: the other instances still get their turn
                    log.warning("polling the execution of %s failed: %s", actor.key, exc)
            elif actor.state.state is not State.QUEUED or (actor.state.retry_due_millis() or now) <= now:
                # A QUEUED instance in its retry delay waits for its `dequeue` timer; once the delay is over it
                # asks here again if the timer's request failed (store or broker away). One already queued at
                # the broker does not ask again (queued_at_broker).
                actor.run_handlers()

    # -- InstanceHost -------------------------------------------------------------------------------------

    def now_millis(self) -> int:
        return to_millis(self._clock.now())

    async def persist(self, state: RunState, event_json: str, insert: bool) -> bool:
        transition = Transition(state=state, event_json=event_json, insert=insert)
        try:
            return await self._committer.commit(transition)
        except StoreError:
            log.warning("commit of %s failed; retrying with backoff", transition.instance.key())
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(StoreError),
            wait=wait_exponential(multiplier=0.05, max=5),
            reraise=True,
        ):
            with attempt:
                return await self._committer.commit(transition)
        raise AssertionError("unreachable")

    def after_transition(self, actor: InstanceActor, old: RunState, new: RunState, event: Event) -> None:
        """The after-commit listeners (the state machine itself does no I/O), in this order: the finished
        notice last, once the instance is no longer hosted."""
        self._count_transition(event)
        self._release_on_leaving(actor, old, new, event)
        self._route_executions(actor, old, new)
        self._stop_abandoned_container(old, new)
        if new.state.is_terminal:
            self._finish(actor, new)

    def _count_transition(self, event: Event) -> None:
        """Metrics: transitions by event, triggers by type."""
        self._counts[f"transition:{event.name}"] += 1
        if isinstance(event, TriggerExecution):
            self._counts[f"trigger:{event.trigger.type.value}"] += 1

    def _release_on_leaving(self, actor: InstanceActor, old: RunState, new: RunState, event: Event) -> None:
        """Leaving a consuming state frees the permits; a retry or failure while queued leaves the wait queue."""
        leaves_queue = new.state is not State.QUEUED or isinstance(event, RetryAfter)
        if not new.state.consumes_resources and (old.state.consumes_resources or leaves_queue):
            self._release(actor.key)

    def _route_executions(self, actor: InstanceActor, old: RunState, new: RunState) -> None:
        """Keep the execution id -> instance map the runner's reports are routed by."""
        old_execution = old.data.execution_id
        if old_execution and old_execution != new.data.execution_id:
            self._by_execution.pop(old_execution, None)
        if new.data.execution_id and new.state in (State.SUBMITTING, State.SUBMITTED, State.RUNNING):
            self._by_execution[new.data.execution_id] = actor.key

    def _stop_abandoned_container(self, old: RunState, new: RunState) -> None:
        """Halted or timed out while running: the container must not keep running."""
        old_execution = old.data.execution_id
        if old.state in (State.SUBMITTING, State.SUBMITTED, State.RUNNING) and new.state in (State.FAILED, State.ERROR):
            if old_execution:
                self._background(self._runner.stop(old_execution))

    def _finish(self, actor: InstanceActor, new: RunState) -> None:
        """A terminal instance is no longer hosted; the scheduler hears of it (backfills, metrics)."""
        self._actors.pop(actor.key, None)
        if new.data.execution_id:
            self._by_execution.pop(new.data.execution_id, None)
        if self._on_finished is not None:
            self._on_finished(new.workflow_instance, new.data.trigger_id, new.state)

    def schedule(self, actor: InstanceActor, at_millis: int, kind: str) -> None:
        heapq.heappush(self._timers, _Timer(at_millis, next(self._timer_seq), actor.key, actor.state.counter, kind))
        if len(self._timers) > TIMER_COMPACTION_FACTOR * len(self._actors) + TIMER_COMPACTION_SLACK:
            # Every transition arms a new timeout, and the old ones lie in the heap until their (often days
            # away) deadline: drop those whose instance has moved on, so memory follows the live instances.
            # Reconcile ticks re-arm the same timer of an instance that has not moved: keep one of each, or
            # the heap of many parked instances grows each tick and is compacted on every schedule.
            live = {(t.key, t.kind, t.at_millis, t.counter): t for t in self._timers if self._is_live(t)}
            self._timers = list(live.values())
            heapq.heapify(self._timers)

    def _is_live(self, timer: _Timer) -> bool:
        actor = self._actors.get(timer.key)
        return actor is not None and actor.state.counter == timer.counter

    def global_enabled(self) -> bool:
        return self._config.enabled

    def requeue_delay_millis(self) -> int:
        low = int(self._settings.global_disabled_min_delay.total_seconds() * 1000)
        high = int(self._settings.global_disabled_max_delay.total_seconds() * 1000)
        return self.rng.randrange(low, max(high, low + 1))

    async def workflow(self, actor: InstanceActor, fresh: bool) -> tuple[Workflow, WorkflowState] | None:
        workflow_id = actor.state.workflow_instance.workflow_id
        key = workflow_id.key()
        entry = self._workflows.get(key)
        ttl = self._settings.workflow_cache_ttl.total_seconds()
        if fresh or entry is None or time.monotonic() - entry.loaded_at > ttl:
            found = await self._workflow_loader.load(workflow_id)
            entry = _WorkflowCacheEntry(found, time.monotonic())
            self._workflows[key] = entry
        return entry.found

    async def acquire(self, actor: InstanceActor, resource_ids: list[str]) -> AcquireResult:
        if not resource_ids and self._config.concurrency is None:
            return Granted(())  # nothing to count: a round trip to the broker per instance would only cost
        self._broker_holders.add(actor.key)
        instance = actor.state.workflow_instance
        try:
            result = await self._resources.acquire(
                actor.key, instance.workflow_id.key(), instance.parameter, resource_ids
            )
        except Exception:
            self._broker_holders.discard(actor.key)  # not queued there: it asks again on the next tick
            raise
        if isinstance(result, Missing):
            self._broker_holders.discard(actor.key)  # the broker forgot it
        return result

    def queued_at_broker(self, actor: InstanceActor) -> bool:
        """Asked for its permits and not answered with a grant yet: a release (or requeue_waiters) wakes it.
        Asking again every reconcile tick would cost 50,000 parked instances seconds of CPU per tick."""
        return actor.key in self._broker_holders and not actor.state.state.consumes_resources

    def release_permits(self, actor: InstanceActor) -> None:
        if not actor.state.state.consumes_resources:
            self._release(actor.key)

    def _release(self, holder: str) -> None:
        """Give back permits or leave the wait queue, when the broker knows of the instance at all."""
        if holder in self._broker_holders or holder in self._inherited:
            self._broker_holders.discard(holder)
            self._inherited.discard(holder)
            self._background(self._resources.release(holder))

    def terminal_decision(self, state: RunState, config: WorkflowConfiguration | None) -> Event | None:
        return self._retry_policy.on_terminal_state(state, config.retry_condition if config else None, self.rng)

    def timeout_deadline(self, state: RunState, config: WorkflowConfiguration | None) -> int:
        return self._timeouts.deadline_millis(state, config.running_timeout if config else None)

    def validation_limits(self) -> ValidationLimits:
        return self._validation_limits

    async def start_execution(self, actor: InstanceActor) -> None:
        await self._runner.start(actor.spec())

    async def execution_status(self, execution_id: str) -> ExecutionStatus:
        return await self._runner.status(execution_id)

    def runner_status(self, execution_id: str, status: ExecutionStatus) -> None:
        key = self._by_execution.get(execution_id)
        actor = self._actors.get(key) if key else None
        if actor is not None:
            actor.runner_status(execution_id, status)


def _log_background_failure(task: asyncio.Task[object]) -> None:
    # A stop that fails while the engine is away is not retried: the janitor removes the container later.
    if not task.cancelled() and task.exception() is not None:
        log.warning("background work failed: %s", task.exception())
