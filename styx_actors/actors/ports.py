"""How actors reach each other: a port is an object whose every method is awaited.

Locally a port wraps the object itself; on Ray it wraps an actor handle (cluster/ray_ports.py). Actor code
only ever awaits port methods, so the same classes run in one process (tests, benchmarks of pure logic) and
spread over a Ray cluster. A port is typed by the protocol of its kind (styx_actors/actors/interfaces.py): the
factories here (`local_host`, `local_scheduler`, `local_broker`) are where a `LocalPort` becomes one.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, cast

from styx_actors.actors.interfaces import BrokerPort, HostPort, SchedulerPort
from styx_actors.actors.placement import shard_index
from styx_actors.actors.shard import AlreadyActive
from styx_actors.errors import Conflict
from styx_actors.events import Event
from styx_actors.model import RunState, Trigger, TriggerParameters, WorkflowInstance

if TYPE_CHECKING:
    from styx_actors.actors.broker_host import BrokerHost
    from styx_actors.actors.scheduler import Scheduler
    from styx_actors.actors.shard import InstanceShard

T = TypeVar("T")

ALREADY_TRIGGERED = "This workflow instance is already triggered. Did you want to `retry` running it instead?"


class LocalPort:
    """Await any method of a local object, whether it is a coroutine function or not."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        method = getattr(self._target, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call


def local_host(shard: InstanceShard) -> HostPort:
    return cast(HostPort, LocalPort(shard))


def local_scheduler(scheduler: Scheduler) -> SchedulerPort:
    return cast(SchedulerPort, LocalPort(scheduler))


def local_broker(broker: BrokerHost) -> BrokerPort:
    return cast(BrokerPort, LocalPort(broker))


class InstanceRouter:
    """Routes instance commands to the host of the instance; subclasses say which host that is."""

    def port_for(self, instance: WorkflowInstance) -> HostPort:
        raise NotImplementedError

    async def hosts(self) -> list[HostPort]:
        """Every host that currently holds instances (for broadcasts such as a changed workflow)."""
        raise NotImplementedError

    async def trigger(self, instance: WorkflowInstance, trigger: Trigger, parameters: TriggerParameters) -> RunState:
        try:
            return await self.port_for(instance).trigger(instance, trigger, parameters)
        except AlreadyActive:
            raise Conflict(ALREADY_TRIGGERED) from None

    async def send(self, instance: WorkflowInstance, event: Event) -> RunState | None:
        return await self.port_for(instance).send(instance, event)

    async def broadcast(self, call: Callable[[HostPort], Awaitable[T]]) -> list[T]:
        """Make the same call on every host, concurrently (`broadcast(lambda host: host.stats())`); the answers
        in the order of `hosts()`."""
        return list(await asyncio.gather(*(call(host) for host in await self.hosts())))


class ShardRouter(InstanceRouter):
    """Sharded placement: the shard is the stable hash of the instance key."""

    def __init__(self, shards: list[HostPort]) -> None:
        self.shards = shards

    def port_for(self, instance: WorkflowInstance) -> HostPort:
        return self.shards[shard_index(instance.key(), len(self.shards))]

    async def hosts(self) -> list[HostPort]:
        return list(self.shards)
