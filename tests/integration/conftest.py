"""Fixtures for the actor-system tests: a real store (SQLite or Redis), a real Docker runner, the actors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import docker
import pytest

from styx_actors.actors.local import LocalActorSystem
from styx_actors.clock import ManualClock
from styx_actors.runners.docker import LABEL_INSTALLATION, DockerRunner
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_actors.store.redis import RedisStore
from styx_actors.store.sqlite import SqliteStore
from tests.conftest import settings_for_tests

TEST_IMAGE = "styx-test/busybox:latest"


def scenario_settings(data_dir: Path, **overrides: object) -> Settings:
    """The tests' settings (tests/conftest.py `settings_for_tests`) with Styx's own ticks."""
    return settings_for_tests(data_dir, "test", **overrides)


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        backend: Store = SqliteStore(tmp_path / "styx.db")
    else:
        backend = RedisStore(request.getfixturevalue("redis_url"), prefix=f"test-{uuid.uuid4().hex}")
    await backend.open()
    yield backend
    await backend.close()


def remove_containers(installation_id: str) -> None:
    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_INSTALLATION}={installation_id}"}):
            container.remove(force=True)
    finally:
        client.close()


SystemFactory = Callable[..., "LocalActorSystem"]


@pytest.fixture
async def start_system(store: Store, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Callable[..., object]]:
    """Start (and later stop) actor systems over the test's store with a real Docker runner."""
    started: list[tuple[LocalActorSystem, DockerRunner]] = []

    async def start(settings: Settings | None = None, use_clock: object = clock) -> LocalActorSystem:
        settings = settings or scenario_settings(tmp_path)
        runner = DockerRunner(settings)
        system = await LocalActorSystem.start(settings, store, runner, use_clock, run_scheduler_loops=False)
        started.append((system, runner))
        return system

    yield start
    for system, runner in started:
        await system.stop()
        await runner.close()
        remove_containers(runner.installation_id)
