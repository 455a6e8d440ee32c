"""Ports to the named actors on Ray (cluster/ray_system.py): their names, the handle cache, and batching.

An `ActorDirectory` is what one process knows of an installation's actors (one Ray namespace): their handles
and call batchers. A `RayPort` from it awaits any method of a role's hosted object; the per-instance calls of
a burst go in batches (styx_actors/actors/batching.py), the others one Ray call each. The directory's typed
factories (`host`, `scheduler`, `broker`, `runner`, and `as_host` for a port built elsewhere) are where a
`RayPort` becomes the protocol of its kind (styx_actors/actors/interfaces.py); `port` gives the untyped one
(fire-and-forget `tell`, the actor's handle). `host_role` and `runner_role` name the actor of an instance and
of a node's runner.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVarTuple, cast

import ray
from ray.exceptions import ActorDiedError

from cluster.remote_errors import remote_result
from styx_actors.actors.batching import Call, CallBatcher, Outcome
from styx_actors.actors.interfaces import BrokerPort, HostPort, RunnerPort, SchedulerPort
from styx_actors.actors.placement import (
    DEDICATED_ROLE_PREFIX,
    dedicated_role,
    shard_index,
)
from styx_actors.settings import Settings


def actor_name(role: str) -> str:
    return f"styx-{role}"


Args = TypeVarTuple("Args")

# The per-instance calls of a burst: batched (styx_actors/actors/batching.py). Their exceptions are plain
# (picklable as a value); other methods go one Ray call each, whose errors Ray itself carries. Named through
# the protocols, so that each is a method of its kind of port; the batching goes by name, whatever the port.
BATCHED_METHODS = frozenset(
    method.__name__
    for method in (
        HostPort.trigger,
        BrokerPort.acquire,
        BrokerPort.release,
        HostPort.granted,
        SchedulerPort.instance_finished,
        HostPort.runner_status,
        RunnerPort.start_for,
        RunnerPort.status,
        RunnerPort.stop,
        RunnerPort.load,
    )
)


class ActorDirectory:
    """The named actors of one installation (a Ray namespace) as one process sees them, for as long as the
    system or actor process holding it lives.

    Handles of the long-lived actors are kept: `ray.get_actor` costs a GCS round trip and more CPU than the
    call it serves; a handle stays valid across Ray's restarts of its actor, and one whose actor died for good
    (killed, replaced by a redeployment) is dropped on the ActorDiedError it causes. Dedicated instance actors
    come and go: they are looked up each time. Batchers are kept per actor and event loop.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._handles: dict[str, Any] = {}
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, CallBatcher]] = (
            weakref.WeakKeyDictionary()
        )

    def port(self, role: str) -> RayPort:
        """The role's untyped port (its handle, `tell`); the typed ones are below."""
        return RayPort(role, self)

    def host(self, role: str) -> HostPort:
        """A host of instances: `shard-<i>` (a dedicated instance's port is a `DedicatedPort`: `as_host`)."""
        return as_host(self.port(role))

    def scheduler(self) -> SchedulerPort:
        return cast(SchedulerPort, self.port("scheduler"))

    def broker(self) -> BrokerPort:
        return cast(BrokerPort, self.port("resources"))

    def runner(self, role: str) -> RunnerPort:
        """A node's runner actor (`runner_role`)."""
        return cast(RunnerPort, self.port(role))

    def handle(self, role: str) -> Any:
        """The role's actor handle; ValueError when no such actor exists."""
        if role.startswith(DEDICATED_ROLE_PREFIX):
            return ray.get_actor(actor_name(role), namespace=self.namespace)
        found = self._handles.get(role)
        if found is None:
            found = self._handles[role] = ray.get_actor(actor_name(role), namespace=self.namespace)
        return found

    def forget(self, role: str | None = None) -> None:
        """Drop the handle of `role` (its actor died), or every handle (the system stopped)."""
        if role is None:
            self._handles.clear()
        else:
            self._handles.pop(role, None)

    def batcher(self, role: str, send: Callable[[list[Call]], Awaitable[list[Outcome]]]) -> CallBatcher:
        """One batcher per actor and event loop, shared by every port of that actor."""
        per_loop = self._batchers.setdefault(asyncio.get_running_loop(), {})
        if role not in per_loop:
            per_loop[role] = CallBatcher(send)
        return per_loop[role]


class RayPort:
    """Await any method of a named actor's hosted object (looked up lazily, so restarts are transparent)."""

    def __init__(self, role: str, directory: ActorDirectory) -> None:
        self._role = role
        self._directory = directory

    @property
    def role(self) -> str:
        return self._role

    def handle(self) -> Any:
        return self._directory.handle(self._role)

    async def _remote(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the actor object itself (`call`, `call_batch`, `pid`, ...)."""
        try:
            return await remote_result(getattr(self.handle(), method).remote(*args, **kwargs))
        except ActorDiedError:
            self._directory.forget(self._role)
            raise

    def __getattr__(self, method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if method in BATCHED_METHODS and not kwargs:
                return await self._batcher().call(method, args)
            return await self._remote("call", method, *args, **kwargs)

        return call

    def tell(self, method: Callable[[Any, *Args], Awaitable[None]], *args: *Args) -> None:
        """Fire and forget (notifications that must not block the sender): `tell(HostPort.granted, holder,
        ids)` sends `granted(holder, ids)` with the next batch, its arguments checked against the protocol."""
        self._batcher().tell(method.__name__, args)

    def _batcher(self) -> CallBatcher:
        return self._directory.batcher(self._role, lambda calls: self._remote("call_batch", calls))


def as_host(port: RayPort) -> HostPort:
    return cast(HostPort, port)


def host_role(settings: Settings, instance_key: str) -> str:
    """The role of the actor hosting an instance, from its key alone (holders and runners route by it)."""
    if settings.placement == "dedicated":
        return dedicated_role(instance_key)
    return f"shard-{shard_index(instance_key, settings.shard_count)}"


def runner_role(node_id: str) -> str:
    return f"runner-{node_id[:16]}"
