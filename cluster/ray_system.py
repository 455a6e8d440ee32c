"""The actor system on Ray: named actors in the `styx` namespace, restarted by Ray and reloaded from the store.

Roles, each one Ray actor process hosting one of the plain actor classes of styx_actors.actors:
- `styx-shard-<i>`: an InstanceShard (hosts the instance actors whose key hashes to i),
- `styx-resources`: the ResourceBroker,
- `styx-scheduler`: natural triggers, backfill drivers, and the supervision ping of every shard,
- `styx-runner-<node>`: the Docker runner of one node, pinned to it, running at most STYX_RUNNER_CAPACITY
  executions; a shard starts an execution on its own node's runner while that has room, else on the least
  loaded runner with room, else waits for room (`PlacingRunner`, `styx_actors/actors/runner_choice.py`)
  (the noop runner runs inside each shard instead: it has nothing to share),
- `styx-instance-<sha1>`: in dedicated placement, one actor per active instance instead of shards.

Shards are spread over the nodes (`SPREAD`), optionally restricted to nodes offering
`STYX_SHARD_RESOURCES` (e.g. `{"styx_worker": 0.001}`); the scheduler and the broker run on the head node.
Every role is created with `max_restarts=-1`. A restarted actor rebuilds itself from the store when it is
first called; the scheduler pings every shard on each tick, so a restarted shard resumes its instances
within a tick even when nobody else calls it.

This module builds the actors (`ActorHost`, its options per role) and the system over them (`RaySystem`,
`start_ray_system`); the ports that reach them are in cluster/ray_ports.py, the runner actors and the
placement of executions on them in cluster/ray_runners.py.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cluster.local_ray import local_ray_init
from cluster.ray_ports import ActorDirectory, RayPort, actor_name, as_host, host_role, runner_role
from cluster.ray_runners import PlacingRunner, RunnerHost
from cluster.remote_errors import remote_result
from styx_actors.actors.batching import Call, Outcome, run_batch
from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.commands import Commands
from styx_actors.actors.interfaces import HostPort, SchedulerPort
from styx_actors.actors.local import CLEANUP_INTERVAL, load_resource_limits
from styx_actors.actors.loops import every
from styx_actors.actors.placement import (
    DEDICATED_ROLE_PREFIX,
    Dedicated,
    Sharded,
    dedicated_role,
)
from styx_actors.actors.ports import InstanceRouter
from styx_actors.actors.scheduler import Scheduler
from styx_actors.actors.shard import InstanceShard
from styx_actors.clock import Clock, SystemClock
from styx_actors.model import State, WorkflowInstance
from styx_actors.runners import make_runner
from styx_actors.runners.base import ExecutionRunner
from styx_actors.settings import Settings
from styx_actors.store import Store, open_store
from styx_actors.store.marker import remembered_marker
from styx_actors.validation import ValidationLimits

log = logging.getLogger(__name__)

# Every Ray head node offers one unit of this resource, and no other node does.
HEAD_NODE_RESOURCE = "node:__internal_head__"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ActorHost:
    """One Ray actor process hosting one role's object, built (and after a restart rebuilt) on first call."""

    def __init__(
        self,
        role: str,
        settings_json: str,
        instance_json: str | None = None,
        marker: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._role = role
        self._clock: Clock = clock or SystemClock()  # a test's shared ManualClock, or the system's
        self._settings = Settings.model_validate_json(settings_json)
        self._directory = ActorDirectory(self._settings.ray_namespace)
        self._instance = WorkflowInstance.model_validate_json(instance_json) if instance_json else None
        self._marker = marker  # the scheduler's: the installation marker the service established (MarkerGuard)
        self._target: Any = None
        self._starting: asyncio.Lock | None = None
        self._loops: list[asyncio.Task[None]] = []

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        target = await self._ensure_started()
        result = getattr(target, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def call_batch(self, calls: list[Call]) -> list[Outcome]:
        return await run_batch(await self._ensure_started(), calls)

    async def ping(self) -> str:
        await self._ensure_started()
        return self._role

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

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
        return self._directory.port(role)

    async def _build(self) -> Any:
        """Build the object this role hosts: a node's runner, the broker, the scheduler, or (every other
        role: `shard-N`, `instance-<sha1>`) a host of instances."""
        store = open_store(self._settings.store_url())
        await store.open()
        builders = {"runner": self._build_runner, "resources": self._build_broker, "scheduler": self._build_scheduler}
        build = builders.get(self._role.split("-", 1)[0], self._build_instances)
        return await build(store)

    async def _build_runner(self, store: Store) -> RunnerHost:
        runner_host = RunnerHost(self._role, self._settings, store, self._directory)
        self._loops.append(asyncio.create_task(every(CLEANUP_INTERVAL, runner_host.clean_up, random.Random())))
        return runner_host

    async def _build_broker(self, store: Store) -> BrokerHost:
        settings = self._settings
        broker = BrokerHost(
            on_granted=lambda holder, ids: self._port(host_role(settings, holder)).tell(HostPort.granted, holder, ids)
        )
        await load_resource_limits(broker.broker, store)
        # Counters come back from the snapshots the hosts hold; acquires wait until every host has reported.
        router = RayRouter(settings, store, self._clock, self._directory)
        broker.recover({port.role: as_host(port) for port in await router.host_ports()})
        return broker

    async def _build_scheduler(self, store: Store) -> Scheduler:
        settings = self._settings
        router = RayRouter(settings, store, self._clock, self._directory)
        scheduler = Scheduler(store, router.trigger, self._clock, settings, self._marker)
        await scheduler.start()
        self._loops.append(
            asyncio.create_task(every(settings.trigger_tick_interval, lambda: self._ping(router), random.Random()))
        )
        return scheduler

    async def _build_instances(self, store: Store) -> InstanceShard:
        settings = self._settings
        placement = (
            Dedicated(self._instance)
            if self._instance
            else Sharded(int(self._role.removeprefix("shard-")), settings.shard_count)
        )
        runner: ExecutionRunner
        if settings.runner == "noop":
            runner = make_runner(settings)
        else:
            start_node_runner(settings)
            runner = PlacingRunner(self._role, self._directory)
        scheduler_port = self._port("scheduler")

        def finished(instance: WorkflowInstance, trigger_id: str | None, state: State) -> None:
            scheduler_port.tell(SchedulerPort.instance_finished, instance, trigger_id, state)
            if self._instance is not None:  # a dedicated instance actor ends with its instance
                self._loops.append(asyncio.get_running_loop().create_task(self._exit()))  # held until the end

        shard = InstanceShard(
            placement, store, runner, self._directory.broker(), settings, self._clock, on_finished=finished
        )
        await shard.start()
        return shard

    async def _exit(self) -> None:
        await self._target.stop()  # let releases and notifications go out first
        # A graceful, intentional exit (never restarted) that runs after the calls in flight, such as the
        # `trigger` that created this actor, have replied.
        ray.get_runtime_context().current_actor.__ray_terminate__.remote()

    async def _ping(self, router: RayRouter) -> None:
        """Supervision: a restarted host rebuilds itself on its first call, so call every one of them."""
        await asyncio.gather(*(host.active_count() for host in await router.hosts()), return_exceptions=True)


class DedicatedPort(RayPort):
    """The port of one instance's own actor: created when the instance is triggered, absent otherwise (then
    every call but `trigger` answers None). A `HostPort` through `as_host`."""

    def __init__(self, instance: WorkflowInstance, settings: Settings, clock: Clock, directory: ActorDirectory) -> None:
        super().__init__(dedicated_role(instance.key()), directory)
        self._instance = instance
        self._settings = settings
        self._clock = clock

    def ensure(self) -> Any:
        """Create the instance's actor unless it exists (detached: it ends itself when the instance ends)."""
        return _host_options(self._role, self._settings, detached=True).remote(
            self._role, self._settings.model_dump_json(), self._instance.model_dump_json(), clock=self._clock
        )

    async def trigger(self, *args: Any) -> Any:
        return await remote_result(self.ensure().call.remote("trigger", *args))

    def __getattr__(self, method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                handle = self.handle()
            except ValueError:
                return None  # no actor: the instance is not active
            return await remote_result(handle.call.remote(method, *args, **kwargs))

        return call


class RayRouter(InstanceRouter):
    def __init__(self, settings: Settings, store: Store, clock: Clock, directory: ActorDirectory) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._directory = directory

    def port_for(self, instance: WorkflowInstance) -> HostPort:
        if self._settings.placement == "dedicated":
            return as_host(self._dedicated_port(instance))
        return self._directory.host(host_role(self._settings, instance.key()))

    async def hosts(self) -> list[HostPort]:
        return [as_host(port) for port in await self.host_ports()]

    async def host_ports(self) -> list[RayPort]:
        """The untyped ports of every host (their roles and handles): the shards, or in dedicated placement
        the actor of every active instance."""
        if self._settings.placement == "dedicated":
            return list(await self.dedicated_ports())
        return [self._directory.port(f"shard-{i}") for i in range(self._settings.shard_count)]

    async def dedicated_ports(self) -> list[DedicatedPort]:
        """In dedicated placement, the port of every active instance's actor (which may not exist yet)."""
        return [self._dedicated_port(s.workflow_instance) for s in await self._store.active_states()]

    def _dedicated_port(self, instance: WorkflowInstance) -> DedicatedPort:
        return DedicatedPort(instance, self._settings, self._clock, self._directory)


def _host_options(role: str, settings: Settings, detached: bool) -> Any:
    options: dict[str, Any] = {}
    if role.startswith("shard-"):
        options = {"scheduling_strategy": "SPREAD", "resources": dict(settings.shard_resources)}
    elif role in ("scheduler", "resources"):
        # On the head, next to the API: a cluster that lost its head (the GCS) is down anyway.
        options = {"resources": {HEAD_NODE_RESOURCE: 0.001}}
    elif role.startswith(DEDICATED_ROLE_PREFIX):
        # Its graceful exit (`__ray_terminate__`) must not be retried, which would bring it back.
        options = {"max_task_retries": 0}
    return ActorHost.options(  # type: ignore[attr-defined]  # what @ray.remote returns is not typed
        name=actor_name(role),
        namespace=settings.ray_namespace,
        get_if_exists=True,
        lifetime="detached" if detached else None,
        **options,
    )


def _existing_actor(role: str, settings: Settings) -> Any:
    try:
        return ray.get_actor(actor_name(role), namespace=settings.ray_namespace)
    except ValueError:
        raise ValueError(
            f"--api-only: no actor {actor_name(role)} in Ray namespace {settings.ray_namespace!r}; "
            "start one `styx serve` without --api-only first"
        ) from None


def start_node_runner(settings: Settings) -> None:
    """Make sure the node this process runs on has its runner actor (a node that joined after the start)."""
    node = ray.get_runtime_context().get_node_id()
    _runner_options(node, settings).remote(runner_role(node), settings.model_dump_json())


def _runner_options(node_id: str, settings: Settings) -> Any:
    """A node's runner lives on that node; should the node die, Ray restarts it elsewhere (soft affinity),
    where executions it cannot see any more are reported failed and retried."""
    return ActorHost.options(  # type: ignore[attr-defined]  # what @ray.remote returns is not typed
        name=actor_name(runner_role(node_id)),
        namespace=settings.ray_namespace,
        get_if_exists=True,
        lifetime="detached",
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=True),
    )


@dataclass
class RaySystem:
    """The front end's view of the actors on Ray (an `ActorSystem`, styx_actors/actors/system.py)."""

    commands: Commands
    store: Store
    router: RayRouter
    roles: list[str]
    directory: ActorDirectory
    # Non-detached named actors are garbage collected with their last handle: the system keeps them.
    handles: list[Any]
    detached: bool = False  # actors shared with other API processes (a Ray cluster): they outlive this one
    owns_store: bool = False
    started_ray: bool = False  # this process started the local Ray: it ends with the system

    def port(self, role: str) -> RayPort:
        return self.directory.port(role)

    async def tick(self) -> int:
        return await self.directory.scheduler().tick()

    async def active_count(self) -> int:
        counts = await self.router.broadcast(lambda host: host.active_count())
        return sum(count or 0 for count in counts)  # None: a dedicated instance's actor that is gone

    async def stop(self) -> None:
        """Leave the cluster: a local installation's actors end (they would with this driver anyway), a
        cluster's detached actors keep serving other API processes."""
        if not self.detached and not self.started_ray:
            await self.kill()
        # A local Ray ends with its actors: no call into it on the way out, which would hang on a Ray already
        # stopped (a SIGTERM sent to the whole process group, as systemd and `kill -- -PGID` do).
        self.directory.forget()
        if self.owns_store:
            await self.store.close()
        if self.started_ray and ray.is_initialized():
            ray.shutdown()

    async def kill(self) -> None:
        """Remove every actor of this system for good (tests; detached installations being torn down)."""
        # The shards are among the roles; dedicated instance actors are found through the store.
        hosts = await self.router.host_ports()
        for port in [*map(self.port, self.roles), *hosts]:
            try:
                ray.kill(port.handle(), no_restart=True)
            except ValueError:
                pass
        self.directory.forget()


def connect_ray(settings: Settings) -> bool:
    """Join the configured Ray cluster, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    # A local Ray stays on loopback (cluster/local_ray.py); a cluster's nodes use the addresses they were
    # started with.
    with local_ray_init(settings) as local:
        ray.init(
            **local,
            address=settings.ray_address,
            namespace=settings.ray_namespace,
            include_dashboard=False,
            # Ray's banners and warnings (the token-authentication notice...) are noise to a user who
            # started `styx serve`; its errors are not (docs/configuration.md, STYX_DEBUG).
            logging_level=logging.INFO if settings.debug else logging.ERROR,
            log_to_driver=False,
        )
    return settings.ray_address is None


async def start_ray_system(settings: Settings, store: Store | None = None, clock: Clock | None = None) -> RaySystem:
    """Create (or find, when they already run) every role's actor, wait until all answer, and return the
    facade over `store` (opened here, and closed on stop, when not given). The actors it creates read the
    time from `clock` (the system's by default; a test's ManualClock reaches them when shared through a
    file). Idempotent: several API processes can call it against one cluster."""
    if settings.ray_address and settings.store_url().startswith("sqlite"):
        raise ValueError(
            "a Ray cluster needs a store every node can reach, and SQLite is a file on one machine: "
            "start with --store redis://HOST:PORT/DB (or STYX_STORE)"
        )
    started_ray = connect_ray(settings)
    clock = clock or SystemClock()
    shards = [] if settings.placement == "dedicated" else [f"shard-{i}" for i in range(settings.shard_count)]
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]] if settings.runner != "noop" else []
    roles = [*(runner_role(node) for node in nodes), "resources", *shards, "scheduler"]
    detached = settings.ray_address is not None
    settings_json = settings.model_dump_json()
    if settings.api_only:
        handles = [_existing_actor(role, settings) for role in roles if not role.startswith("runner-")]
    else:
        handles = [_runner_options(node, settings).remote(runner_role(node), settings_json) for node in nodes]
        # Ray restarts an actor with its constructor's arguments: a restarted scheduler still knows the marker.
        marker = remembered_marker(settings.data_dir, open_store(settings.store_url()))
        handles += [
            _host_options(role, settings, detached).remote(
                role, settings_json, marker=marker if role == "scheduler" else None, clock=clock
            )
            for role in roles
            if not role.startswith("runner-")
        ]
    await asyncio.gather(*(handle.ping.remote() for handle in handles))
    owns_store = store is None
    if store is None:
        store = open_store(settings.store_url())
        await store.open()
    directory = ActorDirectory(settings.ray_namespace)
    router = RayRouter(settings, store, clock, directory)
    if settings.placement == "dedicated":  # resume every active instance in its own actor
        await asyncio.gather(*(host.ensure().ping.remote() for host in await router.dedicated_ports()))
    commands = Commands(
        store,
        router,
        directory.scheduler(),
        directory.broker(),
        clock,
        ValidationLimits.from_settings(settings),
        runners=[directory.runner(role) for role in roles if role.startswith("runner-")],
    )
    return RaySystem(
        commands=commands,
        store=store,
        router=router,
        roles=roles,
        directory=directory,
        handles=handles,
        detached=detached,
        owns_store=owns_store,
        started_ray=started_ray,
    )
