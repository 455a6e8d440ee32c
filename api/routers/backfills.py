"""Backfills: replays of a workflow over a past range, and the state of each of their partitions (reference §7)."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import API_PREFIX, PrincipalDep, Services, ServicesDep, authorize_workflow, parse_boolean
from api.payloads import (
    ENTITY_PAYLOAD,
    BackfillPayload,
    BackfillsPayload,
    json_schema,
    read_payload,
    request_body,
)
from api.security import Principal
from styx_actors.errors import BadRequest, NotFound
from styx_actors.history import backfill_statuses
from styx_actors.model import (
    Backfill,
    BackfillInput,
    EditableBackfillInput,
    RunStateDataPayload,
    Workflow,
    WorkflowId,
    WorkflowInstance,
)
from styx_actors.schedule import Schedule
from styx_actors.store.base import Store, StoredEvent
from styx_actors.timeutil import UTC

router = APIRouter(prefix=f"{API_PREFIX}/backfills", tags=["Backfills"])

# About eleven years of hourly partitions.
MAX_BACKFILL_PARTITIONS = 100_000

# Styx reads these flags as the exact string "true" (not Boolean.parseBoolean).
ExactTrue = Annotated[str | None, Query(description='"true" enables')]


async def _statuses(store: Store, backfill: Backfill) -> RunStateDataPayload:
    workflow_id = backfill.workflow_id
    active = {
        state.workflow_instance.parameter: state
        for state in await store.active_states(workflow_id.component_id, workflow_id.id)
    }

    async def events_of(parameter: str) -> list[StoredEvent]:
        return await store.events(WorkflowInstance(workflow_id=workflow_id, parameter=parameter))

    statuses = await backfill_statuses(backfill, Schedule.parse(backfill.schedule), active, events_of)
    return RunStateDataPayload(active_states=statuses)


async def _payload(store: Store, backfill: Backfill, with_statuses: bool) -> BackfillPayload:
    return BackfillPayload(backfill=backfill, statuses=await _statuses(store, backfill) if with_statuses else None)


def _start_filter(start: str | None) -> datetime | None:
    if start is None:
        return None
    try:
        day = date.fromisoformat(start)
    except ValueError:
        raise BadRequest(f"Invalid start: {start!r} is not a date (yyyy-MM-dd)") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@router.get("", response_model=BackfillsPayload)
async def list_backfills(
    services: ServicesDep,
    component: str | None = None,
    workflow: str | None = None,
    status: ExactTrue = None,
    showAll: ExactTrue = None,  # noqa: N803 - the contract's parameter name
    start: Annotated[str | None, Query(description="yyyy-MM-dd; only with component and workflow")] = None,
) -> BackfillsPayload:
    store = services.store
    backfills = await store.backfills(component, workflow, include_finished=showAll == "true")
    earliest = _start_filter(start)
    if earliest is not None and component is not None and workflow is not None:
        backfills = [backfill for backfill in backfills if backfill.start >= earliest]
    return BackfillsPayload(backfills=[await _payload(store, backfill, status == "true") for backfill in backfills])


@router.post(
    "",
    response_model=Backfill,
    openapi_extra=request_body(json_schema(BackfillInput)),
    responses={404: {"description": "Workflow not found"}, 409: {"description": "Partitions already active"}},
)
async def create_backfill(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    allowFuture: Annotated[str | None, Query(description='"true" (any case) allows future partitions')] = None,  # noqa: N803
) -> Backfill:
    backfill_input = await read_payload(request, BackfillInput, ENTITY_PAYLOAD)
    found = await services.store.get_workflow(
        WorkflowId(component_id=backfill_input.component, id=backfill_input.workflow)
    )
    if found is not None:
        await authorize_workflow(services, principal, found[0])
        _refuse_oversized(found[0], backfill_input)
    return await services.commands.create_backfill(backfill_input, allow_future=parse_boolean(allowFuture))


def _refuse_oversized(workflow: Workflow, backfill_input: BackfillInput) -> None:
    """Every partition is materialised (at creation, and in each status list): bound their number, as the
    body size is bounded. Ranges the command refuses anyway (unaligned, reversed) are left to its texts."""
    try:
        partitions = Schedule.parse(workflow.configuration.schedule).iter_range(
            backfill_input.start, backfill_input.end
        )
        count = sum(1 for _ in itertools.islice(partitions, MAX_BACKFILL_PARTITIONS + 1))
    except ValueError:
        return
    if count > MAX_BACKFILL_PARTITIONS:
        raise BadRequest(f"backfill covers too many partitions, limit = {MAX_BACKFILL_PARTITIONS}")


@router.get("/{backfill_id}", response_model=BackfillPayload, responses={404: {"description": "Not found"}})
async def get_backfill(
    backfill_id: str,
    services: ServicesDep,
    status: Annotated[str | None, Query(description='Default "true"; any other value leaves the statuses out')] = None,
) -> BackfillPayload:
    backfill = await services.store.get_backfill(backfill_id)
    if backfill is None:
        raise NotFound("backfill not found")
    return await _payload(services.store, backfill, status is None or status == "true")


async def _authorize_for_backfill(services: Services, principal: Principal | None, backfill_id: str) -> None:
    """Authorize against the backfill's workflow; a missing backfill or workflow is left to the command's 404."""
    backfill = await services.store.get_backfill(backfill_id)
    if backfill is None:
        return
    found = await services.store.get_workflow(backfill.workflow_id)
    if found is not None:
        await authorize_workflow(services, principal, found[0])


@router.put(
    "/{backfill_id}",
    response_model=Backfill,
    openapi_extra=request_body(json_schema(EditableBackfillInput)),
    responses={404: {"description": "Not found"}},
)
async def edit_backfill(backfill_id: str, request: Request, services: ServicesDep, principal: PrincipalDep) -> Backfill:
    """Only `concurrency` and `description` can change."""
    edit = await read_payload(request, EditableBackfillInput, ENTITY_PAYLOAD)
    if edit.id == backfill_id:  # a mismatch is refused by the command before anything is looked up
        await _authorize_for_backfill(services, principal, backfill_id)
    return await services.commands.edit_backfill(backfill_id, edit)


@router.delete("/{backfill_id}", responses={404: {"description": "Not found"}})
async def halt_backfill(
    backfill_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    graceful: Annotated[str | None, Query(description='"true" (any case) lets active instances finish')] = None,
) -> Response:
    """Stop triggering; unless graceful, halt the backfill's active instances too. The backfill is kept."""
    await _authorize_for_backfill(services, principal, backfill_id)
    await services.commands.halt_backfill(backfill_id, graceful=parse_boolean(graceful))
    return Response(status_code=200)
