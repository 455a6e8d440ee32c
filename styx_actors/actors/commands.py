"""The command facade: what the front end may ask of the actor system (docs/semantics.md, docs/api.md).

Every write that changes what the actors must do goes through here, so the store and the actors never
disagree: the record is written first, then the actors concerned are told. Reads go to the store directly.
Refusals raise CommandError subclasses carrying Styx's messages; nothing is written when a command is refused.
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from styx_actors.actors.batching import BatchLoader
from styx_actors.actors.interfaces import BrokerPort, LogReader, SchedulerPort
from styx_actors.actors.ports import InstanceRouter
from styx_actors.clock import Clock
from styx_actors.errors import BadRequest, Conflict, NotFound
from styx_actors.events import Event, Halt, RetryAfter, Submit, event_from_json
from styx_actors.model import (
    Backfill,
    BackfillInput,
    EditableBackfillInput,
    GlobalConfig,
    Resource,
    RunState,
    Trigger,
    TriggerParameters,
    TriggerRequest,
    TriggerResponse,
    Workflow,
    WorkflowConfiguration,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
    WorkflowStatePatch,
)
from styx_actors.runners.base import DEFAULT_LOG_TAIL_BYTES, RunnerError, text_tail
from styx_actors.schedule import (
    ParameterError,
    Schedule,
    effective_offset,
    initial_natural_trigger,
    parse_aligned_instant,
    to_parameter,
)
from styx_actors.state_machine import IllegalTransition
from styx_actors.store.base import Store
from styx_actors.timeutil import to_millis
from styx_actors.validation import (
    ValidationLimits,
    deployment_errors,
    format_errors_bracketed,
    format_errors_plain,
    workflow_errors,
)


class LogSource(enum.Enum):
    CONTAINER = "container"  # read from the execution's container, which still exists (it may be running)
    STORE = "store"  # what the store kept of it when its container was removed


@dataclass(frozen=True)
class ExecutionLogs:
    """The end of one execution's output, and where it was read."""

    execution_id: str
    logs: str
    source: LogSource


def random_id(prefix: str, now_millis: int, rng: random.Random) -> str:
    """Styx's `<prefix>-<13-digit epoch ms>-<5-digit random>` ids (ad-hoc triggers, backfills)."""
    return f"{prefix}-{now_millis:013d}-{rng.randrange(100_000):05d}"


class Commands:
    def __init__(
        self,
        store: Store,
        router: InstanceRouter,
        scheduler: SchedulerPort,
        resources: BrokerPort,
        clock: Clock,
        validation_limits: ValidationLimits,
        rng: random.Random | None = None,
        runners: list[LogReader] | None = None,
    ) -> None:
        self._store = store
        self._runners = runners or []
        self._router = router
        self._scheduler = scheduler
        self._resources = resources
        self._clock = clock
        self._validation_limits = validation_limits
        self._rng = rng or random.Random()
        # Triggers arriving together (a burst of API calls, a script) read their workflows in one round trip.
        self._workflow_loader = BatchLoader(store.get_workflows)

    # -- workflows ------------------------------------------------------------------------------------------

    async def load_workflow(self, workflow_id: WorkflowId) -> tuple[Workflow, WorkflowState] | None:
        """The workflow and its state; reads requested together share one store round trip."""
        return await self._workflow_loader.load(workflow_id)

    async def save_workflow(self, component_id: str, config: WorkflowConfiguration) -> Workflow:
        """Create or update (docs/semantics.md#workflows): the next natural trigger is recomputed for a new
        workflow or a changed schedule/offset; the enabled flag of an existing workflow is kept."""
        now = self._clock.now()
        workflow = Workflow.create(component_id, config.model_copy(update={"deployment_time": now}))
        errors = deployment_errors(workflow, self._validation_limits)
        if errors:
            raise BadRequest(format_errors_bracketed(errors))
        existing = await self._store.get_workflow(workflow.id)
        if existing is None or _timing_changed(existing[0].configuration, workflow.configuration):
            schedule = Schedule.parse(config.schedule)
            try:
                logical, fire = initial_natural_trigger(schedule, effective_offset(schedule, config.offset), now)
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
            enabled = existing[1].enabled if existing else False
            state = WorkflowState(enabled=enabled, next_natural_trigger=logical, next_natural_offset_trigger=fire)
        else:
            state = existing[1]
        await self._store.put_workflow(workflow, state)
        await self._workflow_changed(workflow.id, state)
        return workflow

    async def delete_workflow(self, workflow_id: WorkflowId) -> None:
        if not await self._store.delete_workflow(workflow_id):
            raise NotFound("Workflow does not exist")
        await self._scheduler.workflow_deleted(workflow_id)
        await self._router.broadcast(lambda host: host.forget_workflow(workflow_id))

    async def patch_workflow_state(self, workflow_id: WorkflowId, patch: WorkflowStatePatch) -> WorkflowState:
        if await self._store.get_workflow(workflow_id) is None:
            raise NotFound("workflow not found")
        state = await self._store.patch_workflow_state(workflow_id, patch)
        if state is None:
            raise NotFound(f"Workflow {workflow_id} not found")
        await self._workflow_changed(workflow_id, state)
        return state

    async def _workflow_changed(self, workflow_id: WorkflowId, state: WorkflowState) -> None:
        await self._scheduler.workflow_changed(workflow_id, state)
        await self._router.broadcast(lambda host: host.forget_workflow(workflow_id))

    # -- instances ------------------------------------------------------------------------------------------

    async def trigger(self, request: TriggerRequest, allow_future: bool = False) -> TriggerResponse:
        """Ad-hoc trigger (docs/semantics.md#triggers); works on disabled workflows."""
        found = await self.load_workflow(request.workflow_id)
        if found is None:
            raise BadRequest("The specified workflow is not found in the scheduler")
        workflow = found[0]
        if not workflow.configuration.has_execution_info():
            raise BadRequest("Workflow is missing execution configuration")
        errors = workflow_errors(workflow, self._validation_limits)
        if errors:
            raise BadRequest(format_errors_plain(errors))
        schedule = Schedule.parse(workflow.configuration.schedule)
        try:
            instant = parse_aligned_instant(request.parameter, schedule)
        except ParameterError as exc:
            raise BadRequest(str(exc)) from exc
        now = self._clock.now()
        if not allow_future and instant > now:
            raise BadRequest("Cannot trigger an instance of the future")
        trigger_id = random_id("ad-hoc-cli", to_millis(now), self._rng)
        instance = WorkflowInstance(workflow_id=request.workflow_id, parameter=to_parameter(schedule, instant))
        await self._router.trigger(
            instance, Trigger.adhoc(trigger_id), request.trigger_parameters or TriggerParameters()
        )
        return TriggerResponse(
            workflow_id=request.workflow_id,
            parameter=request.parameter,
            trigger_parameters=request.trigger_parameters,
            trigger_id=trigger_id,
        )

    async def retry(self, instance: WorkflowInstance, delay_millis: int = 0) -> RunState | None:
        return await self.send(instance, RetryAfter(delay_millis=delay_millis))

    async def halt(self, instance: WorkflowInstance) -> RunState | None:
        return await self.send(instance, Halt())

    async def send(self, instance: WorkflowInstance, event: Event) -> RunState | None:
        """Deliver an event to an active instance; a non-active instance is silently ignored (Styx)."""
        if await self._store.get_workflow(instance.workflow_id) is None:
            raise NotFound("workflow not found")
        try:
            return await self._router.send(instance, event)
        except IllegalTransition as exc:
            raise BadRequest(str(exc)) from exc

    async def logs(
        self, instance: WorkflowInstance, tail_bytes: int = DEFAULT_LOG_TAIL_BYTES, execution_id: str | None = None
    ) -> ExecutionLogs:
        """The last `tail_bytes` bytes of the output of one of the instance's executions (the latest when none
        is named): from its container while that exists, else what the store kept of it."""
        executions = await self._execution_ids(instance)
        if execution_id is None:
            if not executions:
                raise NotFound("Workflow instance has no execution")
            execution_id = executions[-1]
        elif execution_id not in executions and await self._store.execution_output(instance, execution_id) is None:
            raise NotFound(f"Workflow instance has no execution {execution_id}")
        for runner in self._runners:  # one per node; the container is on one of them
            try:
                logs = await runner.logs(execution_id, tail_bytes)  # positional: Ray ports forward those
            except RunnerError:
                continue
            return ExecutionLogs(execution_id, logs, LogSource.CONTAINER)
        kept = await self._store.execution_output(instance, execution_id)
        if kept is not None:
            return ExecutionLogs(execution_id, text_tail(kept.output.encode(), tail_bytes), LogSource.STORE)
        others = [summary.execution_id for summary in await self._store.execution_outputs(instance)]
        hint = f" (output is kept of: {', '.join(others)})" if others else ""
        gone = f"The container of execution {execution_id} no longer exists"
        raise NotFound(f"{gone} and none of its output is kept{hint}")

    async def _execution_ids(self, instance: WorkflowInstance) -> list[str]:
        """The instance's executions, oldest first, from its event log."""
        execution_ids: dict[str, None] = {}  # ordered, without repeats
        for stored in await self._store.events(instance):
            event, _ = event_from_json(stored.event_json)
            if isinstance(event, Submit) and event.execution_id:
                execution_ids[event.execution_id] = None
        return list(execution_ids)

    async def stats(self) -> dict[str, int]:
        """Transition and trigger totals summed over the instance hosts (metrics)."""
        totals: Counter[str] = Counter()
        for host_stats in await self._router.broadcast(lambda host: host.stats()):
            totals.update(host_stats or {})  # None: a dedicated instance's actor that is gone
        return dict(totals)

    # -- resources and global config ------------------------------------------------------------------------

    async def save_resource(self, resource: Resource) -> Resource:
        await self._store.put_resource(resource)
        await self._resources.set_limit(resource.id, resource.concurrency)
        return resource

    async def delete_resource(self, resource_id: str) -> None:
        await self._store.delete_resource(resource_id)
        await self._resources.remove(resource_id)
        await self._router.broadcast(lambda host: host.requeue_waiters())  # its waiters learn that it is gone

    async def set_global_config(self, config: GlobalConfig) -> GlobalConfig:
        await self._store.put_config(config)
        await self._resources.set_global_concurrency(config.concurrency)
        await self._router.broadcast(lambda host: host.set_global_config(config))
        return config

    # -- backfills ------------------------------------------------------------------------------------------

    async def create_backfill(self, request: BackfillInput, allow_future: bool = False) -> Backfill:
        """Validations in Styx's order (docs/semantics.md#backfills); the first failure wins."""
        workflow_id = WorkflowId(component_id=request.component, id=request.workflow)
        found = await self._store.get_workflow(workflow_id)
        if found is None:
            raise NotFound("workflow not found")
        workflow = found[0]
        if not workflow.configuration.has_execution_info():
            raise BadRequest("Workflow is missing docker image and flyte execution config")
        errors = workflow_errors(workflow, self._validation_limits)
        if errors:
            raise BadRequest(format_errors_plain(errors))
        if not request.start < request.end:
            raise BadRequest("start must be before end")
        schedule = Schedule.parse(workflow.configuration.schedule)
        if not schedule.is_aligned(request.start):
            raise BadRequest("start parameter not aligned with schedule")
        if not schedule.is_aligned(request.end):
            raise BadRequest("end parameter not aligned with schedule")
        now = self._clock.now()
        if not allow_future and (request.start > now or schedule.previous(request.end) > now):
            raise BadRequest("Cannot backfill future partitions")
        partitions = schedule.range(request.start, request.end)
        active = {
            s.workflow_instance.parameter
            for s in await self._store.active_states(workflow_id.component_id, workflow_id.id)
        }
        overlapping = [p for p in (to_parameter(schedule, t) for t in partitions) if p in active]
        if overlapping:
            raise Conflict(f"these partitions are already active: {', '.join(overlapping)}")
        backfill = Backfill(
            id=random_id("backfill", to_millis(now), self._rng),
            start=request.start,
            end=request.end,
            workflow_id=workflow_id,
            concurrency=request.concurrency,
            description=request.description,
            next_trigger=partitions[-1] if request.reverse else request.start,
            schedule=workflow.configuration.schedule,
            reverse=request.reverse,
            trigger_parameters=request.trigger_parameters,
            created=now,
            last_modified=now,
        )
        await self._store.put_backfill(backfill)
        await self._scheduler.backfill_changed(backfill)
        return backfill

    async def edit_backfill(self, backfill_id: str, edit: EditableBackfillInput) -> Backfill:
        if edit.id != backfill_id:
            raise BadRequest("ID of payload does not match ID in uri.")
        backfill = await self._store.get_backfill(backfill_id)
        if backfill is None:
            raise NotFound(f"Backfill {backfill_id} not found.")
        if await self._store.get_workflow(backfill.workflow_id) is None:
            raise NotFound("workflow not found")
        changes: dict[str, Any] = {"last_modified": self._clock.now()}
        if edit.concurrency is not None:
            changes["concurrency"] = edit.concurrency
        if edit.description is not None:
            changes["description"] = edit.description
        return await self._edit_backfill(backfill_id, changes)

    async def _edit_backfill(self, backfill_id: str, changes: dict[str, Any]) -> Backfill:
        """Edits go through the scheduler's backfill driver, the only writer of an active backfill."""
        backfill = await self._scheduler.edit_backfill(backfill_id, changes)
        if backfill is None:
            raise NotFound(f"Backfill {backfill_id} not found.")
        return backfill

    async def halt_backfill(self, backfill_id: str, graceful: bool = False) -> None:
        """Stop triggering; unless graceful, halt the backfill's active instances too (docs/semantics.md#backfills)."""
        backfill = await self._store.get_backfill(backfill_id)
        if backfill is None:
            raise NotFound("backfill not found")
        if await self._store.get_workflow(backfill.workflow_id) is None:
            raise NotFound("workflow not found")
        backfill = await self._edit_backfill(backfill_id, {"halted": True, "last_modified": self._clock.now()})
        if graceful:
            return
        for state in await self._store.active_states_by_trigger(backfill_id):
            if state.workflow_instance.workflow_id == backfill.workflow_id:
                await self._router.send(state.workflow_instance, Halt())


def _timing_changed(old: WorkflowConfiguration, new: WorkflowConfiguration) -> bool:
    """Schedule (normalised) or offset (as an optional string: absent != explicit default) changed."""
    return Schedule.parse(old.schedule) != Schedule.parse(new.schedule) or old.offset != new.offset
