"""Liveness and readiness: `/ping` (Styx), `/healthz` (the process answers), `/readyz` (the store answers and
still carries this installation's marker, styx_actors/store/marker.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import ServicesDep
from api.errors import error_response
from styx_actors.store.base import StoreError
from styx_actors.store.marker import StoreLost, check_marker

router = APIRouter(tags=["Health"])


@router.get("/ping", response_class=PlainTextResponse)
async def ping() -> str:
    return "pong"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The store does not answer or lost its data"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    try:
        await services.store.ping()
        await check_marker(services.store, services.settings.data_dir)
    except StoreLost as exc:
        return error_response(503, f"Store lost its data: {exc}")
    except StoreError as exc:
        return error_response(503, f"Store unavailable: {exc}")
    return JSONResponse({"status": "ready"})
