"""Running the API service: the store, the actor system, the authentication mode, and uvicorn.

- `run_service(settings)`: the production path (`styx serve`): the actor system on Ray, the app on
  uvicorn at settings.host:settings.port. Startup problems raise ServiceError with a message that says
  what to change; `main()` prints it and exits non-zero.
- `create_local_service(...)`: the app over an in-process LocalActorSystem (tests, CLI tests).
- `BackgroundService`: that local service served over real HTTP from a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvicorn
import uvloop
from fastapi import FastAPI

from api.app import create_app
from api.deps import Services
from api.security import AllowAll, Authenticator, Authorizer, NoAuthentication
from styx_actors.actors.local import LocalActorSystem
from styx_actors.clock import Clock, SystemClock
from styx_actors.runners import make_runner
from styx_actors.runners.base import Runner
from styx_actors.settings import Settings
from styx_actors.store import Store, StoreError, open_store
from styx_actors.store.marker import StoreLost, establish_marker

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60.0


class ServiceError(RuntimeError):
    """The service cannot start; the message says why and what to change."""


# ---------------------------------------------------------------------------------------------------------
# Authentication mode


@dataclass(frozen=True)
class AuthChoice:
    authenticator: Authenticator
    authorizer: Authorizer
    enabled: bool  # changes (non-GET requests) need an authenticated caller


OPEN_ACCESS = AuthChoice(NoAuthentication(), AllowAll(), enabled=False)


def choose_auth(settings: Settings) -> AuthChoice:
    """Authentication and authorization as configured (api/auth, docs/auth.md): with STYX_AUTH=auto, Google
    ID tokens are required unless the service listens on a loopback address only, so a service reachable
    from other machines is never open by accident. The mode is logged loudly either way."""
    try:  # imported here: the Google libraries are only needed once a service starts
        from api.auth import build_security, google_authentication_enabled
    except ImportError as exc:
        raise ServiceError(f"The authentication modules (api.auth) cannot be imported: {exc}") from exc
    try:
        authenticator, authorizer = build_security(settings)
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc
    enabled = google_authentication_enabled(settings)
    if enabled:
        log.warning("AUTHENTICATION ON (Google ID tokens): changes need `Authorization: Bearer <token>`")
    else:
        log.warning(
            "AUTHENTICATION OFF (STYX_AUTH=%s): anyone who can reach %s:%d can change workflows, resources and "
            "backfills. Set STYX_AUTH=google to require Google ID tokens.",
            settings.auth,
            settings.host,
            settings.port,
        )
    return AuthChoice(authenticator, authorizer, enabled)


# ---------------------------------------------------------------------------------------------------------
# Startup checks


def _store_location(url: str) -> str:
    """The store URL without credentials, for messages."""
    parts = urlsplit(url)
    if parts.scheme.startswith("redis"):
        return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
    return url


async def open_service_store(settings: Settings) -> Store:
    """Open and ping the configured store and check its installation marker against the data dir, or raise
    ServiceError saying how to fix the configuration."""
    url = settings.store_url()
    if not settings.store:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = open_store(url)
    except ValueError as exc:
        raise ServiceError(f"STYX_STORE is not a store URL: {exc}") from exc
    try:
        await store.open()
        await store.ping()
    except (StoreError, OSError) as exc:
        await store.close()
        hint = "Is redis-server running there?" if url.startswith("redis") else "Check STYX_DATA_DIR / STYX_STORE."
        raise ServiceError(f"Cannot open the store at {_store_location(url)}: {exc}. {hint}") from exc
    try:
        await establish_marker(store, settings.data_dir)
    except StoreLost as exc:
        await store.close()
        raise ServiceError(f"Refusing to start on the store at {_store_location(url)}: {exc}") from exc
    return store


def ensure_port_free(host: str, port: int) -> None:
    """Fail before starting anything heavy when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServiceError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}. "
                "Stop whatever uses that port or choose another with STYX_PORT."
            ) from exc


# ---------------------------------------------------------------------------------------------------------
# The production service


def run_service(settings: Settings) -> None:
    """Serve the API over the actor system on Ray until interrupted. Raises ServiceError on startup failure.
    uvloop: the event loop's own overhead is a good part of a request's CPU (docs/performance.md)."""
    uvloop.run(_serve_on_ray(settings))


async def _serve_on_ray(settings: Settings) -> None:
    from cluster.ray_system import start_ray_system, stop_ray_system

    auth = choose_auth(settings)
    ensure_port_free(settings.host, settings.port)
    store = await open_service_store(settings)
    try:
        try:
            system = await start_ray_system(settings)
        except (ValueError, ConnectionError) as exc:
            raise ServiceError(f"Cannot start the actor system on Ray: {exc}") from exc
        services = Services(
            store=store,
            commands=system.commands,
            settings=settings,
            clock=SystemClock(),
            authenticator=auth.authenticator,
            authorizer=auth.authorizer,
            auth_enabled=auth.enabled,
        )
        config = uvicorn.Config(
            create_app(services),
            host=settings.host,
            port=settings.port,
            lifespan="off",
            server_header=False,
            access_log=settings.access_log,
        )
        log.info("serving the Styx v3 API on http://%s:%d/api/v3", settings.host, settings.port)
        try:
            await uvicorn.Server(config).serve()
        finally:
            await system.store.close()
    finally:
        stop_ray_system()
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
# In-process service over a LocalActorSystem


@dataclass
class LocalService:
    app: FastAPI
    system: LocalActorSystem
    services: Services

    async def stop(self) -> None:
        """Stop the actors; the store and runner stay open (their owner closes them)."""
        await self.system.stop()


async def create_local_service(
    settings: Settings,
    store: Store,
    runner: Runner,
    clock: Clock,
    auth: AuthChoice = OPEN_ACCESS,
    run_scheduler_loops: bool = True,
) -> LocalService:
    system = await LocalActorSystem.start(settings, store, runner, clock, run_scheduler_loops=run_scheduler_loops)
    services = Services(
        store=store,
        commands=system.commands,
        settings=settings,
        clock=clock,
        authenticator=auth.authenticator,
        authorizer=auth.authorizer,
        auth_enabled=auth.enabled,
    )
    return LocalService(app=create_app(services), system=system, services=services)


class BackgroundService:
    """A local service on real HTTP, from a thread with its own event loop (for clients that are not
    async code in the caller's loop: subprocess CLIs, schemathesis, dredd).

    The store (settings.store_url()) and the runner (settings.runner) are opened inside that thread, since
    their connections belong to its loop. `settings.port` 0 picks a free port; `url` tells which.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        auth: AuthChoice = OPEN_ACCESS,
        run_scheduler_loops: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.auth = auth
        self.run_scheduler_loops = run_scheduler_loops
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
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        runner = make_runner(settings, self.clock)
        service: LocalService | None = None
        try:
            service = await create_local_service(
                settings, store, runner, self.clock, self.auth, run_scheduler_loops=self.run_scheduler_loops
            )
            config = uvicorn.Config(
                service.app, host=settings.host, port=settings.port, lifespan="off", log_level="warning"
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve())
            deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
            while not self._server.started and not serving.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if not self._server.started:
                if serving.done():
                    serving.result()  # uvicorn exits when it cannot bind: surface that
                raise ServiceError(f"uvicorn did not start on {settings.host}:{settings.port}")
            host, port = self._server.servers[0].sockets[0].getsockname()[:2]
            self.url = f"http://{host}:{port}"
            self._ready.set()
            await serving
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            if service is not None:
                await service.stop()
            await runner.close()
            await store.close()


if __name__ == "__main__":
    sys.exit(main())
