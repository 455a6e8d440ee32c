"""The resource broker's process SIGKILLed while a resource of concurrency 2 is held by two instances on different
shards and three more wait for it; then the holder that started first ends. The restarted broker must hold every
acquire until each shard has reported the permits its instances hold: granting against its empty counters let two
waiters start beside the remaining holder, three containers of a concurrency-2 resource at once (issue #17).

The containers wait for a file the test creates in them (`docker exec`), so the test decides when each ends, and the
engine's own start and die events tell how many ran at once: exact, not sampled.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import docker
import pytest

from cluster.ray_system import RaySystem
from styx_actors.actors.placement import shard_index
from styx_actors.model import (
    Resource,
    State,
    TriggerRequest,
    WorkflowId,
    WorkflowInstance,
)
from styx_actors.runners.docker import LABEL_INSTALLATION
from styx_actors.settings import Settings
from tests.conftest import wait_until
from tests.integration.test_scenarios import (
    config,
    deploy,
    instance,
    wait_finished,
    wait_state,
)

pytestmark = pytest.mark.docker

LIMIT = 2
RELEASE_FILE = "/tmp/release"
RUN_UNTIL_RELEASED = f"until [ -e {RELEASE_FILE} ]; do sleep 0.1; done"


class ContainersRunning:
    """Follows the engine's start and die events of one installation's containers (a thread reading the event
    stream): which run now, and the most that ran at once."""

    def __init__(self, installation_id: str) -> None:
        self._client = docker.from_env()
        self._events = self._client.events(
            since=int(time.time()),
            decode=True,
            filters={
                "type": "container",
                "event": ["start", "die"],
                "label": f"{LABEL_INSTALLATION}={installation_id}",
            },
        )
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self.started: list[str] = []
        self._ended = 0
        self.most_at_once: set[str] = set()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        for event in self._events:
            name = event["Actor"]["Attributes"]["name"]
            with self._lock:
                if event["Action"] == "start":
                    self.started.append(name)
                    self._running.add(name)
                    if len(self._running) > len(self.most_at_once):
                        self.most_at_once = set(self._running)
                else:
                    self._ended += 1
                    self._running.discard(name)

    def running(self) -> set[str]:
        with self._lock:
            return set(self._running)

    def ended(self) -> int:
        with self._lock:
            return self._ended

    def release(self, name: str) -> None:
        """Let the container's job end (it waits for RELEASE_FILE)."""
        self._client.containers.get(name).exec_run(["touch", RELEASE_FILE])

    def close(self) -> None:
        self._events.close()
        self._thread.join(timeout=10)
        self._client.close()


def days_on_shard(workflow_id: WorkflowId, shard: int, count: int, shards: int) -> list[WorkflowInstance]:
    days = (instance(workflow_id, f"2020-01-{day:02d}") for day in range(1, 32))
    return [wfi for wfi in days if shard_index(wfi.key(), shards) == shard][:count]


async def test_a_restarted_broker_never_grants_past_a_limit(ray_system: RaySystem, ray_settings: Settings) -> None:
    commands, store, broker = ray_system.commands, ray_system.store, ray_system.port("resources")
    await commands.save_resource(Resource(id="pair", concurrency=LIMIT))
    workflow_id = await deploy(
        ray_system, config("broker-restart", schedule="days", script=RUN_UNTIL_RELEASED, resources=["pair"])
    )
    # The first holder and the waiters on shard 0 (asked first to report after the restart), the other holder on
    # shard 1: without recovery, shard 0's waiters were granted before shard 1 reported its holder.
    first, *waiters = days_on_shard(workflow_id, 0, 4, ray_settings.shard_count)
    (second,) = days_on_shard(workflow_id, 1, 1, ray_settings.shard_count)
    everyone = [first, second, *waiters]
    containers = ContainersRunning(ray_settings.docker_installation_id)
    try:
        for holder in (first, second):
            await commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=holder.parameter))
            await wait_state(store, holder, State.RUNNING, timeout=60)
        for waiter in waiters:
            await commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=waiter.parameter))

        async def all_waiting() -> bool:  # their Info message says so
            states = [await store.active_state(waiter) for waiter in waiters]
            last_lines = [s.data.last_message() if s else None for s in states]
            return all(last is not None and "limit reached" in last.line for last in last_lines)

        await wait_until(all_waiting, timeout=30, message="the waiters to queue at the broker")

        os.kill(await broker.handle().pid.remote(), signal.SIGKILL)
        first_state = await store.active_state(first)
        assert first_state is not None and first_state.data.execution_id is not None
        containers.release(first_state.data.execution_id)  # its release is the restarted broker's first call
        assert (await wait_finished(store, first, timeout=60))[-1] == "success"

        async def settled() -> bool:
            """The broker heard from every shard, every waiter asked again, each grant's container runs."""
            if await broker.awaited_hosts():
                return False
            holders = (await broker.usage())["pair"][0]
            return holders + await broker.waiting_count() == 1 + len(waiters) and len(containers.running()) == holders

        await wait_until(settled, timeout=60, message="the restarted broker to serve the waiters")
        assert (await broker.usage())["pair"] == (LIMIT, LIMIT)
        assert len(containers.running()) == LIMIT

        released: set[str] = set()

        def release_the_running() -> bool:
            """Let every running job end, so the remaining waiters get their turn; True once all have run."""
            for name in containers.running() - released:
                containers.release(name)
                released.add(name)
            return containers.ended() == len(everyone)

        await wait_until(release_the_running, timeout=120, message="every instance to run")
        for wfi in everyone:
            assert (await wait_finished(store, wfi, timeout=30))[-1] == "success", wfi
    finally:
        containers.close()
    assert len(containers.most_at_once) <= LIMIT, f"ran at once: {sorted(containers.most_at_once)}"
    assert len(containers.started) == len(set(containers.started)) == len(everyone)  # each execution ran once

    async def no_permit_held() -> bool:  # the last releases are sent after the instances' final transitions
        return await broker.usage() == {"pair": (0, LIMIT)}

    await wait_until(no_permit_held, timeout=10, message="every permit to be given back")
