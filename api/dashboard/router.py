"""Serves the dashboard: the page at `/`, its static assets under `/ui/`, and `/ui/config.json`, which tells the
page whether changes need a token. The page itself only talks to the v3 API, so it honours the same
authentication as every other client."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from styx_actors.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Served by name only, so no request path can reach another file.
ASSET_TYPES = {"app.js": "text/javascript", "app.css": "text/css"}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/ui/config.json")
async def dashboard_config(request: Request) -> JSONResponse:
    return JSONResponse({"auth_enabled": request.app.state.services.auth_enabled})


@router.get("/ui/{name}")
async def asset(name: str) -> FileResponse:
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound("Not Found")
    return FileResponse(
        STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )
