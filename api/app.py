"""The FastAPI application: the v3 REST API under /api/v3, health probes, metrics, OpenAPI.

`create_app(services)` builds one app over one set of services (store, command facade, auth). It holds no
global state, so tests run many apps in one process.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from api import metrics as metrics_module
from api.dashboard import router as dashboard_router
from api.deps import API_PREFIX, Services, authenticate, reject_blacklisted_clients
from api.errors import ERROR_SCHEMA, install_error_handlers
from api.host_check import HostCheckMiddleware, HostPolicy
from api.metrics import ApiMetrics
from api.middleware import BodySizeLimitMiddleware, JsonBodyMiddleware, RateLimitMiddleware, RequestContextMiddleware
from api.routers import backfills, config, health, resources, scheduler, status, workflows

API_ROUTERS = (workflows.router, resources.router, backfills.router, status.router, scheduler.router, config.router)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="styx-actors",
        version="3",
        summary="The Styx v3 REST API: workflows, resources, backfills, status, scheduler commands.",
    )
    app.state.services = services
    app.state.metrics = ApiMetrics()
    install_error_handlers(app)
    # Styx's order for every API route: client blacklist, then authentication (docs/semantics.md#global-config).
    api_dependencies = [Depends(reject_blacklisted_clients), Depends(authenticate)]
    for router in API_ROUTERS:
        app.include_router(router, dependencies=api_dependencies)
    app.include_router(health.router)
    app.include_router(metrics_module.router)
    app.include_router(dashboard_router)
    # The last added middleware is the outermost: the request id and the catch-all wrap everything; an
    # oversized body is a 413 whatever its type.
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=services.settings.max_body_bytes)
    rate_limit = services.settings.rate_limit_per_second
    if rate_limit is not None:
        app.add_middleware(RateLimitMiddleware, per_second=rate_limit, burst=services.settings.rate_limit_burst)
    if not services.auth_enabled:
        app.add_middleware(HostCheckMiddleware, policy=HostPolicy.from_settings(services.settings))
    app.add_middleware(RequestContextMiddleware, observe=app.state.metrics.observe_request)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the error responses this API really gives: 400 for bad input (never 422),
    and the `{"code", "message"}` body on every error."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    component_schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    component_schemas.pop("HTTPValidationError", None)
    component_schemas.pop("ValidationError", None)
    component_schemas["Error"] = ERROR_SCHEMA
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, path_item in schema["paths"].items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path.startswith(API_PREFIX):
                responses.setdefault("400", {"description": "Bad request"})
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400:
                    response["content"] = error_content
    app.openapi_schema = schema
    return schema
