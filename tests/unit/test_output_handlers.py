"""Each output handler on its own (styx_actors/actors/output_handlers.py): an InstanceActor in the state the
handler reacts to, a host whose answers the test sets, and the events the handler tells, each with the counter
it guards on. Nothing is committed and no other handler runs: `Recorded.tell` keeps what it is told.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field

import pytest

from styx_actors.actors.instance import InstanceActor
from styx_actors.actors.output_handlers import (
    STATE_HANDLERS,
    arm_timeout,
    decide_after_termination,
    describe_execution,
    poll_execution,
    request_resources,
    start_execution,
    wait_then_request_resources,
)
from styx_actors.actors.resources import AcquireResult, Granted, Missing, Waiting
from styx_actors.events import (
    Dequeue,
    Event,
    Halt,
    Info,
    Retry,
    RetryAfter,
    RunError,
    Started,
    Submit,
    Submitted,
    Terminate,
    TriggerExecution,
)
from styx_actors.execution import execution_description
from styx_actors.model import (
    Message,
    RunState,
    State,
    Trigger,
    TriggerParameters,
    Workflow,
    WorkflowConfiguration,
    WorkflowInstance,
    WorkflowState,
)
from styx_actors.runners.base import ExecutionStatus, Exited, RunnerError, Running
from styx_actors.state_machine import new_instance_state, transition
from styx_actors.validation import ValidationLimits

NOW = 1_460_000_000_000
INSTANCE = WorkflowInstance.of("unit", "hourly", "2016-04-04T12")


def workflow(**configuration: object) -> Workflow:
    return Workflow.create(
        "unit",
        WorkflowConfiguration.model_validate(
            {"id": "hourly", "schedule": "hours", "docker_image": "busybox:1", **configuration}
        ),
    )


WORKFLOW = workflow()
FOUND = (WORKFLOW, WorkflowState(enabled=True))
EXECUTION = "styx-run-1"


def state_after(*events: Event, at: int = NOW) -> RunState:
    """The instance's state after `events`, from a fresh trigger."""
    state = transition(
        new_instance_state(INSTANCE, -1, at), TriggerExecution(Trigger.adhoc("adhoc-1"), TriggerParameters()), at
    )
    for event in events:
        state = transition(state, event, at)
    return state


def submitting() -> RunState:
    return state_after(Dequeue(()), describe(WORKFLOW))


def describe(described: Workflow) -> Submit:
    return Submit(execution_description(described, state_after(Dequeue(()))), EXECUTION)


@dataclass
class ScriptedHost:
    """An InstanceHost whose answers the test sets, recording what the handlers asked of it."""

    rng: random.Random = field(default_factory=lambda: random.Random(1))
    runner_id: str = "default"
    environment: str = "unit"
    now: int = NOW
    enabled: bool = True
    found: tuple[Workflow, WorkflowState] | None = FOUND
    acquired: AcquireResult = field(default_factory=lambda: Granted(()))
    at_broker: bool = False
    decision: Event | None = None
    start_error: str | None = None
    status: ExecutionStatus = field(default_factory=Running)
    scheduled: list[tuple[int, str]] = field(default_factory=list)
    workflow_reads: list[bool] = field(default_factory=list)  # `fresh` of each read
    acquires: list[list[str]] = field(default_factory=list)
    releases: int = 0
    started: list[str] = field(default_factory=list)
    before_answer: list[Event] = field(default_factory=list)  # told to the instance while a call is under way
    instance: Recorded | None = None

    def now_millis(self) -> int:
        return self.now

    def run(self, work: Coroutine[None, None, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(work)

    async def persist(self, state: RunState, event_json: str, insert: bool) -> bool:
        raise AssertionError("handlers tell events; they never commit")

    def after_transition(self, actor: InstanceActor, old: RunState, new: RunState, event: Event) -> None:
        raise AssertionError("no transition happens in these tests")

    def schedule(self, actor: InstanceActor, at_millis: int, kind: str) -> None:
        self.scheduled.append((at_millis, kind))

    def global_enabled(self) -> bool:
        return self.enabled

    def requeue_delay_millis(self) -> int:
        return 30_000

    async def workflow(self, actor: InstanceActor, fresh: bool) -> tuple[Workflow, WorkflowState] | None:
        self.workflow_reads.append(fresh)
        self._meanwhile()
        return self.found

    async def acquire(self, actor: InstanceActor, resource_ids: list[str]) -> AcquireResult:
        self.acquires.append(resource_ids)
        self._meanwhile()
        return self.acquired

    def queued_at_broker(self, actor: InstanceActor) -> bool:
        return self.at_broker

    def release_permits(self, actor: InstanceActor) -> None:
        self.releases += 1

    def terminal_decision(self, state: RunState, config: WorkflowConfiguration | None) -> Event | None:
        return self.decision

    def timeout_deadline(self, state: RunState, config: WorkflowConfiguration | None) -> int:
        running_timeout = config.running_timeout if config and config.running_timeout else None
        return state.timestamp + (int(running_timeout.total_seconds() * 1000) if running_timeout else 1_000)

    def validation_limits(self) -> ValidationLimits:
        return ValidationLimits()

    async def start_execution(self, actor: InstanceActor) -> None:
        if self.start_error is not None:
            raise RunnerError(self.start_error)
        self.started.append(actor.state.data.execution_id or "")

    async def execution_status(self, execution_id: str) -> ExecutionStatus:
        return self.status

    def _meanwhile(self) -> None:
        """Another event reaches the instance while the handler waits for this answer."""
        if self.before_answer and self.instance is not None:
            self.instance.state = transition(self.instance.state, self.before_answer.pop(0), self.now)


class Recorded(InstanceActor):
    """An InstanceActor that keeps what it is told, with the counter it is guarded by, instead of queueing it;
    each event counts as processed at once (its reply is the current state)."""

    def __init__(self, state: RunState, host: ScriptedHost) -> None:
        super().__init__(state, host)
        host.instance = self
        self.told: list[tuple[Event, int | None]] = []

    def tell(
        self, event: Event, expected_counter: int | None = None, insert: bool = False
    ) -> asyncio.Future[RunState | None]:
        self.told.append((event, expected_counter))
        reply: asyncio.Future[RunState | None] = asyncio.get_running_loop().create_future()
        reply.set_result(self.state)
        return reply


# -- QUEUED ---------------------------------------------------------------------------------------------------


async def test_a_queued_instance_waits_out_its_retry_delay_on_a_dequeue_timer() -> None:
    host = ScriptedHost()
    queued = state_after(RetryAfter(60_000), at=NOW - 10_000)  # a retry due 50 s from now
    actor = Recorded(queued, host)

    assert wait_then_request_resources(actor) is None
    assert host.scheduled == [(NOW + 50_000, "dequeue")]
    assert (host.acquires, actor.told) == ([], [])


async def test_a_queued_instance_already_waiting_at_the_broker_does_not_ask_again() -> None:
    host = ScriptedHost(at_broker=True)
    actor = Recorded(state_after(), host)

    assert wait_then_request_resources(actor) is None  # no work started: parked instances cost a tick nothing
    assert (host.acquires, host.scheduled, actor.told) == ([], [], [])


async def test_a_granted_instance_is_dequeued_with_its_permits() -> None:
    host = ScriptedHost(found=(workflow(resources=["r1"]), FOUND[1]))
    host.acquired = Granted(("r1",))
    queued = state_after()
    actor = Recorded(queued, host)

    request = wait_then_request_resources(actor)
    assert request is not None
    await request

    assert host.acquires == [["r1"]]
    assert actor.told == [(Dequeue(("r1",)), queued.counter)]
    assert host.releases == 0


async def test_permits_granted_after_the_instance_moved_on_are_given_back() -> None:
    host = ScriptedHost(before_answer=[Halt()])  # halted while the broker was being asked
    actor = Recorded(state_after(), host)

    await request_resources(actor)

    assert (actor.told, host.releases) == ([], 1)


async def test_with_the_scheduler_disabled_a_queued_instance_retries_after_the_requeue_delay() -> None:
    host = ScriptedHost(enabled=False)
    queued = state_after()
    actor = Recorded(queued, host)

    await request_resources(actor)

    assert actor.told == [(RetryAfter(30_000), queued.counter)]
    assert host.acquires == []


async def test_a_missing_resource_is_a_run_error_naming_it() -> None:
    host = ScriptedHost(acquired=Missing(("gpu", "cpu")))
    queued = state_after()
    actor = Recorded(queued, host)

    await request_resources(actor)

    assert actor.told == [(RunError("Referenced resources not found: [cpu, gpu]"), queued.counter)]


async def test_a_depleted_resource_is_said_once_while_the_instance_waits() -> None:
    host = ScriptedHost(acquired=Waiting(("r1",)))
    queued = state_after()
    actor = Recorded(queued, host)

    await request_resources(actor)
    said = Info(Message.info("Resource limit reached for: [r1]"))
    assert actor.told == [(said, queued.counter)]

    again = Recorded(transition(queued, said, NOW), host)
    await request_resources(again)
    assert again.told == []


async def test_an_answer_for_a_state_that_moved_on_is_dropped() -> None:
    host = ScriptedHost(acquired=Missing(("r1",)), before_answer=[Info(Message.info("meanwhile"))])
    actor = Recorded(state_after(), host)

    await request_resources(actor)

    assert actor.told == []


# -- PREPARE, SUBMITTING, SUBMITTED ---------------------------------------------------------------------------


async def test_prepare_reads_the_workflow_afresh_and_describes_the_execution() -> None:
    host = ScriptedHost()
    prepare = state_after(Dequeue(()))
    actor = Recorded(prepare, host)

    await describe_execution(actor)

    [(event, counter)] = actor.told
    assert isinstance(event, Submit) and counter == prepare.counter
    assert event.execution_description.docker_image == "busybox:1"
    assert event.execution_id.startswith("styx-run-")
    assert host.workflow_reads == [True]


async def test_prepare_halts_an_instance_whose_workflow_is_gone() -> None:
    host = ScriptedHost(found=None)
    prepare = state_after(Dequeue(()))
    actor = Recorded(prepare, host)

    await describe_execution(actor)

    assert actor.told == [(Halt(), prepare.counter)]


async def test_submitting_starts_the_execution_and_reports_it_submitted() -> None:
    host = ScriptedHost(runner_id="node-2")
    state = submitting()
    actor = Recorded(state, host)

    await start_execution(actor)

    assert host.started == [EXECUTION]
    assert actor.told == [(Submitted(EXECUTION, "node-2"), state.counter)]


async def test_a_runner_that_cannot_start_the_execution_is_a_run_error_with_its_message() -> None:
    host = ScriptedHost(start_error="image busybox:1 not found")
    state = submitting()
    actor = Recorded(state, host)

    await start_execution(actor)

    assert actor.told == [(RunError("image busybox:1 not found"), state.counter)]


async def test_a_submitted_instance_learns_from_the_runner_under_consecutive_counters() -> None:
    host = ScriptedHost(status=Exited(3))
    submitted = transition(submitting(), Submitted(EXECUTION, "default"), NOW)
    actor = Recorded(submitted, host)

    await poll_execution(actor)

    assert actor.told == [(Started(), submitted.counter), (Terminate(3), submitted.counter + 1)]


# -- TERMINATED, FAILED ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", [Retry(), RetryAfter(60_000), None], ids=["retry", "retry-after", "none"])
async def test_termination_tells_what_the_retry_policy_decides(decision: Event | None) -> None:
    host = ScriptedHost(decision=decision)
    terminated = state_after(Dequeue(()), describe(WORKFLOW), Submitted(EXECUTION, "default"), Started(), Terminate(1))
    actor = Recorded(terminated, host)

    await decide_after_termination(actor)

    assert actor.told == ([] if decision is None else [(decision, terminated.counter)])
    assert host.workflow_reads == [False]  # the cached workflow: a success costs no store read


# -- timeouts and the table -----------------------------------------------------------------------------------


async def test_a_state_other_than_running_arms_its_timeout_without_a_read() -> None:
    host = ScriptedHost()
    queued = state_after()

    assert arm_timeout(Recorded(queued, host)) is None
    assert host.scheduled == [(queued.timestamp + 1_000, "timeout")]
    assert host.workflow_reads == []


async def test_running_arms_the_workflows_running_timeout_unless_the_state_moved_on() -> None:
    long_running = workflow(running_timeout="PT2H")
    running = transition(transition(submitting(), Submitted(EXECUTION, "default"), NOW), Started(), NOW)

    host = ScriptedHost(found=(long_running, FOUND[1]))
    arming = arm_timeout(Recorded(running, host))
    assert arming is not None
    await arming
    assert host.scheduled == [(running.timestamp + 2 * 3_600_000, "timeout")]

    moved_on = ScriptedHost(before_answer=[Terminate(0)])
    arming = arm_timeout(Recorded(running, moved_on))
    assert arming is not None
    await arming
    assert moved_on.scheduled == []


def test_every_state_with_work_to_do_has_its_handler_and_the_others_wait() -> None:
    assert set(STATE_HANDLERS) == {
        State.QUEUED,
        State.PREPARE,
        State.SUBMITTING,
        State.SUBMITTED,
        State.TERMINATED,
        State.FAILED,
    }
    # RUNNING waits for the runner's report (or its timeout); NEW is never hosted; the rest are terminal.
    assert all(state.is_terminal for state in set(State) - set(STATE_HANDLERS) - {State.RUNNING, State.NEW})
