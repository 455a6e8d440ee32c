"""Executions placed on runners with capacity (PlacingRunner and the runner actors) on a real local Ray and
Docker Engine: two runner actors of capacity 1, as two nodes' runners look to a shard."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import ray

from cluster.ray_ports import ActorDirectory, RayPort, runner_role
from cluster.ray_runners import STOPPED_WHILE_WAITING, PlacingRunner
from cluster.ray_system import _host_options, start_node_runner
from styx_actors.model import Trigger, WorkflowId, WorkflowInstance
from styx_actors.runners.base import Pending, RunnerError, Running, RunSpec
from styx_actors.settings import Settings
from tests.integration.conftest import TEST_IMAGE, remove_containers

pytestmark = pytest.mark.docker


@dataclass
class TwoRunners:
    settings: Settings
    directory: ActorDirectory  # the shard's view of the actors
    own: RayPort  # the runner of the node the shard (this test) runs on
    other: RayPort
    tag: str

    def spec(self, name: str) -> RunSpec:
        execution_id = f"placement-{self.tag}-{name}"
        return RunSpec(
            execution_id=execution_id,
            instance=WorkflowInstance(workflow_id=WorkflowId(component_id="placement", id="w"), parameter=name),
            image=TEST_IMAGE,
            args=("sh", "-c", "sleep 60"),
            env={},
            termination_logging=False,
            service_account=None,
            trigger=Trigger.adhoc("placement"),
            commit_sha=None,
            tries=0,
        )


@pytest.fixture
async def two_runners(ray_settings: Settings) -> AsyncIterator[TwoRunners]:
    settings = ray_settings.model_copy(update={"runner_capacity": 1, "container_stop_timeout": timedelta(seconds=1)})
    own = runner_role(ray.get_runtime_context().get_node_id())
    start_node_runner(settings)  # as a shard's host does before it builds its PlacingRunner
    other = _host_options("runner-other", settings, detached=False).remote("runner-other", settings.model_dump_json())
    await other.ping.remote()
    directory = ActorDirectory(settings.ray_namespace)
    runners = TwoRunners(settings, directory, directory.port(own), directory.port("runner-other"), uuid.uuid4().hex[:8])
    try:
        yield runners
    finally:
        for port in (runners.own, runners.other):
            try:
                ray.kill(port.handle(), no_restart=True)
            except ValueError:
                pass
        remove_containers(settings.docker_installation_id)


async def test_a_full_runner_hands_over_and_a_restarted_shard_finds_each_execution(two_runners: TwoRunners) -> None:
    placing = PlacingRunner("shard-0", two_runners.directory)
    first, second = two_runners.spec("first"), two_runners.spec("second")
    await placing.start(first)
    await placing.start(second)
    assert await two_runners.own.running() == [first.execution_id]  # its own node's runner while it had room
    assert await two_runners.other.running() == [second.execution_id]  # then the one with room

    # A restarted shard's process knows nothing of where they went.
    restarted = PlacingRunner("shard-0", ActorDirectory(two_runners.settings.ray_namespace))
    assert isinstance(await restarted.status(second.execution_id), (Pending, Running))
    await restarted.start(second)  # a repeated start (SUBMITTING after a restart) goes to the same runner
    assert await two_runners.own.running() == [first.execution_id]
    await restarted.stop(second.execution_id)
    assert await two_runners.other.running() == []  # the stop reached the runner that ran it
    assert not isinstance(await restarted.status(second.execution_id), (Pending, Running))


async def test_a_start_waits_while_every_runner_is_full_until_one_has_room_or_a_stop(two_runners: TwoRunners) -> None:
    placing = PlacingRunner("shard-0", two_runners.directory)
    first, second, third, fourth = (two_runners.spec(name) for name in ("first", "second", "third", "fourth"))
    await placing.start(first)
    await placing.start(second)

    waiting = asyncio.create_task(placing.start(third))
    done, _ = await asyncio.wait({waiting}, timeout=2)
    assert not done  # both runners are full: it waits, starting nothing
    assert sorted(await two_runners.own.running() + await two_runners.other.running()) == sorted(
        [first.execution_id, second.execution_id]
    )
    await placing.stop(first.execution_id)
    await asyncio.wait_for(waiting, 30)  # started once a runner had room
    assert await two_runners.own.running() == [third.execution_id]

    halted = asyncio.create_task(placing.start(fourth))
    await asyncio.sleep(0)  # one loop turn: the start has begun waiting (it registers before its first await)
    await placing.stop(fourth.execution_id)  # as a halt in SUBMITTING does
    with pytest.raises(RunnerError, match=STOPPED_WHILE_WAITING):
        await asyncio.wait_for(halted, 30)
    assert fourth.execution_id not in await two_runners.own.running() + await two_runners.other.running()
