"""The global enabled switch (the contract's "Styx Config" group; Styx itself edits it out of band).

While disabled, natural triggers and backfills pause and queued instances are sent back to wait
(docs/semantics.md#global-config).
With authentication on, only scheduler administrators may change it (docs/auth.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import API_PREFIX, PrincipalDep, ServicesDep, require_administrator
from api.payloads import GlobalEnabledPayload
from styx_actors.errors import BadRequest

router = APIRouter(prefix=f"{API_PREFIX}/config", tags=["Styx Config"])


def _payload(enabled: bool) -> GlobalEnabledPayload:
    return GlobalEnabledPayload(enabled="true" if enabled else "false")


@router.get("", response_model=GlobalEnabledPayload)
async def get_global_enabled(services: ServicesDep) -> GlobalEnabledPayload:
    return _payload((await services.store.get_config()).enabled)


@router.post(
    "", response_model=GlobalEnabledPayload, dependencies=[Depends(require_administrator("change the global config"))]
)
async def set_global_enabled(
    services: ServicesDep,
    principal: PrincipalDep,
    enabled: Annotated[str, Query(description="true or false")],
) -> GlobalEnabledPayload:
    """Sets only `enabled`; the other global settings are kept."""
    if enabled.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid enabled parameter: {enabled!r} (expected true or false)")
    config = await services.store.get_config()
    updated = await services.commands.set_global_config(
        config.model_copy(update={"enabled": enabled.lower() == "true"})
    )
    return _payload(updated.enabled)
