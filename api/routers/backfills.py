"""Backfills: replays of a workflow over a past range, and the state of each of their partitions
(docs/semantics.md#backfills, docs/api.md#backfills)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.bounds import (
    MIN_BACKFILL_CONCURRENCY,
    PathId,
    QueryId,
    concurrency_errors,
    description_errors,
    refuse_unless_empty,
    trigger_parameters_errors,
)
from api.deps import API_PREFIX, PrincipalDep, Services, ServicesDep, authorize_workflow, parse_boolean
from api.payloads import (
    ENTITY_PAYLOAD,
    BackfillPayload,
    BackfillsPayload,
    BackfillStatusesPayload,
    json_schema,
    read_payload,
    request_body,
)
from api.routers.workflows import instant_query
from api.security import Principal
from styx_actors.errors import BadRequest, NotFound
from styx_actors.history import backfill_partitions, backfill_statuses
from styx_actors.model import (
    Backfill,
    BackfillInput,
    EditableBackfillInput,
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
# Each partition's status is ~0.4 KB, and a passed one replays its instance's events: one answer holds at
# most this many (over a year of hourly partitions) and says where the next page starts.
MAX_STATUS_PAGE = 10_000

# Styx reads these flags as the exact string "true" (not Boolean.parseBoolean).
ExactTrue = Annotated[str | None, Query(description='"true" enables')]


@dataclass(frozen=True)
class StatusPage:
    """Which partitions' statuses to answer with: at most `limit` from the first at or after `first`."""

    first: datetime | None = None
    limit: int = MAX_STATUS_PAGE


async def _statuses(store: Store, backfill: Backfill, page: StatusPage) -> BackfillStatusesPayload:
    schedule = Schedule.parse(backfill.schedule)
    # One partition beyond the page tells where the next page starts.
    partitions = list(itertools.islice(backfill_partitions(backfill, schedule, page.first), page.limit + 1))
    workflow_id = backfill.workflow_id
    active = {
        state.workflow_instance.parameter: state
        for state in await store.active_states(workflow_id.component_id, workflow_id.id)
    }

    async def events_of(parameter: str) -> list[StoredEvent]:
        return await store.events(WorkflowInstance(workflow_id=workflow_id, parameter=parameter))

    statuses = await backfill_statuses(backfill, schedule, active, events_of, partitions[: page.limit])
    following = partitions[page.limit] if len(partitions) > page.limit else None
    return BackfillStatusesPayload(active_states=statuses, next_status_from=following)


async def _payload(store: Store, backfill: Backfill, page: StatusPage | None) -> BackfillPayload:
    """The backfill, with the statuses of a page of its partitions unless `page` is None."""
    statuses = await _statuses(store, backfill, page) if page is not None else None
    return BackfillPayload(backfill=backfill, statuses=statuses)


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
    component: QueryId = None,
    workflow: QueryId = None,
    status: ExactTrue = None,
    showAll: ExactTrue = None,  # noqa: N803 - the contract's parameter name
    start: Annotated[str | None, Query(description="yyyy-MM-dd; only with component and workflow")] = None,
) -> BackfillsPayload:
    store = services.store
    backfills = await store.backfills(component, workflow, include_finished=showAll == "true")
    earliest = _start_filter(start)
    if earliest is not None and component is not None and workflow is not None:
        backfills = [backfill for backfill in backfills if backfill.start >= earliest]
    page = StatusPage() if status == "true" else None
    return BackfillsPayload(backfills=[await _payload(store, backfill, page) for backfill in backfills])


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
    refuse_unless_empty(
        concurrency_errors(backfill_input.concurrency, MIN_BACKFILL_CONCURRENCY)
        + description_errors(backfill_input.description)
        + trigger_parameters_errors(backfill_input.trigger_parameters)
    )
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
    backfill_id: PathId,
    services: ServicesDep,
    status: Annotated[str | None, Query(description='Default "true"; any other value leaves the statuses out')] = None,
    statusFrom: Annotated[  # noqa: N803 - named like the contract's parameters
        str | None, Query(description="ISO instant: statuses from the first partition at or after it")
    ] = None,
    statusLimit: Annotated[  # noqa: N803
        int, Query(ge=1, le=MAX_STATUS_PAGE, description="At most this many partitions' statuses")
    ] = MAX_STATUS_PAGE,
) -> BackfillPayload:
    """Statuses come a page at a time: `statuses.next_status_from` is the `statusFrom` of the next page."""
    page = StatusPage(first=instant_query("statusFrom", statusFrom), limit=statusLimit)
    backfill = await services.store.get_backfill(backfill_id)
    if backfill is None:
        raise NotFound("backfill not found")
    return await _payload(services.store, backfill, page if status is None or status == "true" else None)


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
async def edit_backfill(
    backfill_id: PathId, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Backfill:
    """Only `concurrency` and `description` can change."""
    edit = await read_payload(request, EditableBackfillInput, ENTITY_PAYLOAD)
    refuse_unless_empty(
        concurrency_errors(edit.concurrency, MIN_BACKFILL_CONCURRENCY) + description_errors(edit.description)
    )
    if edit.id == backfill_id:  # a mismatch is refused by the command before anything is looked up
        await _authorize_for_backfill(services, principal, backfill_id)
    return await services.commands.edit_backfill(backfill_id, edit)


@router.delete("/{backfill_id}", responses={404: {"description": "Not found"}})
async def halt_backfill(
    backfill_id: PathId,
    services: ServicesDep,
    principal: PrincipalDep,
    graceful: Annotated[str | None, Query(description='"true" (any case) lets active instances finish')] = None,
) -> Response:
    """Stop triggering; unless graceful, halt the backfill's active instances too. The backfill is kept."""
    await _authorize_for_backfill(services, principal, backfill_id)
    await services.commands.halt_backfill(backfill_id, graceful=parse_boolean(graceful))
    return Response(status_code=200)
