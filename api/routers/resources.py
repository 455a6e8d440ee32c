"""Resources: named concurrency limits shared by the workflows that list them
(docs/semantics.md#resources-and-concurrency).

No service-account authorization applies; with authentication on, changes are for scheduler administrators
only (docs/auth.md): a resource's limit holds back every workflow that names it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api.bounds import (
    MIN_RESOURCE_CONCURRENCY,
    PathId,
    concurrency_errors,
    refuse_unless_empty,
    upper_limit_errors,
)
from api.deps import API_PREFIX, PrincipalDep, ServicesDep, require_administrator
from api.payloads import ENTITY_PAYLOAD, ResourcesPayload, json_schema, read_payload, request_body
from styx_actors.errors import BadRequest, NotFound
from styx_actors.model import Resource
from styx_actors.validation import MAX_RESOURCE_LENGTH

router = APIRouter(prefix=f"{API_PREFIX}/resources", tags=["Resources"])
ADMINISTRATORS_ONLY = [Depends(require_administrator("change resources"))]


async def _resource_payload(request: Request) -> Resource:
    resource = await read_payload(request, Resource, ENTITY_PAYLOAD)
    if not resource.id:
        raise BadRequest("resource id cannot be empty")
    # A workflow can only reference resource names up to MAX_RESOURCE_LENGTH, so longer ones are refused
    # here rather than stored unusable.
    refuse_unless_empty(
        upper_limit_errors(len(resource.id), MAX_RESOURCE_LENGTH, "resource id too long")
        + concurrency_errors(resource.concurrency, MIN_RESOURCE_CONCURRENCY)
    )
    return resource


@router.get("", response_model=ResourcesPayload)
async def list_resources(services: ServicesDep) -> ResourcesPayload:
    return ResourcesPayload(resources=await services.store.resources())


@router.post(
    "", response_model=Resource, openapi_extra=request_body(json_schema(Resource)), dependencies=ADMINISTRATORS_ONLY
)
async def create_resource(request: Request, services: ServicesDep, principal: PrincipalDep) -> Resource:
    """Upsert: an existing resource of that id is overwritten."""
    return await services.commands.save_resource(await _resource_payload(request))


@router.get("/{resource_id}", response_model=ResourcesPayload, responses={404: {"description": "Not found"}})
async def get_resource(resource_id: PathId, services: ServicesDep) -> ResourcesPayload:
    """Wrapped as the contract shows (`{"resources": [...]}`), not bare as Styx's code returns it."""
    resource = await services.store.get_resource(resource_id)
    if resource is None:
        raise NotFound("Resource not found")
    return ResourcesPayload(resources=[resource])


@router.put(
    "/{resource_id}",
    response_model=Resource,
    openapi_extra=request_body(json_schema(Resource)),
    dependencies=ADMINISTRATORS_ONLY,
)
async def update_resource(
    resource_id: PathId, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Resource:
    resource = await _resource_payload(request)
    if resource.id != resource_id:
        raise BadRequest("ID of payload does not match ID in uri.")
    return await services.commands.save_resource(resource)


@router.delete("/{resource_id}", status_code=204, dependencies=ADMINISTRATORS_ONLY)
async def delete_resource(resource_id: PathId, services: ServicesDep, principal: PrincipalDep) -> Response:
    """204 whether or not it existed (Styx)."""
    await services.commands.delete_resource(resource_id)
    return Response(status_code=204)
