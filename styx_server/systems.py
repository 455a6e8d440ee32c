"""The one factory of actor systems: `STYX_ACTOR_SYSTEM` picks where the actors run."""

from __future__ import annotations

from styx_actors.actors.local import LocalActorSystem
from styx_actors.actors.system import ActorSystem
from styx_actors.clock import Clock
from styx_actors.runners import make_runner
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_server.startup import ServiceError


async def start_actor_system(settings: Settings, store: Store, clock: Clock) -> ActorSystem:
    """Start (or, on a shared Ray cluster, join) the actors; the front end's commands use `store` and `clock`.
    On Ray the actors keep their own store connections and the system clock."""
    if settings.actor_system == "local":
        return await LocalActorSystem.start(settings, store, make_runner(settings, clock), clock, owns_runner=True)
    from cluster.ray_system import start_ray_system  # Ray loads only when it is used

    try:
        return await start_ray_system(settings, store, clock)
    except (ValueError, ConnectionError) as exc:
        raise ServiceError(f"Cannot start the actor system on Ray: {exc}") from exc
