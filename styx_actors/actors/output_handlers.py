"""The output handlers: what an instance does in reaction to the state it has just entered
(docs/semantics.md#output-handlers).

Styx splits its RunState from the OutputHandlers that react to it (ExecutionDescriptionHandler,
DockerRunnerHandler, TerminationHandler, TimeoutHandler...). Here too: the transition function never does I/O,
and each handler below reacts to one state. A handler reads the state it was started for, talks to the host
(store, broker, runner), and answers with an event told *guarded* by that state's counter, so a result
computed for a state that has moved on meanwhile is dropped by the instance's mailbox.

`STATE_HANDLERS` says which handler a state runs (a handler returns the work it starts, or None when it has
nothing to do); `arm_timeout` runs for every state that is not terminal.
The instance actor (instance.py) runs them after each transition, on recovery and on reconcile ticks, and
makes sure an instance runs at most one state handler at a time for a given state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING

from styx_actors.actors.resources import Granted, Missing, Waiting, limit_reached_message, missing_resources_message
from styx_actors.events import Halt, Info, RetryAfter, RunError, Submitted
from styx_actors.execution import prepare_event
from styx_actors.model import Message, State
from styx_actors.runners.base import RunnerError

if TYPE_CHECKING:
    from styx_actors.actors.instance import InstanceActor

log = logging.getLogger(__name__)

StateHandler = Callable[["InstanceActor"], Coroutine[None, None, None] | None]  # the work to run, if any


def wait_then_request_resources(instance: InstanceActor) -> Coroutine[None, None, None] | None:
    """QUEUED: wait out the retry delay (a `dequeue` timer), then ask the broker for the workflow's permits.
    An instance already waiting at the broker does not ask again: a release wakes it. Decided at once, so
    that reconcile ticks over many parked instances start no work for them; the request, if any, is returned
    to be run."""
    state = instance.state
    host = instance.host
    if (due := state.retry_due_millis()) is not None and due > host.now_millis():
        host.schedule(instance, due, "dequeue")
        return None
    if host.queued_at_broker(instance):
        return None
    return request_resources(instance)


async def request_resources(instance: InstanceActor) -> None:
    """Ask the broker for the permits of the workflow's resources (also run when the `dequeue` timer fires).
    A grant moves the instance on (InstanceActor.granted); a missing resource is a runError; a depleted one
    is said once in the instance's messages while it waits."""
    state = instance.state
    host = instance.host
    if state.state is not State.QUEUED:
        return
    if not host.global_enabled():
        await instance.answer(RetryAfter(host.requeue_delay_millis()), state.counter)
        return
    found = await host.workflow(instance, fresh=False)
    resource_ids = list(found[0].configuration.resources) if found else []
    result = await host.acquire(instance, resource_ids)
    if isinstance(result, Granted):
        # granted() checks the state again: something may have happened meanwhile.
        dequeued = instance.granted(result.resource_ids)
        if dequeued is None:
            host.release_permits(instance)
        else:
            with contextlib.suppress(Exception):  # in flight until committed, like answer(); _dequeue_done cleans up
                await dequeued
        return
    if state.counter != instance.state.counter:
        return  # something happened meanwhile
    if isinstance(result, Missing):
        await instance.answer(RunError(missing_resources_message(result.resource_ids)), state.counter)
    elif isinstance(result, Waiting):
        line = limit_reached_message(result.depleted)
        last = state.data.last_message()
        if last is None or last.line != line:
            await instance.answer(Info(Message.info(line)), state.counter)


async def describe_execution(instance: InstanceActor) -> None:
    """PREPARE (Styx's ExecutionDescriptionHandler): read the workflow afresh and describe the execution to
    submit, or say why it cannot run (execution.py)."""
    state = instance.state
    host = instance.host
    found = await host.workflow(instance, fresh=True)
    event, reason = prepare_event(state, found, host.validation_limits())
    if reason:
        log.info(reason)
    await instance.answer(event, state.counter)


async def start_execution(instance: InstanceActor) -> None:
    """SUBMITTING (Styx's DockerRunnerHandler): start the described execution on the runner."""
    state = instance.state
    host = instance.host
    data = state.data
    if data.execution_id is None or data.execution_description is None:
        await instance.answer(Halt(), state.counter)
        return
    try:
        await host.start_execution(instance)
    except RunnerError as exc:
        await instance.answer(RunError(str(exc)), state.counter)
        return
    await instance.answer(Submitted(execution_id=data.execution_id, runner_id=host.runner_id), state.counter)


async def poll_execution(instance: InstanceActor) -> None:
    """SUBMITTED and RUNNING: ask the runner how the execution is doing. Run on entering SUBMITTED because
    the runner may have reported before `submitted` was persisted (the noop runner always does)."""
    state = instance.state
    execution_id = state.data.execution_id
    if state.state in (State.SUBMITTED, State.RUNNING) and execution_id is not None:
        instance.runner_status(execution_id, await instance.host.execution_status(execution_id))


async def decide_after_termination(instance: InstanceActor) -> None:
    """TERMINATED and FAILED (Styx's TerminationHandler): success, a retry or a stop, by the retry policy."""
    state = instance.state
    host = instance.host
    found = await host.workflow(instance, fresh=False)  # cached: a success costs no store read
    event = host.terminal_decision(state, found[0].configuration if found else None)
    if event is not None:
        await instance.answer(event, state.counter)


STATE_HANDLERS: Mapping[State, StateHandler] = {
    State.QUEUED: wait_then_request_resources,
    State.PREPARE: describe_execution,
    State.SUBMITTING: start_execution,
    State.SUBMITTED: poll_execution,
    State.TERMINATED: decide_after_termination,
    State.FAILED: decide_after_termination,
}


def arm_timeout(instance: InstanceActor) -> Coroutine[None, None, None] | None:
    """Every state (Styx's TimeoutHandler): a `timeout` timer at the state's deadline. RUNNING's deadline
    depends on the workflow's running timeout, which takes a read: that work is returned to be run."""
    state = instance.state
    if state.state is State.RUNNING:
        return _arm_running_timeout(instance)
    instance.host.schedule(instance, instance.host.timeout_deadline(state, None), "timeout")
    return None


async def _arm_running_timeout(instance: InstanceActor) -> None:
    state = instance.state
    host = instance.host
    found = await host.workflow(instance, fresh=False)
    config = found[0].configuration if found else None
    if state.counter == instance.state.counter and instance.active:
        host.schedule(instance, host.timeout_deadline(state, config), "timeout")
