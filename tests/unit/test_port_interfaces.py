"""The port protocols (styx_actors/actors/interfaces.py) say what the actors behind the ports really answer:
each method has the signature of its target's method (async through a port, whether or not the target's is),
so a call mypy accepts through a port is one the target accepts. And a broadcast reaches every host at once.
The Ray side (the runner actor's port, the batched method names): tests/cluster/test_ray_port_interfaces.py.
"""

from __future__ import annotations

import asyncio
import inspect

from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.interfaces import BrokerPort, HostPort, LogReader, SchedulerPort
from styx_actors.actors.ports import ShardRouter
from styx_actors.actors.resources import ResourceBroker
from styx_actors.actors.scheduler import Scheduler
from styx_actors.actors.shard import InstanceShard
from styx_actors.runners.base import Runner


def protocol_methods(protocol: type) -> dict[str, object]:
    """The methods a port protocol declares, its own and those of the protocols it extends."""
    methods: dict[str, object] = {}
    for cls in reversed(protocol.__mro__):
        if cls.__module__ == "styx_actors.actors.interfaces":
            methods.update(
                (name, value)
                for name, value in vars(cls).items()
                if inspect.isfunction(value) and not name.startswith("__")  # Protocol's own hooks
            )
    return methods


def signature_mismatches(protocol: type, *targets: type) -> list[str]:
    """Where the protocol's methods differ from those of the first target that has each (a target that
    forwards unknown methods, as `BrokerHost` does to its `ResourceBroker`, is followed by the one it
    forwards to). Annotations compare as written: the modules postpone their evaluation."""
    mismatches = []
    for name, method in protocol_methods(protocol).items():
        assert inspect.iscoroutinefunction(method), f"{protocol.__name__}.{name} is not async"
        target = next((getattr(t, name) for t in targets if hasattr(t, name)), None)
        if target is None:
            mismatches.append(f"{protocol.__name__}.{name}: no such method on {[t.__name__ for t in targets]}")
        elif inspect.signature(method) != inspect.signature(target):
            expected, actual = inspect.signature(target), inspect.signature(method)
            mismatches.append(f"{protocol.__name__}.{name}{actual} but the target has {expected}")
    return mismatches


def test_the_host_port_is_what_a_shard_answers() -> None:
    assert signature_mismatches(HostPort, InstanceShard) == []


def test_the_scheduler_port_is_what_the_scheduler_answers() -> None:
    assert signature_mismatches(SchedulerPort, Scheduler) == []


def test_the_broker_port_is_what_the_broker_host_answers() -> None:
    assert signature_mismatches(BrokerPort, BrokerHost, ResourceBroker) == []


def test_a_runner_is_a_log_reader() -> None:
    assert signature_mismatches(LogReader, Runner) == []


def test_a_mismatch_is_found() -> None:
    class Other:
        def stats(self, verbose: bool) -> dict[str, int]:
            return {}

    mismatches = signature_mismatches(HostPort, Other)
    assert any(m.startswith("HostPort.stats(self) -> 'dict[str, int]' but") for m in mismatches), mismatches
    assert "HostPort.trigger: no such method on ['Other']" in mismatches


class _Host:
    """Answers `stats` only once every host has been asked: a broadcast that asked one at a time would hang."""

    def __init__(self, index: int, asked: list[int], everyone_asked: asyncio.Event, count: int) -> None:
        self._index, self._asked, self._everyone_asked, self._count = index, asked, everyone_asked, count

    async def stats(self) -> dict[str, int]:
        self._asked.append(self._index)
        if len(self._asked) == self._count:
            self._everyone_asked.set()
        await self._everyone_asked.wait()
        return {"host": self._index}


async def test_a_broadcast_asks_every_host_at_once_and_answers_in_their_order() -> None:
    asked: list[int] = []
    everyone_asked = asyncio.Event()
    router = ShardRouter([_Host(i, asked, everyone_asked, 3) for i in range(3)])
    answers = await asyncio.wait_for(router.broadcast(lambda host: host.stats()), timeout=5)
    assert answers == [{"host": 0}, {"host": 1}, {"host": 2}]
    assert sorted(asked) == [0, 1, 2]
