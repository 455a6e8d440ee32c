"""Serves the dashboard: the page at `/`, its static assets under `/ui/`, `/ui/config.json` (whether changes
need a token) and two bounded reads under `/ui/data/` that the v3 API has no shape for: the latest instances
that exist of one workflow, and the recent instances of many workflows in one request (api/dashboard/runs.py).
Every change the page makes goes through the v3 API, so it honours the same authentication as any client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from api.bounds import PathId, QueryId
from api.dashboard.runs import newest_parameters, recent_runs
from api.deps import ServicesDep
from styx_actors.errors import NotFound
from styx_actors.model import WorkflowId

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Served by name only, so no request path can reach another file.
ASSET_TYPES = {"app.js": "text/javascript", "app.css": "text/css"}

# Each summarised instance is one event-log read: these bound the reads of one request.
DEFAULT_WORKFLOW_RUNS = 48
MAX_WORKFLOW_RUNS = 500
DEFAULT_RUNS_PER_WORKFLOW = 10
MAX_RUNS_PER_WORKFLOW = 25
DEFAULT_WORKFLOWS_PER_PAGE = 50
MAX_WORKFLOWS_PER_PAGE = 100

# The page loads nothing but its own script and style sheet and talks only to its own origin: no CDN, no
# inline script, and a page that embeds the dashboard cannot frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


@router.get("/ui/config.json")
async def dashboard_config(request: Request) -> JSONResponse:
    return JSONResponse({"auth_enabled": request.app.state.services.auth_enabled})


@router.get("/ui/{name}")
async def asset(name: str) -> FileResponse:
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound("Not Found")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/ui/data/runs/{component_id}/{workflow_id}")
async def workflow_runs(
    component_id: PathId,
    workflow_id: PathId,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_WORKFLOW_RUNS)] = DEFAULT_WORKFLOW_RUNS,
    start: QueryId = None,
    stop: QueryId = None,
) -> dict[str, Any]:
    """The workflow's instances, oldest first: the `limit` latest that exist (any dates), or the first `limit`
    from `start` (inclusive) to `stop` (exclusive) when `start` is given."""
    wf_id = WorkflowId(component_id=component_id, id=workflow_id)
    if await services.store.get_workflow(wf_id) is None:
        raise NotFound("Workflow does not exist")
    if start:
        parameters = await services.store.instance_parameters(wf_id, start=start, stop=stop or None, limit=limit)
    else:
        parameters = await newest_parameters(services.store, wf_id, limit)
    return {"runs": await recent_runs(services.store, wf_id, parameters)}


@router.get("/ui/data/recent-runs")
async def recent_runs_of_workflows(
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_WORKFLOWS_PER_PAGE)] = DEFAULT_WORKFLOWS_PER_PAGE,
    runs: Annotated[int, Query(ge=1, le=MAX_RUNS_PER_WORKFLOW)] = DEFAULT_RUNS_PER_WORKFLOW,
) -> dict[str, Any]:
    """A page of workflows in (component, workflow) order, each with its `runs` latest instances, oldest
    first; `next_offset` is the offset of the next page, null after the last."""
    stored = await services.store.workflows()
    workflows = sorted((workflow.id for workflow, _ in stored), key=lambda wf: (wf.component_id, wf.id))
    page = workflows[offset : offset + limit]

    async def summary(wf_id: WorkflowId) -> dict[str, Any]:
        parameters = await newest_parameters(services.store, wf_id, runs)
        return {
            "component_id": wf_id.component_id,
            "workflow_id": wf_id.id,
            "runs": await recent_runs(services.store, wf_id, parameters),
        }

    return {
        "workflows": list(await asyncio.gather(*(summary(wf_id) for wf_id in page))),
        "next_offset": offset + limit if offset + limit < len(workflows) else None,
    }
