"""The faults of a chaos run, each injected at its planned moment (plan.py) and recorded with what it hit.
Faults overlap, as production failures do (an actor killed while Redis is paused, a container killed while
the service restarts), except two of the same thing: a Redis fault waits for the one under way, and so does
a service kill. A fault leaves things running again when it ends (Redis resumed, the service restarted);
the time the service takes to answer `/readyz` again is recorded after each restart.

A clock jump is not among them: `styx serve` runs its actors on the system clock (the scheduler's Ray actor
builds a `SystemClock`), so it cannot be moved for the service alone. tests/resilience/test_clock_jumps.py
covers clock jumps with an injected clock instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Sized
from typing import TypeVar

import httpx
from docker.errors import DockerException

from benchmarks.chaos.engine import EngineWatcher
from benchmarks.chaos.history import Fault, FaultKind, History, Readiness
from benchmarks.chaos.plan import PlannedFault, pick_one
from benchmarks.chaos.processes import RedisProcess, ServiceProcess, wait_ready

log = logging.getLogger(__name__)

Candidates = TypeVar("Candidates", bound=Sized)

PAUSED_PROBE_SECONDS = 3.0  # how long `/readyz` is given while Redis is paused
TARGET_WAIT_SECONDS = 20.0  # how long a kill waits for something to hit (no container running, a restart under way)
TARGET_POLL_SECONDS = 0.5
WATCH_INTERVAL_SECONDS = 2.0


class Faults:
    def __init__(
        self,
        service: ServiceProcess,
        redis: RedisProcess | None,
        engine: EngineWatcher,
        history: History,
        readiness_bound: float,
    ) -> None:
        self._service = service
        self._redis = redis
        self._engine = engine
        self._history = history
        self._readiness_bound = readiness_bound
        self._redis_lock = asyncio.Lock()
        self._service_lock = asyncio.Lock()

    async def run(self, plan: list[PlannedFault], began: float) -> None:
        await asyncio.gather(*(self._at_its_moment(planned, began) for planned in plan))

    async def _at_its_moment(self, planned: PlannedFault, began: float) -> None:
        await asyncio.sleep(max(0.0, began + planned.at - time.monotonic()))
        lock = {
            FaultKind.SERVICE_KILL: self._service_lock,
            FaultKind.REDIS_RESTART: self._redis_lock,
            FaultKind.REDIS_PAUSE: self._redis_lock,
        }.get(planned.kind)
        if lock is None:
            fault = await self.inject(planned)
        else:
            async with lock:
                fault = await self.inject(planned)
        log.info("fault %s: %s %s", fault.kind.value, fault.target, fault.detail)
        self._history.faults.append(fault)

    async def inject(self, planned: PlannedFault) -> Fault:
        at = time.time()
        kind = planned.kind
        if kind is FaultKind.ACTOR_KILL:
            actors = await _first_found(self._service.actor_pids)
            name = pick_one(sorted(actors), planned.pick)
            detail = f"of {len(actors)} actors"
            if name is not None:
                try:
                    os.kill(actors[name], signal.SIGKILL)
                except ProcessLookupError:  # gone meanwhile: the service was killed at the same moment
                    detail += "; it had ended before the kill"
            return Fault(kind, at, name.removeprefix("styx-") if name else "", detail)
        if kind is FaultKind.SERVICE_KILL:
            await asyncio.to_thread(self._service.kill)
            await self.start_service("service restart")
            return Fault(kind, at, "service")
        if kind is FaultKind.CONTAINER_KILL:
            try:
                running = await _first_found(self._engine.running)
                name = pick_one(running, planned.pick)
                if name is not None:
                    await asyncio.to_thread(self._engine.kill, name)
            except DockerException as error:  # it ended meanwhile
                return Fault(kind, at, "", f"kill failed: {error}")
            return Fault(kind, at, name or "", f"of {len(running)} running")
        assert self._redis is not None, "Redis faults need the run's own Redis"
        if kind is FaultKind.REDIS_RESTART:
            await asyncio.to_thread(self._redis.stop)
            await asyncio.sleep(planned.hold)  # the outage itself
            await asyncio.to_thread(self._redis.start)
            await self._measure_ready("redis restart")
            return Fault(kind, at, "redis", f"down {planned.hold:.1f} s")
        self._redis.pause()
        probe = await self._probe_readyz()
        await asyncio.sleep(max(0.0, at + planned.hold - time.time()))  # the rest of the pause
        self._redis.resume()
        await self._measure_ready("redis pause")
        return Fault(kind, at, "redis", f"paused {planned.hold:.1f} s; /readyz meanwhile: {probe}")

    async def start_service(self, after: str) -> None:
        at = time.time()
        seconds = await asyncio.to_thread(self._service.start, self._readiness_bound)
        self._history.readiness.append(Readiness(after, at, seconds))
        session = await asyncio.to_thread(self._service.raylet_argument, "--session_dir")
        ready = "not ready" if seconds is None else f"ready in {seconds:.1f} s"
        log.info("%s: %s; the actors' logs: %s/logs", after, ready, session)

    async def restart_if_exited(self) -> None:
        """A service that exited by itself is an incident of the run; start it again so that the run goes on."""
        async with self._service_lock:
            code = self._service.exit_code()
            if code is not None:
                self._history.incidents.append(f"the service exited by itself with code {code} at {time.time():.3f}")
                await self.start_service("an exit by itself")

    async def keep_service_running(self) -> None:
        """Until cancelled: notice a service that exited by itself, and start it again."""
        while True:
            await self.restart_if_exited()
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)

    async def _measure_ready(self, after: str) -> None:
        at = time.time()
        began = time.monotonic()
        ready = await asyncio.to_thread(wait_ready, self._service.url, self._readiness_bound)
        self._history.readiness.append(Readiness(after, at, time.monotonic() - began if ready else None))

    async def _probe_readyz(self) -> str:
        try:
            async with httpx.AsyncClient(timeout=PAUSED_PROBE_SECONDS) as client:
                response = await client.get(f"{self._service.url}/readyz")
            return str(response.status_code)
        except httpx.TimeoutException:
            return f"no answer within {PAUSED_PROBE_SECONDS:.0f} s"
        except httpx.HTTPError as error:
            return f"{type(error).__name__}"


async def _first_found(candidates: Callable[[], Candidates]) -> Candidates:
    """The candidates of a kill, waiting up to TARGET_WAIT_SECONDS for there to be one: a kill planned while
    nothing runs (between containers, during a service restart) hits the next thing that does, so that every
    kind of fault is exercised even in a short run."""
    deadline = time.monotonic() + TARGET_WAIT_SECONDS
    while True:
        found = await asyncio.to_thread(candidates)
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(TARGET_POLL_SECONDS)
