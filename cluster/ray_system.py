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
`STYX_SHARD_RESOURCES` (e.g. `{"styx_worker": 0.001}`); the scheduler and the broker run on the head node. Every role is created with `max_restarts=-1`. A restarted actor rebuilds itself from the store when it is
first called; the scheduler pings every shard on each tick, so a restarted shard resumes its instances
within a tick even when nobody else calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cluster.local_ray import local_ray_init
from cluster.remote_errors import remote_result
from styx_actors.actors.batching import Call, CallBatcher, Outcome, run_batch
from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.commands import Commands
from styx_actors.actors.janitor import clean_up_executions
from styx_actors.actors.local import CLEANUP_INTERVAL, load_resource_limits
from styx_actors.actors.loops import every
from styx_actors.actors.placement import (
    DEDICATED_ROLE_PREFIX,
    Dedicated,
    Sharded,
    dedicated_role,
    shard_index,
)
from styx_actors.actors.ports import InstanceRouter
from styx_actors.actors.runner_choice import RunnerLoad, choose_runner, holder
from styx_actors.actors.scheduler import Scheduler
from styx_actors.actors.shard import InstanceShard
from styx_actors.clock import Clock, SystemClock
from styx_actors.model import State, WorkflowInstance
from styx_actors.runners import make_runner
from styx_actors.runners.base import (
    ExecutionStatus,
    Exited,
    Failed,
    NotFound,
    Pending,
    RunnerError,
    Running,
    RunSpec,
)
from styx_actors.settings import Settings
from styx_actors.store import Store, open_store
from styx_actors.store.marker import remembered_marker
from styx_actors.timeouts import TimeoutConfig

log = logging.getLogger(__name__)

# Placement of executions on runners (PlacingRunner): while no runner has room a start asks again after
# a delay doubling from the minimum to the maximum; a runner that does not answer a load query in time
# counts as unknown (choose_runner); the runner list is read again after its TTL (nodes join and leave).
PLACEMENT_RETRY_MIN_SECONDS = 0.5
PLACEMENT_RETRY_MAX_SECONDS = 10.0
LOAD_TIMEOUT_SECONDS = 5.0
RUNNER_LIST_TTL = 10.0
PLACED_CACHE_SIZE = 10_000
STOPPED_WHILE_WAITING = "Stopped while waiting for a runner with capacity"
# Every Ray head node offers one unit of this resource, and no other node does.
HEAD_NODE_RESOURCE = "node:__internal_head__"


def actor_name(role: str) -> str:
    return f"styx-{role}"


# The per-instance calls of a burst: batched (styx_actors/actors/batching.py). Their exceptions are plain
# (picklable as a value); other methods go one Ray call each, whose errors Ray itself carries.
BATCHED_METHODS = frozenset(
    {"trigger", "acquire", "release", "granted", "instance_finished", "runner_status", "start_for", "status", "stop", "load"}
)
_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], CallBatcher]] = (
    weakref.WeakKeyDictionary()
)


# Handles of the long-lived actors by (namespace, role). `ray.get_actor` costs a GCS round trip and more CPU
# than the call it serves; a handle stays valid across Ray's restarts of its actor, and one whose actor died
# for good (killed, replaced by a redeployment) is dropped on the ActorDiedError it causes. Dedicated
# instance actors come and go: they are looked up each time.
_handles: dict[tuple[str, str], Any] = {}


class RayPort:
    """Await any method of a named actor's hosted object (looked up lazily, so restarts are transparent)."""

    def __init__(self, role: str, namespace: str) -> None:
        self._role = role
        self._namespace = namespace

    def handle(self) -> Any:
        if self._role.startswith(DEDICATED_ROLE_PREFIX):
            return ray.get_actor(actor_name(self._role), namespace=self._namespace)
        key = (self._namespace, self._role)
        found = _handles.get(key)
        if found is None:
            found = _handles[key] = ray.get_actor(actor_name(self._role), namespace=self._namespace)
        return found

    async def _remote(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the actor object itself (`call`, `call_batch`, `pid`, ...)."""
        try:
            return await remote_result(getattr(self.handle(), method).remote(*args, **kwargs))
        except ActorDiedError:
            _handles.pop((self._namespace, self._role), None)
            raise

    def __getattr__(self, method: str):
        async def call(*args: Any, **kwargs: Any) -> Any:
            if method in BATCHED_METHODS and not kwargs:
                return await self._batcher().call(method, args)
            return await self._remote("call", method, *args, **kwargs)

        return call

    def tell(self, method: str, *args: Any) -> None:
        """Fire and forget (notifications that must not block the sender)."""
        self._batcher().tell(method, args)

    def _batcher(self) -> CallBatcher:
        """One batcher per actor and event loop, shared by every port of that actor."""
        per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
        key = (self._namespace, self._role)
        if key not in per_loop:
            per_loop[key] = CallBatcher(lambda calls: self._remote("call_batch", calls))
        return per_loop[key]


class PlacingRunner:
    """The Runner protocol over the runner actors of every node: a start goes to a runner with room
    (`choose_runner`), status and stop go to the runner that holds the execution. Status updates are pushed
    by the runner actors to the shards directly."""

    def __init__(self, owner_role: str, settings: Settings) -> None:
        node = ray.get_runtime_context().get_node_id()
        self._own_role = runner_role(node)
        _runner_options(node, settings).remote(self._own_role, settings.model_dump_json())
        self._owner_role = owner_role
        self._namespace = settings.ray_namespace
        # Execution id -> role of the runner holding it, most recent last. Only a cache: after a restart of
        # this shard, or past its bound, the runners themselves are asked.
        self._placed: OrderedDict[str, str] = OrderedDict()
        self._waiting: dict[str, asyncio.Event] = {}  # starts in progress; set = stopped meanwhile
        self._roles: list[str] = []
        self._roles_listed_at = -RUNNER_LIST_TTL
        self.runner_id = "docker"

    async def start(self, spec: RunSpec) -> None:
        """Start on a runner with room; while none has room, wait (backoff) and ask again, until a stop."""
        execution_id = spec.execution_id
        stopped = self._waiting.setdefault(execution_id, asyncio.Event())
        delay = PLACEMENT_RETRY_MIN_SECONDS
        try:
            while not stopped.is_set():
                role = self._placed.pop(execution_id, None) or await self._choose(execution_id)
                if role is not None and await self._port(role).start_for(spec, self._owner_role):
                    self._remember(execution_id, role)
                    return
                # No runner has room, or the chosen one filled up since it reported: wait, then ask again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, PLACEMENT_RETRY_MAX_SECONDS)
            raise RunnerError(STOPPED_WHILE_WAITING)
        finally:
            if self._waiting.get(execution_id) is stopped:
                del self._waiting[execution_id]

    async def status(self, execution_id: str) -> ExecutionStatus:
        role = await self._holder(execution_id)
        return NotFound() if role is None else await self._port(role).status(execution_id)

    async def stop(self, execution_id: str) -> None:
        if execution_id in self._waiting:
            self._waiting[execution_id].set()
        role = await self._holder(execution_id)
        if role is not None:
            await self._port(role).stop(execution_id)
            self._placed.pop(execution_id, None)

    def watch(self, listener: Any) -> None:
        """Nothing to register: the runner actors call `runner_status` on the shard."""

    async def close(self) -> None:
        pass

    async def _choose(self, execution_id: str) -> str | None:
        if self._runner_roles() == [self._own_role]:
            # One node: its runner checks its room and finds the execution's container itself (start_for),
            # so the load round trip (an engine call per start) would only cost.
            return self._own_role
        loads, all_answered = await self._loads(execution_id)
        return choose_runner(loads, self._own_role, all_answered)

    async def _holder(self, execution_id: str) -> str | None:
        """The runner holding the execution, None when no runner does. Raises RunnerError when none of those
        that answered holds it and another did not answer (unknown is not absent)."""
        role = self._placed.get(execution_id)
        if role is None:
            loads, all_answered = await self._loads(execution_id)
            role = holder(loads)
            if role is not None:
                self._remember(execution_id, role)
            elif not all_answered:
                raise RunnerError(f"Cannot tell where execution {execution_id} runs: a runner did not answer")
        return role

    def _remember(self, execution_id: str, role: str) -> None:
        self._placed[execution_id] = role
        self._placed.move_to_end(execution_id)
        if len(self._placed) > PLACED_CACHE_SIZE:
            self._placed.popitem(last=False)

    async def _loads(self, execution_id: str) -> tuple[list[RunnerLoad], bool]:
        """What the runners answering within LOAD_TIMEOUT report (one restarting with its node is not waited
        for), and whether every runner answered."""
        replies = await asyncio.gather(
            *(asyncio.wait_for(self._port(role).load(execution_id), LOAD_TIMEOUT_SECONDS) for role in self._runner_roles()),
            return_exceptions=True,
        )
        loads = [reply for reply in replies if isinstance(reply, RunnerLoad)]
        return loads, len(loads) == len(replies)

    def _runner_roles(self) -> list[str]:
        """Every runner actor of this installation (one per node that has run a shard or a service start)."""
        if time.monotonic() - self._roles_listed_at > RUNNER_LIST_TTL:
            prefix = actor_name("runner-")
            named = ray.util.list_named_actors(all_namespaces=True)
            self._roles = sorted(
                {self._own_role}
                | {a["name"].removeprefix("styx-") for a in named if a["namespace"] == self._namespace and a["name"].startswith(prefix)}
            )
            self._roles_listed_at = time.monotonic()
        return self._roles

    def _port(self, role: str) -> RayPort:
        return RayPort(role, self._namespace)


class RunnerHost:
    """The runner actor's object: a Runner with a capacity (settings.runner_capacity executions at once), which
    counts the executions it runs and forwards their status updates to the shard owning each."""

    def __init__(self, role: str, settings: Settings, store: Store) -> None:
        self._role = role
        self._runner = make_runner(settings)
        self._store = store
        self._settings = settings
        self._owner: dict[str, str] = {}  # execution id -> role of the host of its instance
        # Started through this actor and not seen ending. Executions started before it (re)started are not
        # counted: a restarted runner may run over its capacity until they end.
        self._running: set[str] = set()
        self._starting: set[str] = set()
        self._runner.watch(self._forward)

    async def load(self, execution_id: str) -> RunnerLoad:
        """This runner's capacity and load, and whether it runs or holds `execution_id` (`RunnerLoad`)."""
        runs = execution_id in self._running
        return self._load(holds=runs or await self._has_container(execution_id), runs=runs)

    def _load(self, holds: bool = False, runs: bool = False) -> RunnerLoad:
        return RunnerLoad(self._role, self._settings.runner_capacity, len(self._running), holds, runs)

    def _has_room(self) -> bool:
        return self._load().has_room

    async def start_for(self, spec: RunSpec, owner_role: str) -> bool:
        """Start the execution for the host `owner_role`; False, starting nothing, when this runner is full."""
        execution_id = spec.execution_id
        # Full; yet a container of it already here (started before this actor restarted) is taken back.
        if execution_id not in self._running and not self._has_room() and not await self._has_container(execution_id):
            return False
        self._running.add(execution_id)  # no await since the room check: two starts never share the last slot
        self._owner[execution_id] = owner_role
        self._starting.add(execution_id)
        try:
            await self._runner.start(spec)
        except BaseException:
            self._running.discard(execution_id)
            raise
        finally:
            self._starting.discard(execution_id)
        return True

    async def stop(self, execution_id: str) -> None:
        await self._runner.stop(execution_id)
        self._running.discard(execution_id)

    def running(self) -> list[str]:
        """The executions this runner counts against its capacity now (operators, tests)."""
        return sorted(self._running)

    async def _has_container(self, execution_id: str) -> bool:
        try:
            return not isinstance(await self._runner.status(execution_id), NotFound)
        except RunnerError:  # the engine cannot tell: nothing to start again there either
            return False

    def _forward(self, execution_id: str, status: ExecutionStatus) -> None:
        if isinstance(status, (Exited, Failed, NotFound)):
            self._running.discard(execution_id)
        role = self._owner.get(execution_id)
        if role is None:  # an execution started before this runner (re)started: its host polls it anyway
            return
        port = RayPort(role, self._settings.ray_namespace)
        try:
            port.handle()
        except ValueError:
            self._owner.pop(execution_id, None)  # its host is gone (dedicated instance finished)
            return
        port.tell("runner_status", execution_id, status)

    async def clean_up(self) -> None:
        await clean_up_executions(self._store, self._runner)
        # An end missed by the event stream must not hold a slot for good. Only executions started before the
        # engine is asked can be judged by its answer.
        started = self._running - self._starting
        owned = await self._runner.owned_executions()
        self._running -= {e for e in started if not isinstance(owned.get(e), (Pending, Running))}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


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
        return RayPort(role, self._settings.ray_namespace)

    async def _build(self) -> Any:
        settings = self._settings
        clock = self._clock
        store = open_store(settings.store_url())
        await store.open()
        rng = random.Random()
        if self._role.startswith("runner-"):
            runner = RunnerHost(self._role, settings, store)
            self._loops.append(asyncio.create_task(every(CLEANUP_INTERVAL, runner.clean_up, rng)))
            return runner
        router = RayRouter(settings, store, clock)
        if self._role == "resources":
            broker = BrokerHost(
                on_granted=lambda holder, ids: self._port(host_role(settings, holder)).tell("granted", holder, ids)
            )
            await load_resource_limits(broker.broker, store)
            # Counters come back from the snapshots the hosts hold; acquires wait until every host has reported.
            broker.recover({host._role: host for host in await router.hosts()})
            return broker
        if self._role == "scheduler":
            scheduler = Scheduler(store, router.trigger, clock, settings, self._marker)
            await scheduler.start()
            self._loops.append(asyncio.create_task(every(settings.trigger_tick_interval, lambda: self._ping(router), rng)))
            return scheduler
        placement = Dedicated(self._instance) if self._instance else Sharded(int(self._role.removeprefix("shard-")), settings.shard_count)
        runner = make_runner(settings) if settings.runner == "noop" else PlacingRunner(self._role, settings)
        scheduler_port = self._port("scheduler")

        def finished(instance: WorkflowInstance, trigger_id: str | None, state: State) -> None:
            scheduler_port.tell("instance_finished", instance, trigger_id, state)
            if self._instance is not None:  # a dedicated instance actor ends with its instance
                asyncio.get_running_loop().create_task(self._exit())

        shard = InstanceShard(placement, store, runner, self._port("resources"), settings, clock, on_finished=finished)
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


def host_role(settings: Settings, instance_key: str) -> str:
    """The role of the actor hosting an instance, from its key alone (holders and runners route by it)."""
    if settings.placement == "dedicated":
        return dedicated_role(instance_key)
    return f"shard-{shard_index(instance_key, settings.shard_count)}"


class DedicatedPort(RayPort):
    """The port of one instance's own actor: created when the instance is triggered, absent otherwise."""

    def __init__(self, instance: WorkflowInstance, settings: Settings, clock: Clock) -> None:
        super().__init__(dedicated_role(instance.key()), settings.ray_namespace)
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

    def __getattr__(self, method: str):
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                handle = self.handle()
            except ValueError:
                return None  # no actor: the instance is not active
            return await remote_result(handle.call.remote(method, *args, **kwargs))

        return call


class RayRouter(InstanceRouter):
    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock

    def port_for(self, instance: WorkflowInstance) -> RayPort:
        if self._settings.placement == "dedicated":
            return DedicatedPort(instance, self._settings, self._clock)
        return RayPort(host_role(self._settings, instance.key()), self._settings.ray_namespace)

    async def hosts(self) -> list[RayPort]:
        if self._settings.placement == "dedicated":
            return [self.port_for(s.workflow_instance) for s in await self._store.active_states()]
        namespace = self._settings.ray_namespace
        return [RayPort(f"shard-{i}", namespace) for i in range(self._settings.shard_count)]


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
    return ActorHost.options(
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


def runner_role(node_id: str) -> str:
    return f"runner-{node_id[:16]}"


def _runner_options(node_id: str, settings: Settings) -> Any:
    """A node's runner lives on that node; should the node die, Ray restarts it elsewhere (soft affinity),
    where executions it cannot see any more are reported failed and retried."""
    return ActorHost.options(
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
    namespace: str
    # Non-detached named actors are garbage collected with their last handle: the system keeps them.
    handles: list[Any]
    detached: bool = False  # actors shared with other API processes (a Ray cluster): they outlive this one
    owns_store: bool = False
    started_ray: bool = False  # this process started the local Ray: it ends with the system

    def port(self, role: str) -> RayPort:
        return RayPort(role, self.namespace)

    async def tick(self) -> int:
        count: int = await self.port("scheduler").tick()
        return count

    async def active_count(self) -> int:
        counts = await self.router.broadcast("active_count")
        return sum(count or 0 for count in counts)

    async def stop(self) -> None:
        """Leave the cluster: a local installation's actors end (they would with this driver anyway), a
        cluster's detached actors keep serving other API processes."""
        if not self.detached:
            await self.kill()
        _forget_handles(self.namespace)
        if self.owns_store:
            await self.store.close()
        if self.started_ray and ray.is_initialized():
            ray.shutdown()

    async def kill(self) -> None:
        """Remove every actor of this system for good (tests; detached installations being torn down)."""
        # The shards are among the roles; dedicated instance actors are found through the store.
        hosts = await self.router.hosts()
        for port in [*map(self.port, self.roles), *hosts]:
            try:
                ray.kill(port.handle(), no_restart=True)
            except ValueError:
                pass
        _forget_handles(self.namespace)


def _forget_handles(namespace: str) -> None:
    for key in [key for key in _handles if key[0] == namespace]:
        del _handles[key]


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
    namespace = settings.ray_namespace
    router = RayRouter(settings, store, clock)
    if settings.placement == "dedicated":  # resume every active instance in its own actor
        await asyncio.gather(*(host.ensure().ping.remote() for host in await router.hosts()))
    commands = Commands(
        store, router, RayPort("scheduler", namespace), RayPort("resources", namespace), clock,
        TimeoutConfig.from_settings(settings),
        runners=[RayPort(role, namespace) for role in roles if role.startswith("runner-")],
    )
    return RaySystem(
        commands=commands,
        store=store,
        router=router,
        roles=roles,
        namespace=namespace,
        handles=handles,
        detached=detached,
        owns_store=owns_store,
        started_ray=started_ray,
    )
