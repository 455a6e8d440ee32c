"""Startup checks that fail early with a message saying what to change: the store and the port."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from styx_actors.settings import Settings
from styx_actors.store import Store, StoreError, open_store
from styx_actors.store.marker import StoreLost, establish_marker


class ServiceError(RuntimeError):
    """The service cannot start; the message says why and what to change."""


def store_location(url: str) -> str:
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
        raise ServiceError(f"Cannot open the store at {store_location(url)}: {exc}. {hint}") from exc
    try:
        await establish_marker(store, settings.data_dir)
    except StoreLost as exc:
        await store.close()
        raise ServiceError(f"Refusing to start on the store at {store_location(url)}: {exc}") from exc
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
