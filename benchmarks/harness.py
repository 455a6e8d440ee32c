"""What the service benchmarks share: a throwaway Redis, the service on a local Ray (in this process, or the
production service as a child process), memory sampling, and counting finished instances in the store.

Every benchmark starts what it needs and stops it again by its own PID (redis-server) or through Ray's own
shutdown (the local Ray cluster `ray.init()` started); `--redis-url` points a benchmark at an existing Redis
instead, whose keys it writes under a unique prefix and removes afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import docker
import httpx
import psutil
import ray
import redis
from store_recovery import redis_server, remove_keys

from cluster.local_cluster import free_port
from cluster.ray_system import RaySystem, start_ray_system
from styx_actors.model import Workflow, WorkflowConfiguration, WorkflowId, WorkflowInstance, WorkflowState
from styx_actors.runners.docker import LABEL_INSTALLATION
from styx_actors.settings import Settings
from styx_actors.store import open_store
from styx_actors.store.base import Store
from styx_actors.store.redis import RedisKeys

COMPONENT = "bench"
TEST_IMAGE = "styx-test/busybox:latest"
API = "/api/v3"
REPOSITORY = Path(__file__).resolve().parent.parent
SERVICE_STARTUP_SECONDS = 120
# Transitions of one instance that runs once and succeeds: triggerExecution, dequeue, submit, submitted,
# started, terminate, success.
TRANSITIONS_PER_RUN = 7


def add_redis_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="an existing Redis (default: start a redis-server on a free port)")


@contextmanager
def redis_url(given: str | None) -> Iterator[tuple[str, str]]:
    """(Redis URL, key prefix) for one benchmark run; the keys are removed afterwards."""
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    if given:
        try:
            yield given, prefix
        finally:
            remove_keys(given, prefix)
    else:
        with redis_server() as url:
            yield url, prefix


def bench_settings(url: str, prefix: str, **overrides: object) -> Settings:
    """Styx's defaults, the noop runner, and a private store prefix, Ray namespace and Docker label."""
    tag = prefix.removeprefix("bench-")
    values: dict[str, object] = {
        "store": f"{url}?prefix={prefix}",
        "runner": "noop",
        "ray_namespace": f"styx-{tag}",
        "docker_installation_id": f"styx-bench-{tag}",
        "data_dir": Path(tempfile.gettempdir()) / f"styx-bench-{tag}",
        "container_network": "none",
    }
    values.update(overrides)
    return Settings(**values)


def start_local_ray() -> None:
    """A local Ray cluster for this process alone (`ray.shutdown()` stops it)."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, namespace="styx-bench")


@asynccontextmanager
async def ray_service(settings: Settings) -> AsyncIterator[RaySystem]:
    """The service's actors on the local Ray; every actor is killed afterwards."""
    system = await start_ray_system(settings)
    try:
        yield system
    finally:
        await system.kill()
        await system.store.close()


@contextmanager
def api_service(url: str, prefix: str, **settings: str) -> Iterator[tuple[str, int]]:
    """The production service (`python -m styx_server.service`: the actors on its own local Ray, uvicorn on a
    free loopback port, the noop runner, no authentication) as a child process; its base URL and PID.
    `settings` are more `STYX_*` variables (`event_retention="PT5M"`). Stopped with SIGINT (then SIGKILL) by PID."""
    port = free_port()
    env = {
        **os.environ,
        "STYX_STORE": f"{url}?prefix={prefix}",
        "STYX_RUNNER": "noop",
        "STYX_HOST": "127.0.0.1",
        "STYX_PORT": str(port),
        "STYX_AUTH": "none",
        "STYX_RAY_NAMESPACE": f"styx-{prefix}",
        "STYX_DATA_DIR": str(Path(tempfile.gettempdir()) / f"styx-{prefix}"),
        **{f"STYX_{name.upper()}": value for name, value in settings.items()},
    }
    log = tempfile.TemporaryFile()
    # From the repository root: run from benchmarks/, benchmarks/api.py would shadow the `api` package.
    process = subprocess.Popen(
        [sys.executable, "-m", "styx_server.service"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVICE_STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise SystemExit(f"the service exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{base}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the service did not answer within {SERVICE_STARTUP_SECONDS} s")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Store]:
    store = open_store(settings.store_url())
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def remove_containers(installation_id: str) -> None:
    """Remove the containers a benchmark's service left behind (finished ones are kept for a grace period)."""
    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_INSTALLATION}={installation_id}"}):
            container.remove(force=True)
    finally:
        client.close()


# -- workflows --------------------------------------------------------------------------------------------


def workflow_config(name: str, schedule: str, script: str = "true", **extra: object) -> WorkflowConfiguration:
    return WorkflowConfiguration(
        id=name, schedule=schedule, docker_image=TEST_IMAGE, docker_args=["sh", "-c", script], **extra
    )


async def write_workflows(
    store: Store, configs: Iterable[WorkflowConfiguration], state: WorkflowState, chunk: int = 500
) -> list[WorkflowId]:
    """Put workflows straight into the store (deploying thousands through the API is not what is measured);
    a scheduler started afterwards loads them."""
    workflows = [Workflow.create(COMPONENT, config) for config in configs]
    for offset in range(0, len(workflows), chunk):
        await asyncio.gather(*(store.put_workflow(w, state) for w in workflows[offset : offset + chunk]))
    return [w.id for w in workflows]


# -- progress, read from the store ------------------------------------------------------------------------

# KEYS: event lists; ARGV[1]: text. Counts the lists whose last entry contains the text.
_COUNT_LAST_SCRIPT = """
local count = 0
for _, key in ipairs(KEYS) do
  local last = redis.call('LINDEX', key, -1)
  if last and string.find(last, ARGV[1], 1, true) then count = count + 1 end
end
return count
"""
# KEYS: event lists; ARGV[1]: an index. The timestamp of the entry at that index of every list
# (entries are `counter timestamp json`), -1 for a list without one.
_TIMESTAMPS_SCRIPT = """
local stamps = {}
for i, key in ipairs(KEYS) do
  local entry = redis.call('LINDEX', key, ARGV[1])
  stamps[i] = entry and tonumber(string.match(entry, '^%-?%d+ (%d+) ')) or -1
end
return stamps
"""
_SUCCESS = '"@type":"success"'
_CHUNK = 2000  # keys per script call: Lua's stack stays small and Redis stays responsive
POLL_SHARE_OF_REDIS = 0.05  # the most of Redis's time that waiting for a burst may take


class Progress:
    """Counts instances whose event log ends in `success`, with one server-side script per chunk of keys
    (so that polling 10,000 instances costs the driver a few milliseconds, not 10,000 replies)."""

    def __init__(self, url: str, prefix: str, instances: list[WorkflowInstance]) -> None:
        self._client = redis.Redis.from_url(url)
        keys = RedisKeys(prefix)
        self._event_keys = [keys.events(instance) for instance in instances]
        self._count_last = self._client.register_script(_COUNT_LAST_SCRIPT)
        self._timestamps = self._client.register_script(_TIMESTAMPS_SCRIPT)
        self._snapshots = keys.snapshots

    def succeeded(self) -> int:
        return sum(int(self._count_last(keys=chunk, args=[_SUCCESS])) for chunk in self._chunks())

    def active(self) -> int:
        return int(self._client.hlen(self._snapshots))

    def first_event_millis(self) -> int:
        """The earliest first event of the instances (the first trigger)."""
        return min(min(int(t) for t in self._timestamps(keys=chunk, args=[0])) for chunk in self._chunks())

    def last_event_millis(self) -> int:
        """The latest last event of the instances (the last DONE, once all are done)."""
        return max(max(int(t) for t in self._timestamps(keys=chunk, args=[-1])) for chunk in self._chunks())

    async def wait_all_succeeded(self, timeout: float, poll: float = 0.1) -> None:
        """Polls at most every `poll` seconds, and less often as the scan grows: each scan keeps Redis busy for
        about 1.5 µs per instance, and polling 100,000 every 0.1 s took most of Redis's time from the service it
        measures. Figures come from the stored timestamps, not from when the poll saw them."""
        deadline = time.monotonic() + timeout
        total = len(self._event_keys)
        while True:
            scan_started = time.monotonic()
            if (done := self.succeeded()) >= total:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done} of {total} instances done after {timeout:.0f} s ({self.active()} active)")
            scan = time.monotonic() - scan_started
            await asyncio.sleep(max(poll, scan * (1 / POLL_SHARE_OF_REDIS - 1)))

    async def wait_active(self, count: int, timeout: float, poll: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while (active := self.active()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{active} of {count} instances active after {timeout:.0f} s")
            await asyncio.sleep(poll)

    def close(self) -> None:
        self._client.close()

    def _chunks(self) -> Iterator[list[str]]:
        for offset in range(0, len(self._event_keys), _CHUNK):
            yield self._event_keys[offset : offset + _CHUNK]


def millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


# -- memory -----------------------------------------------------------------------------------------------


def service_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    """The service's driver (this process, or `root`) and its Ray actor processes (descendants of the Ray it
    started)."""
    driver = root or psutil.Process()
    actors = [p for p in driver.children(recursive=True) if _name(p).startswith("ray::ActorHost")]
    return [driver, *actors]


def ray_daemons(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Ray's own processes (GCS, raylet, agents, idle workers): paid once per node, whatever the load."""
    driver = root or psutil.Process()
    return [p for p in driver.children(recursive=True) if not _name(p).startswith("ray::ActorHost")]


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def rss(processes: Iterable[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass  # ended meanwhile (a dedicated instance actor exits with its instance)
    return total


@dataclass
class MemorySampler:
    """Samples the summed RSS of the service processes from a thread, keeping the peak."""

    interval: float = 0.1
    peak: int = 0
    peak_processes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            processes = service_processes()
            total = rss(processes)
            if total > self.peak:
                self.peak, self.peak_processes = total, len(processes)
            self._stop.wait(self.interval)


MIB = 1 << 20


def mib(size: int) -> str:
    return f"{size / MIB:,.0f} MiB"
