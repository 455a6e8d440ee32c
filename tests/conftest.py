"""Shared fixtures: real services started for the test session, and an injectable clock."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cluster.local_cluster import free_port
from styx_actors.clock import ManualClock
from styx_actors.settings import Settings
from styx_actors.timeutil import UTC


def settings_for_tests(data_dir: Path, label: str, **overrides: Any) -> Settings:
    """The settings every test package starts from: Styx's defaults, two shards, the delays a test cannot wait
    for shortened, no network and no grace period for containers, and a private Docker label and Ray
    namespace (`label` names the package: `styx-<label>-<random>`). Each package adds what it needs."""
    tag = f"styx-{label}-{uuid.uuid4().hex[:8]}"
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "shard_count": 2,
        "docker_installation_id": tag,
        "ray_namespace": tag,
        "container_network": "none",
        "container_grace_period": timedelta(seconds=0),
        "state_manager_tick_interval": timedelta(seconds=1),
        "workflow_cache_ttl": timedelta(seconds=0),
    }
    values.update(overrides)
    return Settings(**values)


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll `condition` until it returns a truthy value or the deadline passes (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


async def wait_until(condition, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Async `wait_for`: `condition` may be a coroutine function; polled until truthy or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


class RedisServer:
    """A throwaway redis-server on a free loopback port, stopped by PID."""

    def __init__(self, appendonly: bool = False) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="styx-redis-")
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (run .ci/run or `apt-get install redis-server`)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, timeout=10, message=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def running_redis(appendonly: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def volatile_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, without persistence: a restart loses everything."""
    with running_redis(appendonly=False) as server:
        yield server


@pytest.fixture
def redis_with_aof() -> Iterator[RedisServer]:
    """A Redis of the test's own with AOF: a restart keeps everything acknowledged."""
    with running_redis(appendonly=True) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return os.environ.get("STYX_TEST_REDIS_URL") or redis_server.url


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    """One local Ray for the whole test session (starting one costs seconds); tests keep apart by namespace."""
    import ray

    from cluster.local_ray import local_ray_init
    from styx_actors.settings import Settings

    with local_ray_init(Settings(ray_address=None)) as local:
        ray.init(**local, namespace="styx-tests", include_dashboard=False, log_to_driver=False, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2016, 3, 14, 15, 30, tzinfo=UTC))
