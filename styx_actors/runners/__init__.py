"""Runners run executions: `make_runner` picks the one the settings name (docker, or noop for benchmarks)."""

from __future__ import annotations

from styx_actors.clock import Clock
from styx_actors.runners.base import Runner
from styx_actors.runners.docker import DockerRunner
from styx_actors.runners.noop import NoopRunner
from styx_actors.settings import Settings


def make_runner(settings: Settings, clock: Clock | None = None) -> Runner:
    if settings.runner == "noop":
        return NoopRunner(runner_id=settings.docker_runner_id)
    return DockerRunner(settings, clock)
