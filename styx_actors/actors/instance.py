"""The workflow instance actor: one per active instance, owning its RunState.

It handles its events one at a time from its own mailbox: apply the pure transition, persist snapshot +
event (group commit), and only then run the output handlers (output_handlers.py). Handler results come back to the same
mailbox as events guarded by the counter they were computed for, so a stale result is dropped
(docs/semantics.md#output-handlers). The mailbox is drained by a task that exists only while messages are
pending, so an idle instance costs a few objects, not a coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Protocol

from styx_actors.actors.output_handlers import STATE_HANDLERS, arm_timeout, poll_execution, request_resources
from styx_actors.actors.resources import AcquireResult
from styx_actors.events import Dequeue, Event, Timeout, event_to_json_text
from styx_actors.model import RunState, State, Workflow, WorkflowConfiguration, WorkflowState
from styx_actors.runners.base import ExecutionStatus, RunSpec, build_run_spec, progress_events
from styx_actors.state_machine import transition
from styx_actors.validation import ValidationLimits

log = logging.getLogger(__name__)


class NotActive(Exception):
    """The instance finished (or was never active here); events for it are ignored, as in Styx."""


class InstanceHost(Protocol):
    """What an instance actor needs from the shard that hosts it."""

    rng: random.Random
    runner_id: str
    environment: str

    def now_millis(self) -> int: ...
    def run(self, work: Coroutine[None, None, None]) -> asyncio.Task[None]: ...
    async def persist(self, state: RunState, event_json: str, insert: bool) -> bool: ...
    def after_transition(self, actor: InstanceActor, old: RunState, new: RunState, event: Event) -> None: ...
    def schedule(self, actor: InstanceActor, at_millis: int, kind: str) -> None: ...
    def global_enabled(self) -> bool: ...
    def requeue_delay_millis(self) -> int: ...
    async def workflow(self, actor: InstanceActor, fresh: bool) -> tuple[Workflow, WorkflowState] | None: ...
    async def acquire(self, actor: InstanceActor, resource_ids: list[str]) -> AcquireResult: ...
    def queued_at_broker(self, actor: InstanceActor) -> bool: ...
    def release_permits(self, actor: InstanceActor) -> None: ...
    def terminal_decision(self, state: RunState, config: WorkflowConfiguration | None) -> Event | None: ...
    def timeout_deadline(self, state: RunState, config: WorkflowConfiguration | None) -> int: ...
    def validation_limits(self) -> ValidationLimits: ...
    async def start_execution(self, actor: InstanceActor) -> None: ...
    async def execution_status(self, execution_id: str) -> ExecutionStatus: ...


@dataclass(slots=True)
class _Envelope:
    event: Event
    expected_counter: int | None
    insert: bool
    reply: asyncio.Future[RunState | None]


class InstanceActor:
    def __init__(self, state: RunState, host: InstanceHost) -> None:
        self.state = state
        self.key = state.workflow_instance.key()
        self._host = host
        self._mailbox: deque[_Envelope] = deque()
        self._draining = False
        self._inflight_counter: int | None = None  # the state a handler is working on right now
        self.active = True

    # -- mailbox --------------------------------------------------------------------------------------------

    def tell(
        self, event: Event, expected_counter: int | None = None, insert: bool = False
    ) -> asyncio.Future[RunState | None]:
        """Queue an event; the future resolves with the new state, None if it was stale, or raises
        IllegalTransition / NotActive."""
        reply: asyncio.Future[RunState | None] = asyncio.get_running_loop().create_future()
        reply.add_done_callback(_consume_exception)
        self._mailbox.append(_Envelope(event, expected_counter, insert, reply))
        if not self._draining:
            self._draining = True
            self._host.run(self._drain())
        return reply

    def tell_guarded(self, event: Event, counter: int) -> None:
        """A follow-up event (a timer, the runner's progress), only valid if nothing happened since `counter`."""
        self.tell(event, expected_counter=counter)

    async def answer(self, event: Event, counter: int) -> None:
        """A handler's result, guarded like `tell_guarded`. The handler stays in flight until the mailbox has
        processed it (committed, or dropped as stale): under a commit backlog, reconcile ticks would otherwise
        run the handler again for every instance whose answer is still waiting, and the work would grow with
        the backlog (docs/performance.md#toward-100000)."""
        with contextlib.suppress(Exception):  # refused (illegal, no longer active): told to nobody, as before
            await self.tell(event, expected_counter=counter)

    async def _drain(self) -> None:
        try:
            while self._mailbox:
                envelope = self._mailbox.popleft()
                try:
                    envelope.reply.set_result(await self._process(envelope))
                except Exception as exc:  # noqa: BLE001 - reported to whoever sent the event
                    envelope.reply.set_exception(exc)
        finally:
            self._draining = False

    async def _process(self, envelope: _Envelope) -> RunState | None:
        if not self.active:
            raise NotActive(self.key)
        if envelope.expected_counter is not None and envelope.expected_counter != self.state.counter:
            return None  # stale handler result
        old = self.state
        new = transition(old, envelope.event, self._host.now_millis())
        written = await self._host.persist(
            new, event_to_json_text(envelope.event, old.workflow_instance), envelope.insert
        )
        if not written:
            # The store holds a newer state than ours: another writer owns this instance now.
            log.warning("instance %s: transition to %s refused by the store, deactivating", self.key, new.state.value)
            self.active = False
            raise NotActive(self.key)
        self.state = new
        if new.state.is_terminal:
            self.active = False
        self._host.after_transition(self, old, new, envelope.event)
        if self.active:
            self.run_handlers()
        return new

    # -- output handlers (output_handlers.py) --------------------------------------------------------------

    @property
    def host(self) -> InstanceHost:
        return self._host

    def run_handlers(self) -> None:
        """React to the current state (after a transition, on recovery and on reconcile ticks)."""
        handler = STATE_HANDLERS.get(self.state.state)
        work = handler(self) if handler is not None else None
        if work is not None:
            self._spawn(work)
        arming = arm_timeout(self)
        if arming is not None:
            self._spawn(arming, exclusive=False)

    def _spawn(self, work: Coroutine[None, None, None], exclusive: bool = True) -> None:
        """Run a handler; an exclusive one runs at most once at a time per state (reconcile ticks re-run
        handlers, and must not duplicate one that is still working on the same state)."""
        counter = self.state.counter
        if exclusive and self._inflight_counter == counter:
            work.close()
            return
        task = self._host.run(work)
        task.add_done_callback(_log_failure)
        if exclusive:
            self._inflight_counter = counter
            task.add_done_callback(lambda _: self._handler_done(counter))

    def _handler_done(self, counter: int) -> None:
        if self._inflight_counter == counter:
            self._inflight_counter = None

    def timer_fired(self, kind: str, counter: int) -> None:
        if not self.active or counter != self.state.counter:
            return
        if kind == "timeout":
            self.tell_guarded(Timeout(), counter)
        elif kind == "dequeue":
            self._spawn(request_resources(self))

    def granted(self, resource_ids: tuple[str, ...]) -> asyncio.Future[RunState | None] | None:
        """The resource broker gave this instance its permits: move on to PREPARE. Returns the dequeue's
        reply, or None when the instance no longer wants them (finished, or waiting out a retry delay), so
        the host gives them back."""
        state = self.state
        if not self.active or state.state is not State.QUEUED:
            return None
        if (due := state.retry_due_millis()) is not None and due > self._host.now_millis():
            return None
        dequeued = self.tell(Dequeue(resource_ids=resource_ids), expected_counter=state.counter)
        dequeued.add_done_callback(lambda reply: self._dequeue_done(reply, resource_ids))
        return dequeued

    def _dequeue_done(self, reply: asyncio.Future[RunState | None], resource_ids: tuple[str, ...]) -> None:
        """A dequeue that did not happen (stale, illegal) must not keep its permits."""
        if reply.cancelled() or reply.exception() is not None or reply.result() is None:
            self._host.release_permits(self)

    # -- runner progress ------------------------------------------------------------------------------------

    def runner_status(self, execution_id: str, status: ExecutionStatus) -> None:
        """Translate what the runner saw into events, guarded by consecutive counters (docs/runner.md#progress)."""
        state = self.state
        if not self.active or state.data.execution_id != execution_id:
            return
        if state.state not in (State.SUBMITTED, State.RUNNING, State.PREPARE):
            return
        for offset, event in enumerate(progress_events(state.state, status)):
            self.tell_guarded(event, state.counter + offset)

    async def poll(self) -> None:
        await poll_execution(self)

    def spec(self) -> RunSpec:
        return build_run_spec(self.state, self._host.environment)


def _consume_exception(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("instance handler failed", exc_info=task.exception())
