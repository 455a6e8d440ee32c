"""The actor system on Ray: named actors in the `styx` namespace, restarted by Ray and reloaded from the store.

Roles, each one Ray actor process hosting one of the plain actor classes of styx_actors.actors:
- `styx-shard-<i>`: an InstanceShard (hosts the instance actors whose key hashes to i),
- `styx-resources`: the ResourceBroker,
- `styx-scheduler`: natural triggers, backfill drivers, and the supervision ping of every shard,
- `styx-runner`: the Docker runner (the noop runner runs inside each shard instead: it has nothing to share).

Every role is created with `max_restarts=-1`. A restarted actor rebuilds itself from the store when it is
first called; the scheduler pings every shard on each tick, so a restarted shard resumes its instances
within a tick even when nobody else calls it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import ray

from styx_actors.actors.commands import Commands
from styx_actors.actors.local import load_resource_limits
from styx_actors.actors.loops import every
from styx_actors.actors.ports import InstanceRouter
from styx_actors.actors.resources import ResourceBroker
from styx_actors.actors.scheduler import Scheduler
from styx_actors.actors.shard import InstanceShard, shard_index
from styx_actors.clock import SystemClock
from styx_actors.runners import make_runner
from styx_actors.runners.base import ExecutionStatus, RunSpec
from styx_actors.settings import Settings
from styx_actors.store import Store, open_store
from styx_actors.timeouts import TimeoutConfig

log = logging.getLogger(__name__)

def actor_name(role: str) -> str:
    return f"styx-{role}"


class RayPort:
    """Await any method of a named actor's hosted object (looked up lazily, so restarts are transparent)."""

    def __init__(self, role: str, namespace: str) -> None:
        self._role = role
        self._namespace = namespace

    def handle(self) -> Any:
        return ray.get_actor(actor_name(self._role), namespace=self._namespace)

    def __getattr__(self, method: str):
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.handle().call.remote(method, *args, **kwargs)

        return call

    def tell(self, method: str, *args: Any) -> None:
        """Fire and forget (notifications that must not block the sender)."""
        self.handle().call.remote(method, *args)


class RemoteRunner:
    """The Runner protocol over the runner actor; its status updates are pushed to the shards directly."""

    def __init__(self, shard: int, namespace: str) -> None:
        self._port = RayPort("runner", namespace)
        self._shard = shard
        self.runner_id = "docker"

    async def start(self, spec: RunSpec) -> None:
        await self._port.start_for_shard(spec, self._shard)

    async def status(self, execution_id: str) -> ExecutionStatus:
        return await self._port.status(execution_id)

    async def stop(self, execution_id: str) -> None:
        await self._port.stop(execution_id)

    def watch(self, listener: Any) -> None:
        """Nothing to register: the runner actor calls `runner_status` on the shard."""

    async def close(self) -> None:
        pass


class RunnerHost:
    """The runner actor's object: a Runner that forwards status updates to the shard owning the execution."""

    def __init__(self, settings: Settings) -> None:
        self._runner = make_runner(settings)
        self._shard_count = settings.shard_count
        self._namespace = settings.ray_namespace
        self._owner: dict[str, int] = {}
        self._runner.watch(self._forward)

    async def start_for_shard(self, spec: RunSpec, shard: int) -> None:
        self._owner[spec.execution_id] = shard
        await self._runner.start(spec)

    def _forward(self, execution_id: str, status: ExecutionStatus) -> None:
        shard = self._owner.get(execution_id)
        shards = range(self._shard_count) if shard is None else [shard]
        for index in shards:
            RayPort(f"shard-{index}", self._namespace).tell("runner_status", execution_id, status)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ActorHost:
    """One Ray actor process hosting one role's object, built (and after a restart rebuilt) on first call."""

    def __init__(self, role: str, settings_json: str) -> None:
        self._role = role
        self._settings = Settings.model_validate_json(settings_json)
        self._target: Any = None
        self._starting: asyncio.Lock | None = None
        self._loops: list[asyncio.Task[None]] = []

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        target = await self._ensure_started()
        result = getattr(target, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def ping(self) -> str:
        await self._ensure_started()
        return self._role

    def pid(self) -> int:
        return os.getpid()

    async def _ensure_started(self) -> Any:
        if self._target is not None:
            return self._target
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._target is None:
                self._target = await self._build()
        return self._target

    def _port(self, role: str) -> RayPort:
        return RayPort(role, self._settings.ray_namespace)

    async def _build(self) -> Any:
        settings = self._settings
        clock = SystemClock()
        if self._role == "runner":
            return RunnerHost(settings)
        store = open_store(settings.store_url())
        await store.open()
        count = settings.shard_count
        if self._role == "resources":
            broker = ResourceBroker(
                on_granted=lambda holder, ids: self._port(f"shard-{shard_index(holder, count)}").tell("granted", holder, ids)
            )
            await load_resource_limits(broker, store)
            for index in range(count):  # counters come back from the instance snapshots the shards hold
                self._port(f"shard-{index}").tell("report_holders")
            return broker
        router = InstanceRouter([self._port(f"shard-{i}") for i in range(count)])
        if self._role == "scheduler":
            scheduler = Scheduler(store, router.trigger, clock, settings)
            await scheduler.start()
            self._loops.append(asyncio.create_task(every(settings.trigger_tick_interval, self._ping_shards, random.Random())))
            return scheduler
        if self._role.startswith("shard-"):
            index = int(self._role.removeprefix("shard-"))
            runner = make_runner(settings) if settings.runner == "noop" else RemoteRunner(index, settings.ray_namespace)
            scheduler = self._port("scheduler")
            shard = InstanceShard(
                index, count, store, runner, self._port("resources"), settings, clock,
                on_finished=lambda instance, trigger_id, state: scheduler.tell("instance_finished", instance, trigger_id, state),
            )
            await shard.start()
            return shard
        raise ValueError(f"unknown role {self._role}")

    async def _ping_shards(self) -> None:
        await asyncio.gather(*(self._port(f"shard-{i}").active_count() for i in range(self._settings.shard_count)))


@dataclass
class RaySystem:
    """The front end's view of the actors on Ray."""

    commands: Commands
    store: Store
    roles: list[str]
    namespace: str
    # Non-detached named actors are garbage collected with their last handle: the system keeps them.
    handles: list[Any]

    def port(self, role: str) -> RayPort:
        return RayPort(role, self.namespace)

    def kill(self) -> None:
        """Remove every actor of this system for good (tests; detached installations being torn down)."""
        for role in self.roles:
            try:
                ray.kill(self.port(role).handle(), no_restart=True)
            except ValueError:
                pass


def connect_ray(settings: Settings) -> None:
    if not ray.is_initialized():
        ray.init(
            address=settings.ray_address,
            namespace=settings.ray_namespace,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )


async def start_ray_system(settings: Settings) -> RaySystem:
    """Create (or find, when they already run) every role's actor, wait until all answer, and return the
    facade. Idempotent: several API processes can call it against one cluster."""
    connect_ray(settings)
    roles = ["resources", *(f"shard-{i}" for i in range(settings.shard_count)), "scheduler"]
    if settings.runner != "noop":
        roles.insert(0, "runner")
    detached = settings.ray_address is not None
    settings_json = settings.model_dump_json()
    handles = [
        ActorHost.options(
            name=actor_name(role),
            namespace=settings.ray_namespace,
            get_if_exists=True,
            lifetime="detached" if detached else None,
        ).remote(role, settings_json)
        for role in roles
    ]
    await asyncio.gather(*(handle.ping.remote() for handle in handles))
    store = open_store(settings.store_url())
    await store.open()
    namespace = settings.ray_namespace
    router = InstanceRouter([RayPort(f"shard-{i}", namespace) for i in range(settings.shard_count)])
    commands = Commands(
        store, router, RayPort("scheduler", namespace), RayPort("resources", namespace), SystemClock(),
        TimeoutConfig.from_settings(settings),
    )
    return RaySystem(commands=commands, store=store, roles=roles, namespace=namespace, handles=handles)


def stop_ray_system() -> None:
    """Leave the cluster; actors of a local Ray end with it, detached ones keep serving other API processes."""
    if ray.is_initialized():
        ray.shutdown()
