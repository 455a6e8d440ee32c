"""Status: the active instances, the event log of one instance, and the service-account usage check
(docs/api.md#status); the output of an instance's executions (an extension: docs/api.md)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from api.bounds import PathId, QueryId, component_list_errors, refuse_unless_empty
from api.deps import API_PREFIX, ServicesDep
from api.payloads import (
    ENTITY_PAYLOAD,
    ModelResponse,
    ServiceAccountUsageRequest,
    ServiceAccountUsageResponse,
    event_payload,
    json_schema,
    read_payload,
    request_body,
)
from styx_actors.errors import BadRequest
from styx_actors.model import RunState, RunStateData, RunStateDataPayload, WorkflowInstance
from styx_actors.runners.base import DEFAULT_LOG_TAIL_BYTES, MAX_LOG_TAIL_BYTES
from styx_actors.store import OutputSummary
from styx_actors.store.base import ACTIVE_STATES_PAGE, Store
from styx_actors.timeutil import format_instant, from_millis
from styx_actors.validation import MAX_ID_LENGTH

router = APIRouter(prefix=f"{API_PREFIX}/status", tags=["Status"])


@router.get("/activeStates", response_model=RunStateDataPayload)
async def active_states(
    services: ServicesDep,
    component: QueryId = None,
    workflow: Annotated[str | None, Query(description="Needs `component`", max_length=MAX_ID_LENGTH)] = None,
    components: Annotated[str | None, Query(description="Comma-separated component ids; overrides the others")] = None,
) -> Response:
    store = services.store
    states: list[RunState]
    if components is None and component is None and workflow is None:
        return await streamed_active_states(store)
    if components is not None:
        wanted = sorted({name for name in components.split(",") if name})
        refuse_unless_empty(component_list_errors(wanted))
        per_component = await asyncio.gather(*(store.active_states(name) for name in wanted))
        states = sorted(itertools.chain.from_iterable(per_component), key=lambda state: state.workflow_instance.key())
    elif workflow is not None:
        if component is None:
            raise BadRequest("No component id specified!")
        states = await store.active_states(component, workflow)
    else:
        states = await store.active_states(component)
    return ModelResponse(RunStateDataPayload(active_states=[RunStateData.of(state) for state in states]))


_STATE_LIST = TypeAdapter(list[RunStateData])


async def streamed_active_states(store: Store, page_size: int = ACTIVE_STATES_PAGE) -> StreamingResponse:
    """Every active instance, written a page at a time (Store.active_state_pages): the answer for 100,000
    is never held whole. The first page is read before the answer starts, so an unreachable store is still
    a 503; a store lost later cuts the answer short (the client sees a broken body, not a shorter list)."""
    pages = store.active_state_pages(page_size)
    first: list[RunState] = await anext(pages, [])

    async def body() -> AsyncIterator[bytes]:
        yield b'{"active_states":['
        separator = b""
        page: list[RunState] | None = first
        while page is not None:
            if page:
                # The page as a JSON list, without its brackets: the items of the one list of the answer.
                yield separator + _STATE_LIST.dump_json([RunStateData.of(state) for state in page], by_alias=True)[1:-1]
                separator = b","
            page = await anext(pages, None)
        yield b"]}"

    return StreamingResponse(body(), media_type="application/json")


@router.get("/events/{component_id}/{workflow_id}/{parameter}")
async def instance_events(
    component_id: str, workflow_id: str, parameter: str, services: ServicesDep
) -> dict[str, list[dict[str, Any]]]:
    """The instance's event log in order; empty (not 404) when it has none."""
    instance = WorkflowInstance.of(component_id, workflow_id, parameter)
    return {"events": [event_payload(stored, instance) for stored in await services.store.events(instance)]}


@router.get("/logs/{component_id}/{workflow_id}/{parameter}", responses={404: {"description": "No output"}})
async def instance_logs(
    component_id: PathId,
    workflow_id: PathId,
    parameter: PathId,
    services: ServicesDep,
    tail_bytes: Annotated[
        int, Query(ge=1, le=MAX_LOG_TAIL_BYTES, description="Return only the last this many bytes of the output")
    ] = DEFAULT_LOG_TAIL_BYTES,
    execution_id: Annotated[
        str | None, Query(max_length=MAX_ID_LENGTH, description="The execution (default: the instance's latest)")
    ] = None,
) -> dict[str, str]:
    """The end of the output of one of the instance's executions (the latest by default): from its container
    while that exists (`source` "container"), afterwards what the store kept of it (`source` "store")."""
    instance = WorkflowInstance.of(component_id, workflow_id, parameter)
    found = await services.commands.logs(instance, tail_bytes, execution_id)
    return {"execution_id": found.execution_id, "logs": found.logs, "source": found.source.value}


@router.get("/outputs/{component_id}/{workflow_id}/{parameter}")
async def instance_outputs(
    component_id: PathId, workflow_id: PathId, parameter: PathId, services: ServicesDep
) -> dict[str, list[dict[str, Any]]]:
    """The instance's executions whose output the store kept, oldest first; empty (not 404) when none."""
    instance = WorkflowInstance.of(component_id, workflow_id, parameter)
    return {"outputs": [_output_payload(output) for output in await services.store.execution_outputs(instance)]}


def _output_payload(output: OutputSummary) -> dict[str, Any]:
    ended_at = format_instant(from_millis(output.ended_at))
    return {"execution_id": output.execution_id, "ended_at": ended_at, "bytes": output.size}


@router.post(
    "/testServiceAccountUsageAuthorization",
    response_model=ServiceAccountUsageResponse,
    openapi_extra=request_body(json_schema(ServiceAccountUsageRequest)),
)
async def service_account_usage_authorization(request: Request, services: ServicesDep) -> ServiceAccountUsageResponse:
    """Whether `principal` may run workflows as `service_account`, decided now by the configured authorizer
    (uncached, enforced or not): a denial is a 200 too. Lookup errors are 400s (docs/auth.md)."""
    question = await read_payload(request, ServiceAccountUsageRequest, ENTITY_PAYLOAD)
    if not question.service_account or not question.principal:
        raise BadRequest(f"{ENTITY_PAYLOAD.invalid_prefix}service_account and principal cannot be empty")
    decision = await services.authorizer.decide(question.principal, question.service_account)
    return ServiceAccountUsageResponse(
        service_account=question.service_account,
        principal=question.principal,
        authorized=decision.authorized,
        blacklisted=decision.blocklisted,
        message=decision.message,
    )
