"""Scheduler commands on instances: ad-hoc trigger, retry, halt and event injection (docs/api.md#scheduler).

Styx proxies these to its scheduler service's /api/v0; here the command facade is the scheduler, so they
are served directly with the scheduler's behaviour and texts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.bounds import instance_errors, refuse_unless_empty, trigger_parameters_errors
from api.deps import API_PREFIX, PrincipalDep, Services, ServicesDep, authorize_workflow, parse_boolean
from api.payloads import (
    ENTITY_PAYLOAD,
    EVENT_SCHEMA,
    INSTANCE_REFERENCE_SCHEMA,
    json_schema,
    parse_instance_payload,
    parse_instance_reference,
    read_json,
    read_payload,
    request_body,
)
from api.security import Principal
from styx_actors.errors import BadRequest, NotFound
from styx_actors.events import Dequeue, EventParseError, Halt, Timeout, event_from_json
from styx_actors.model import TriggerRequest, TriggerResponse, WorkflowInstance

router = APIRouter(prefix=f"{API_PREFIX}/scheduler", tags=["Scheduler"])

DEPRECATED_INJECTION = (
    "This API for injecting generic events is deprecated, "
    "refer to the specific API for the event you want to send to the scheduler"
)
# Java's Long.parseLong: an optional sign and decimal digits, within 64 bits.
_LONG = re.compile(r"[-+]?[0-9]+")
_LONG_RANGE = range(-(2**63), 2**63)


def parse_delay(delay: str | None) -> int:
    if delay is None:
        return 0
    if _LONG.fullmatch(delay) and int(delay) in _LONG_RANGE:
        return int(delay)
    raise BadRequest("Delay parameter could not be parsed")


async def _authorize_instance(services: Services, principal: Principal | None, instance: WorkflowInstance) -> None:
    """Commands on an instance need its workflow to exist, and the caller to be allowed to act as it."""
    refuse_unless_empty(instance_errors(instance))
    found = await services.store.get_workflow(instance.workflow_id)
    if found is None:
        raise NotFound("workflow not found")
    await authorize_workflow(services, principal, found[0])


@router.post(
    "/trigger",
    response_model=TriggerResponse,
    openapi_extra=request_body(json_schema(TriggerRequest)),
    responses={409: {"description": "Already triggered"}},
)
async def trigger(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    allowFuture: Annotated[str | None, Query(description='"true" (any case) allows a future instance')] = None,  # noqa: N803
) -> TriggerResponse:
    """Ad-hoc trigger; works on disabled workflows. Echoes the request with the new trigger id."""
    trigger_request = await read_payload(request, TriggerRequest, ENTITY_PAYLOAD)
    instance = WorkflowInstance(workflow_id=trigger_request.workflow_id, parameter=trigger_request.parameter)
    refuse_unless_empty(instance_errors(instance) + trigger_parameters_errors(trigger_request.trigger_parameters))
    found = await services.commands.load_workflow(trigger_request.workflow_id)
    if found is not None:
        await authorize_workflow(services, principal, found[0])
    return await services.commands.trigger(trigger_request, allow_future=parse_boolean(allowFuture))


@router.post(
    "/retry",
    openapi_extra=request_body(INSTANCE_REFERENCE_SCHEMA),
    responses={404: {"description": "Workflow not found"}},
)
async def retry(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    delay: Annotated[str | None, Query(description="Milliseconds before the retry (default 0)")] = None,
) -> JSONResponse:
    """Retry an active instance after `delay` ms (a non-active one is left alone); echoes the body."""
    sent = await read_json(request, ENTITY_PAYLOAD)
    instance = parse_instance_payload(sent, ENTITY_PAYLOAD)
    await _authorize_instance(services, principal, instance)
    await services.commands.retry(instance, parse_delay(delay))
    return JSONResponse(sent)


@router.post(
    "/halt",
    openapi_extra=request_body(INSTANCE_REFERENCE_SCHEMA),
    responses={404: {"description": "Workflow not found"}},
)
async def halt(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """Halt an active instance (a non-active one is left alone); echoes the body."""
    sent = await read_json(request, ENTITY_PAYLOAD)
    instance = parse_instance_payload(sent, ENTITY_PAYLOAD)
    await _authorize_instance(services, principal, instance)
    await services.commands.halt(instance)
    return JSONResponse(sent)


@router.post(
    "/events", openapi_extra=request_body(EVENT_SCHEMA), responses={404: {"description": "Workflow not found"}}
)
async def inject_event(request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Only `halt` and `timeout` are injected; `dequeue` becomes a retry without delay; others are refused."""
    sent: Any = await read_json(request, ENTITY_PAYLOAD)
    try:
        event, instance_text = event_from_json(sent)
    except EventParseError as exc:
        raise BadRequest(f"{ENTITY_PAYLOAD.invalid_prefix}{exc}") from None
    instance = parse_instance_reference(instance_text, ENTITY_PAYLOAD)
    await _authorize_instance(services, principal, instance)
    if isinstance(event, Dequeue):
        await services.commands.retry(instance, 0)
        return JSONResponse(sent)
    if isinstance(event, (Halt, Timeout)):
        await services.commands.send(instance, event)
        return Response(status_code=200)
    raise BadRequest(DEPRECATED_INJECTION)
