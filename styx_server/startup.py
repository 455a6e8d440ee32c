"""Startup checks that fail early with a message saying what to change (the store, the port), and what the
ready line reports (`ready_line`: where the service answers, its store, its runner, whether Docker answers)."""

from __future__ import annotations

import asyncio
import logging
import socket

from styx_actors.runners.base import RunnerError
from styx_actors.runners.docker import DockerRunner
from styx_actors.settings import Settings
from styx_actors.store import Store, StoreError, open_store
from styx_actors.store.marker import StoreLost, establish_marker

log = logging.getLogger(__name__)

# How long the ready line waits for the Docker Engine's answer (a silent engine does not stop the service).
ENGINE_CHECK_SECONDS = 5.0


class ServiceError(RuntimeError):
    """The service cannot start; the message says why and what to change."""


async def open_service_store(settings: Settings) -> Store:
    """Open and ping the configured store and check its installation marker against the data dir, or raise
    ServiceError saying how to fix the configuration."""
    url = settings.store_url()
    if not settings.store:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = open_store(url)
        location = store.identity or url  # without credentials
    except ValueError as exc:
        raise ServiceError(f"STYX_STORE is not a store URL: {exc}") from exc
    try:
        await store.open()
        await store.ping()
    except (StoreError, OSError) as exc:
        await store.close()
        hint = "Is redis-server running there?" if url.startswith("redis") else "Check STYX_DATA_DIR / STYX_STORE."
        raise ServiceError(f"Cannot open the store at {location}: {str(exc).rstrip('.')}. {hint}") from exc
    try:
        await establish_marker(store, settings.data_dir)
    except StoreLost as exc:
        await store.close()
        raise ServiceError(f"Refusing to start on the store at {location}: {exc}") from exc
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


async def runner_summary(settings: Settings) -> str:
    """The runner, and for Docker whether the engine answers. A missing engine does not stop the service
    (executions fail and are retried, docs/runner.md), so it is said here, with what to do, at once."""
    if settings.runner == "noop":
        return "noop (no containers: every execution succeeds at once)"
    if settings.ray_address:
        return "docker (the Docker Engine of each Ray node)"
    runner = DockerRunner(settings)
    try:
        await asyncio.wait_for(runner.owned_executions(), ENGINE_CHECK_SECONDS)
    except (RunnerError, TimeoutError) as exc:
        reason = str(exc) or f"Docker Engine at {runner.engine_url} did not answer within {ENGINE_CHECK_SECONDS:g} s"
        log.warning(
            "%s. Executions fail (and are retried) until one answers: start one (bash scripts/setup-docker.sh) "
            "or point STYX_DOCKER_HOST at yours.",
            reason,
        )
        return f"docker (NO Docker Engine answers at {runner.engine_url})"
    finally:
        await runner.close()
    return f"docker (Docker Engine answered at {runner.engine_url})"


def actors_location(settings: Settings) -> str:
    if settings.actor_system == "local":
        return "this process"
    return f"the Ray cluster at {settings.ray_address}" if settings.ray_address else "a local Ray"


def ready_line(url: str, store: Store, settings: Settings, runner: str) -> str:
    """What a user needs once the service answers at `url`: where to point a browser and the CLI, and what
    it runs on."""
    return (
        f"styx-actors is ready. Dashboard: {url}/ | API: {url}/api/v3 | store: {store.identity or 'in memory'} | "
        f"runner: {runner} | actors: {actors_location(settings)} | Ctrl-C stops it"
    )
