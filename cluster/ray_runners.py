"""Executions on Ray: the runner actor of each node (`RunnerHost`) and the Runner the shards use to reach them
(`PlacingRunner`: a start goes to a runner with room, styx_actors/actors/runner_choice.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from typing import Any

import ray

from cluster.ray_ports import ActorDirectory, actor_name, runner_role
from styx_actors.actors.interfaces import HostPort, RunnerPort
from styx_actors.actors.janitor import clean_up_executions
from styx_actors.actors.runner_choice import RunnerLoad, choose_runner, holder
from styx_actors.runners import make_runner
from styx_actors.runners.base import (
    ExecutionStatus,
    Exited,
    Failed,
    NoContainer,
    Pending,
    RunnerError,
    Running,
    RunSpec,
    StatusListener,
)
from styx_actors.settings import Settings
from styx_actors.store import Store

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


class PlacingRunner:
    """What a shard runs its executions on (an `ExecutionRunner`, styx_actors/runners/base.py) over the runner
    actors of every node: a start goes to a runner with room (`choose_runner`), status and stop go to the
    runner that holds the execution. Status updates are pushed by the runner actors to the shards directly.
    Its own node's runner is started by the caller (cluster/ray_system.py `start_node_runner`)."""

    def __init__(self, owner_role: str, directory: ActorDirectory) -> None:
        self._own_role = runner_role(ray.get_runtime_context().get_node_id())
        self._owner_role = owner_role
        self._directory = directory
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
        return NoContainer() if role is None else await self._port(role).status(execution_id)

    async def stop(self, execution_id: str) -> None:
        if execution_id in self._waiting:
            self._waiting[execution_id].set()
        role = await self._holder(execution_id)
        if role is not None:
            await self._port(role).stop(execution_id)
            self._placed.pop(execution_id, None)

    def watch(self, listener: StatusListener) -> None:
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
            *(
                asyncio.wait_for(self._port(role).load(execution_id), LOAD_TIMEOUT_SECONDS)
                for role in self._runner_roles()
            ),
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
                | {
                    a["name"].removeprefix("styx-")
                    for a in named
                    if a["namespace"] == self._directory.namespace and a["name"].startswith(prefix)
                }
            )
            self._roles_listed_at = time.monotonic()
        return self._roles

    def _port(self, role: str) -> RunnerPort:
        return self._directory.runner(role)


class RunnerHost:
    """The runner actor's object: a Runner with a capacity (settings.runner_capacity executions at once), which
    counts the executions it runs and forwards their status updates to the shard owning each."""

    def __init__(self, role: str, settings: Settings, store: Store, directory: ActorDirectory) -> None:
        self._role = role
        self._directory = directory
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
            return not isinstance(await self._runner.status(execution_id), NoContainer)
        except RunnerError:  # the engine cannot tell: nothing to start again there either
            return False

    def _forward(self, execution_id: str, status: ExecutionStatus) -> None:
        if isinstance(status, (Exited, Failed, NoContainer)):
            self._running.discard(execution_id)
        role = self._owner.get(execution_id)
        if role is None:  # an execution started before this runner (re)started: its host polls it anyway
            return
        port = self._directory.port(role)
        try:
            port.handle()
        except ValueError:
            self._owner.pop(execution_id, None)  # its host is gone (dedicated instance finished)
            return
        port.tell(HostPort.runner_status, execution_id, status)

    async def clean_up(self) -> None:
        await clean_up_executions(self._store, self._runner)
        # An end missed by the event stream must not hold a slot for good. Only executions started before the
        # engine is asked can be judged by its answer.
        started = self._running - self._starting
        owned = await self._runner.owned_executions()
        self._running -= {e for e in started if not isinstance(owned.get(e), (Pending, Running))}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)
