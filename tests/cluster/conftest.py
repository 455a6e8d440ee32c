"""The actor-system tests on the session's local Ray (tests/conftest.py `ray_runtime`); each test gets its own
namespace, Redis prefix and Docker label."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster.ray_system import RaySystem, start_ray_system
from styx_actors.settings import Settings
from tests.integration.conftest import remove_containers, scenario_settings


@pytest.fixture
def ray_settings(request: pytest.FixtureRequest, ray_runtime: None, tmp_path: Path) -> Settings:
    """Redis by default; `sqlite` (indirect parameter) has every actor process open the same SQLite file."""
    tag = uuid.uuid4().hex[:8]
    if getattr(request, "param", "redis") == "sqlite":
        store = f"sqlite:///{tmp_path / 'styx.db'}"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix=ray-{tag}"
    return scenario_settings(tmp_path, store=store, ray_namespace=f"styx-{tag}", runner="docker")


@pytest.fixture
async def ray_system(ray_settings: Settings) -> AsyncIterator[RaySystem]:
    system = await start_ray_system(ray_settings)
    yield system
    await system.kill()
    await system.store.close()
    remove_containers(ray_settings.docker_installation_id)
