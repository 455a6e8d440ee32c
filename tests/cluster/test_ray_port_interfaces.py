"""The Ray side of the port protocols (styx_actors/actors/interfaces.py), without a Ray runtime: the runner
actor's port says what `RunnerHost` answers, the batched methods are named through the protocols and are the
same as ever, and a `tell` sends the method it is given by its name. The others: tests/unit/test_port_interfaces.py.
"""

from __future__ import annotations

from typing import Any

from cluster.ray_ports import BATCHED_METHODS, ActorDirectory, RayPort
from cluster.ray_runners import RunnerHost
from styx_actors.actors.interfaces import BrokerPort, HostPort, RunnerPort, SchedulerPort
from styx_actors.runners.base import Runner
from tests.unit.test_port_interfaces import protocol_methods, signature_mismatches


def test_the_runner_port_is_what_a_runner_actor_answers() -> None:
    # RunnerHost forwards what it does not define itself (`logs`) to its Runner.
    assert signature_mismatches(RunnerPort, RunnerHost, Runner) == []


def test_the_batched_methods_are_methods_of_the_ports_and_the_same_as_before() -> None:
    port_methods = set().union(*(protocol_methods(p) for p in (HostPort, SchedulerPort, BrokerPort, RunnerPort)))
    assert BATCHED_METHODS <= port_methods
    assert BATCHED_METHODS == {
        "trigger",
        "acquire",
        "release",
        "granted",
        "instance_finished",
        "runner_status",
        "start_for",
        "status",
        "stop",
        "load",
    }


class _Batcher:
    def __init__(self) -> None:
        self.told: list[tuple[str, tuple[Any, ...]]] = []

    def tell(self, method: str, args: tuple[Any, ...]) -> None:
        self.told.append((method, args))


def test_a_tell_sends_the_protocol_method_by_name() -> None:
    directory = ActorDirectory("styx-test")
    batcher = _Batcher()
    directory.batcher = lambda role, send: batcher  # type: ignore[method-assign]
    directory.port("shard-0").tell(HostPort.granted, "holder", ("r1",))
    assert batcher.told == [("granted", ("holder", ("r1",)))]


def test_the_typed_ports_reach_their_roles() -> None:
    directory = ActorDirectory("styx-test")
    ports = [directory.host("shard-1"), directory.scheduler(), directory.broker(), directory.runner("runner-n")]
    assert all(isinstance(port, RayPort) for port in ports)
    assert [port.role for port in ports] == ["shard-1", "scheduler", "resources", "runner-n"]  # type: ignore[attr-defined]
