"""The API service: the app over an actor system and a store, served by uvicorn.

- `run_service(settings)`: `styx serve`: the actor system chosen by STYX_ACTOR_SYSTEM (Ray by default), the
  app on uvicorn at settings.host:settings.port. Startup problems raise ServiceError with a message that
  says what to change; `main()` prints it and exits non-zero.
- `start_service(...)`: the app over a system and a store the caller opened (tests call it through httpx).
- `BackgroundService`: the whole service on real HTTP from a thread of its own (subprocess clients in tests).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from dataclasses import dataclass

import uvicorn
import uvloop
from fastapi import FastAPI

from api.app import create_app
from api.deps import Services
from api.server import uvicorn_config
from styx_actors.actors.system import ActorSystem
from styx_actors.clock import Clock, SystemClock
from styx_actors.settings import Settings
from styx_actors.store import Store
from styx_server.auth_mode import OPEN_ACCESS, AuthChoice, choose_auth
from styx_server.startup import (
    ServiceError,
    actors_location,
    ensure_port_free,
    open_service_store,
    ready_line,
    runner_summary,
)
from styx_server.systems import start_actor_system

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60.0


@dataclass
class Service:
    """One app over one actor system."""

    app: FastAPI
    system: ActorSystem
    services: Services

    async def stop(self) -> None:
        """Stop the actor system; the store stays open (its owner closes it)."""
        await self.system.stop()


async def start_service(settings: Settings, store: Store, clock: Clock, auth: AuthChoice = OPEN_ACCESS) -> Service:
    system = await start_actor_system(settings, store, clock)
    services = Services(
        store=store,
        commands=system.commands,
        settings=settings,
        clock=clock,
        authenticator=auth.authenticator,
        authorizer=auth.authorizer,
        auth_enabled=auth.enabled,
    )
    return Service(app=create_app(services), system=system, services=services)


async def listen(server: uvicorn.Server) -> tuple[asyncio.Task[None], str]:
    """Start serving and wait until the server listens: the serving task and the URL it answers at."""
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started and not serving.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # uvicorn tells that it listens through this flag only
    if not server.started:
        if serving.done():
            serving.result()  # uvicorn exits when it cannot bind: surface that
        serving.cancel()
        raise ServiceError(f"uvicorn did not start on {server.config.host}:{server.config.port}")
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return serving, f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# ---------------------------------------------------------------------------------------------------------
# `styx serve`


def run_service(settings: Settings) -> None:
    """Serve the API until interrupted. Raises ServiceError on startup failure.
    uvloop: the event loop's own overhead is a good part of a request's CPU (docs/performance.md)."""
    uvloop.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    auth = choose_auth(settings)
    ensure_port_free(settings.host, settings.port)
    store = await open_service_store(settings)
    try:
        log.info("starting the actors in %s...", actors_location(settings))
        service = await start_service(settings, store, SystemClock(), auth)
        try:
            serving, url = await listen(uvicorn.Server(uvicorn_config(service.app, settings)))
            log.info(ready_line(url, store, settings, await runner_summary(settings)))
            await serving
        finally:
            await service.stop()
    finally:
        await store.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_service(Settings())
    except ServiceError as exc:
        print(f"styx-actors: {exc}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------------
# The service from a thread


class BackgroundService:
    """The service on real HTTP, from a thread with its own event loop (for clients that are not async code
    in the caller's loop: subprocess CLIs, schemathesis, dredd).

    The store (settings.store_url()) is opened inside that thread, since its connections belong to its
    loop. `settings.port` 0 picks a free port; `url` tells which.
    """

    def __init__(self, settings: Settings, clock: Clock | None = None, auth: AuthChoice = OPEN_ACCESS) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.auth = auth
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="styx-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_SECONDS):
            raise ServiceError(f"the local service did not start within {STARTUP_TIMEOUT_SECONDS} s")
        if self._error is not None:
            raise ServiceError(f"the local service failed to start: {self._error!r}") from self._error
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STARTUP_TIMEOUT_SECONDS)

    def __enter__(self) -> BackgroundService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _run(self) -> None:
        settings = self.settings
        try:
            store = await open_service_store(settings)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread waiting for start()
            self._error = exc
            self._ready.set()
            return
        service: Service | None = None
        try:
            service = await start_service(settings, store, self.clock, self.auth)
            self._server = uvicorn.Server(uvicorn_config(service.app, settings, log_level="warning"))
            serving, self.url = await listen(self._server)
            self._ready.set()
            await serving
        except BaseException as exc:  # noqa: BLE001 - handed to the thread waiting for start()
            self._error = exc
            self._ready.set()
        finally:
            if service is not None:
                await service.stop()
            await store.close()


if __name__ == "__main__":
    sys.exit(main())
