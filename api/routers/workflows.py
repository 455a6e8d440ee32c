"""Workflows: configurations, their state, and the execution history of their instances (docs/api.md#workflows)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.bounds import PathId, QueryId
from api.deps import API_PREFIX, PrincipalDep, ServicesDep, authorize_workflow, parse_boolean
from api.payloads import (
    WORKFLOW_PAYLOAD,
    SavedWorkflowPayload,
    WorkflowPayload,
    WorkflowWithStatePayload,
    json_schema,
    parse_json,
    parse_model,
    read_payload,
    request_body,
)
from styx_actors.errors import BadRequest, NotFound
from styx_actors.history import execution_history
from styx_actors.model import (
    Workflow,
    WorkflowConfiguration,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
    WorkflowStatePatch,
)
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.store.base import Store
from styx_actors.timeutil import parse_instant

router = APIRouter(prefix=f"{API_PREFIX}/workflows", tags=["Workflows"])

# Styx's text for a state patch that is not JSON: without the parser's detail, which Styx gives only when
# creating a workflow.
UNPARSABLE_STATE_PATCH = "Invalid payload."
# Styx's default page: a week of hourly instances.
DEFAULT_INSTANCES_LIMIT = 168
# Each listed instance replays its whole event log; bound the work one request can ask for.
MAX_INSTANCES_LIMIT = 10_000

WORKFLOW_MISSING = "Workflow does not exist"


async def _workflow(store: Store, workflow_id: WorkflowId) -> tuple[Workflow, WorkflowState]:
    found = await store.get_workflow(workflow_id)
    if found is None:
        raise NotFound(WORKFLOW_MISSING)
    return found


def instant_query(name: str, value: str | None) -> datetime | None:
    """An optional ISO instant given as query parameter `name`."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"Invalid {name}: {exc}") from None


def _deployed_between(config: WorkflowConfiguration, after: datetime | None, before: datetime | None) -> bool:
    if after is None and before is None:
        return True
    deployed = config.deployment_time
    if deployed is None:
        return False
    return (after is None or deployed > after) and (before is None or deployed < before)


@router.get("", response_model=list[WorkflowWithStatePayload] | list[WorkflowPayload])
async def list_workflows(
    request: Request,
    services: ServicesDep,
    deployment_type: str | None = None,
    deployment_time_before: str | None = None,
    deployment_time_after: str | None = None,
    full: Annotated[str | None, Query(description="Presence flag: any value returns the states too")] = None,
) -> list[WorkflowWithStatePayload] | list[WorkflowPayload]:
    before = instant_query("deployment_time_before", deployment_time_before)
    after = instant_query("deployment_time_after", deployment_time_after)
    selected = [
        (workflow, state)
        for workflow, state in await services.store.workflows()
        if (deployment_type is None or _deployment_type(workflow.configuration) == deployment_type)
        and _deployed_between(workflow.configuration, after, before)
    ]
    # Styx quirk kept: `full` is a presence flag, `?full=false` returns the states as well.
    if "full" in request.query_params:
        return [_with_state(workflow, state) for workflow, state in selected]
    return [WorkflowPayload.of(workflow) for workflow, _ in selected]


def _with_state(workflow: Workflow, state: WorkflowState) -> WorkflowWithStatePayload:
    return WorkflowWithStatePayload(workflow=WorkflowPayload.of(workflow), state=state)


def _deployment_type(config: WorkflowConfiguration) -> str | None:
    return config.deployment_source.source if config.deployment_source is not None else None


@router.get("/{component_id}", response_model=list[WorkflowPayload])
async def list_component_workflows(component_id: PathId, services: ServicesDep) -> list[WorkflowPayload]:
    return [WorkflowPayload.of(workflow) for workflow, _ in await services.store.workflows(component_id)]


@router.post(
    "/{component_id}",
    response_model=SavedWorkflowPayload,
    openapi_extra=request_body(json_schema(WorkflowConfiguration)),
    responses={400: {"description": "Invalid payload or workflow configuration"}},
)
async def save_workflow(
    component_id: PathId, request: Request, services: ServicesDep, principal: PrincipalDep
) -> SavedWorkflowPayload:
    """Create or update; the caller must be allowed to use both the new and the existing service account."""
    config = await read_payload(request, WorkflowConfiguration, WORKFLOW_PAYLOAD)
    await authorize_workflow(services, principal, Workflow.create(component_id, config))
    existing = await services.store.get_workflow(WorkflowId(component_id=component_id, id=config.id))
    if existing is not None:
        await authorize_workflow(services, principal, existing[0])
    return SavedWorkflowPayload.of(await services.commands.save_workflow(component_id, config))


@router.get(
    "/{component_id}/{workflow_id}", response_model=WorkflowPayload, responses={404: {"description": "Not found"}}
)
async def get_workflow(component_id: PathId, workflow_id: PathId, services: ServicesDep) -> WorkflowPayload:
    workflow, _ = await _workflow(services.store, WorkflowId(component_id=component_id, id=workflow_id))
    return WorkflowPayload.of(workflow)


@router.delete("/{component_id}/{workflow_id}", status_code=204, responses={404: {"description": "Not found"}})
async def delete_workflow(
    component_id: PathId, workflow_id: PathId, services: ServicesDep, principal: PrincipalDep
) -> Response:
    workflow, _ = await _workflow(services.store, WorkflowId(component_id=component_id, id=workflow_id))
    await authorize_workflow(services, principal, workflow)
    await services.commands.delete_workflow(workflow.id)
    return Response(status_code=204)


@router.get(
    "/{component_id}/{workflow_id}/full",
    response_model=WorkflowWithStatePayload,
    responses={404: {"description": "Not found"}},
)
async def get_workflow_with_state(
    component_id: PathId, workflow_id: PathId, services: ServicesDep
) -> WorkflowWithStatePayload:
    workflow, state = await _workflow(services.store, WorkflowId(component_id=component_id, id=workflow_id))
    return _with_state(workflow, state)


@router.get("/{component_id}/{workflow_id}/state", response_model=WorkflowState)
async def get_workflow_state(component_id: PathId, workflow_id: PathId, services: ServicesDep) -> WorkflowState:
    """Styx quirk kept: an unknown workflow has a state too (disabled, no triggers)."""
    found = await services.store.get_workflow(WorkflowId(component_id=component_id, id=workflow_id))
    return found[1] if found is not None else WorkflowState()


@router.patch(
    "/{component_id}/{workflow_id}/state",
    response_model=WorkflowState,
    openapi_extra=request_body(json_schema(WorkflowStatePatch)),
    responses={404: {"description": "Not found"}},
)
async def patch_workflow_state(
    component_id: PathId, workflow_id: PathId, request: Request, services: ServicesDep, principal: PrincipalDep
) -> WorkflowState:
    """Fields present in the body overwrite the stored ones. Styx's order: payload present, workflow
    exists, caller authorized, payload parses."""
    body = await request.body()
    if not body.strip():
        raise BadRequest(WORKFLOW_PAYLOAD.missing)
    found = await services.store.get_workflow(WorkflowId(component_id=component_id, id=workflow_id))
    if found is None:
        raise NotFound("workflow not found")
    await authorize_workflow(services, principal, found[0])
    try:
        sent = parse_json(body, WORKFLOW_PAYLOAD)
    except BadRequest:
        raise BadRequest(UNPARSABLE_STATE_PATCH) from None
    patch = parse_model(sent, WorkflowStatePatch, WORKFLOW_PAYLOAD)
    return await services.commands.patch_workflow_state(found[0].id, patch)


@router.get("/{component_id}/{workflow_id}/instances")
async def list_instances(
    component_id: PathId,
    workflow_id: PathId,
    services: ServicesDep,
    offset: QueryId = None,
    limit: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_INSTANCES_LIMIT,
            description=f"Default {DEFAULT_INSTANCES_LIMIT}, {MAX_INSTANCES_LIMIT} with start",
        ),
    ] = None,
    start: QueryId = None,
    stop: QueryId = None,
    tail: Annotated[str | None, Query(description='"true" (any case): the latest `limit` natural periods')] = None,
) -> list[dict[str, Any]]:
    """Execution histories in parameter order, chosen by tail+limit, offset+limit or start/stop+limit
    (docs/api.md#workflows). Styx lists a start/stop range whole; here `limit` bounds it too, by default to
    its maximum."""
    wf_id = WorkflowId(component_id=component_id, id=workflow_id)
    store = services.store
    by_tail = parse_boolean(tail)
    if limit is None:
        limit = MAX_INSTANCES_LIMIT if start and not by_tail else DEFAULT_INSTANCES_LIMIT
    if by_tail:
        parameters = await _tail_parameters(store, wf_id, limit)
    elif not start:
        parameters = await store.instance_parameters(wf_id, start=offset or None, limit=limit)
    else:
        parameters = await store.instance_parameters(wf_id, start=start, stop=stop or None, limit=limit)

    async def history(parameter: str) -> dict[str, Any]:
        instance = WorkflowInstance(workflow_id=wf_id, parameter=parameter)
        return execution_history(instance, await store.events(instance))

    return list(await asyncio.gather(*(history(parameter) for parameter in parameters)))


async def _tail_parameters(store: Store, workflow_id: WorkflowId, limit: int) -> list[str]:
    """Instances of the latest `limit` natural periods before the next natural trigger."""
    found = await store.get_workflow(workflow_id)
    if found is None:
        raise NotFound("Could not find workflow.")
    workflow, state = found
    next_trigger = state.next_natural_trigger
    if next_trigger is None:
        raise NotFound("No next natural trigger for workflow.")
    schedule = Schedule.parse(workflow.configuration.schedule)
    try:
        tail_start = schedule.offset_instant(next_trigger, -limit)
    except ValueError as exc:  # a patched trigger off the schedule, or a tail before year 1
        raise BadRequest(f"Cannot compute the tail of the workflow: {exc}") from None
    return await store.instance_parameters(
        workflow_id, start=to_parameter(schedule, tail_start), stop=to_parameter(schedule, next_trigger), limit=limit
    )


@router.get("/{component_id}/{workflow_id}/instances/{parameter}", responses={404: {"description": "Not found"}})
async def get_instance(
    component_id: PathId, workflow_id: PathId, parameter: PathId, services: ServicesDep
) -> dict[str, Any]:
    instance = WorkflowInstance.of(component_id, workflow_id, parameter)
    events = await services.store.events(instance)
    if not events:
        raise NotFound("Workflow instance not found")
    return execution_history(instance, events)
