"""Recovery: the service restarts with 10,000 active instances and resumes them all.

    python benchmarks/recovery.py [--count 10000] [--shards 4] [--redis-url redis://HOST:PORT/DB]

On Ray with the Redis store and the noop runner: `count` instances of 100 workflows, triggered through
`Commands.trigger`, all parked QUEUED behind a resource of concurrency 0. Then:
  (a) SIGKILL of every actor process (shards, broker, scheduler): Ray restarts them and each rebuilds itself
      from the store on its first call (the scheduler's supervision ping, or ours);
  (b) a full restart of the actor system: every actor killed for good, then `start_ray_system` again;
and for each, the time until every instance is loaded in its shard again (resumed, waiting for the
resource again). After (b) it prints the RSS of the restarted actor processes, which hold all `count` parked
instances and nothing left over from the triggering (this process, in the API's place, is printed apart).
Finally the resource's limit is raised to `count`: the time until all are DONE.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import ray
from burst import SCHEDULES, period_start, write_due_workflows
from harness import (
    Progress,
    add_redis_argument,
    bench_settings,
    mib,
    opened_store,
    ray_daemons,
    redis_url,
    rss,
    service_processes,
    start_local_ray,
)

from cluster.ray_system import RaySystem, start_ray_system
from styx_actors.model import Resource, TriggerRequest, WorkflowId, WorkflowInstance
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.settings import Settings
from styx_actors.timeutil import UTC

RESOURCE = "parked"
WORKFLOWS = 100


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def until_resumed(system: RaySystem, settings: Settings, count: int) -> None:
    """Every instance held by its shard again (the first call after a restart makes a shard recover) and
    waiting in the resource broker's queue again."""

    async def all_loaded() -> bool:
        shards = [system.port(f"shard-{i}") for i in range(settings.shard_count)]
        return sum(await asyncio.gather(*(shard.active_count() for shard in shards))) == count

    async def all_waiting() -> bool:
        return await system.port("resources").waiting_count() == count

    await wait_for(all_loaded, 300, f"all {count} instances loaded")
    await wait_for(all_waiting, 300, f"all {count} instances waiting for {RESOURCE}")


def recent_instances(workflows: list[WorkflowId], now: datetime, count: int) -> list[WorkflowInstance]:
    """`count` instances: the period before the current one of every workflow, then the one before that, and
    so on (each schedule is walked back once: `instances_of` per period would walk it back from `now` each
    time, quadratic in `count`)."""
    per_workflow = -(-count // len(workflows))
    columns = []
    for number, workflow_id in enumerate(workflows):
        schedule = Schedule.parse(SCHEDULES[number % 2])
        instant = period_start(schedule, now, 1)
        column = []
        for _ in range(per_workflow):
            column.append(WorkflowInstance(workflow_id=workflow_id, parameter=to_parameter(schedule, instant)))
            instant = schedule.previous(instant)
        columns.append(column)
    return [instance for period in zip(*columns, strict=True) for instance in period][:count]


async def park(
    system: RaySystem, settings: Settings, workflows: list[WorkflowId], count: int
) -> list[WorkflowInstance]:
    """`count` instances of the workflows, all QUEUED behind the resource of concurrency 0."""
    instances = recent_instances(workflows, datetime.now(UTC), count)
    await asyncio.gather(
        *(system.commands.trigger(TriggerRequest(workflow_id=i.workflow_id, parameter=i.parameter)) for i in instances)
    )
    await until_resumed(system, settings, count)
    return instances


async def sigkill_actors(system: RaySystem, settings: Settings, count: int) -> float:
    pids = await asyncio.gather(*(system.port(role).handle().pid.remote() for role in system.roles))
    started = time.perf_counter()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    await until_resumed(system, settings, count)
    return time.perf_counter() - started


async def restart(system: RaySystem, settings: Settings, count: int) -> tuple[RaySystem, float]:
    await system.kill()
    await system.store.close()
    started = time.perf_counter()
    system = await start_ray_system(settings)
    await until_resumed(system, settings, count)
    return system, time.perf_counter() - started


async def run(count: int, shards: int, given_url: str | None) -> None:
    with redis_url(given_url) as (url, prefix):
        settings = bench_settings(url, prefix, shard_count=shards)
        async with opened_store(settings) as store:
            await store.put_resource(Resource(id=RESOURCE, concurrency=0))
        never = datetime.now(UTC) + timedelta(days=400)
        workflows = await write_due_workflows(settings, WORKFLOWS, never, resources=[RESOURCE])
        system = await start_ray_system(settings)
        try:
            instances = await park(system, settings, workflows, count)
            print(f"recovery of {count:,} active (QUEUED) instances ({shards} shards on Ray, Redis store, noop runner)")
            seconds = await sigkill_actors(system, settings, count)
            print(f"  SIGKILL of every actor process -> all {count:,} resumed in {seconds:5.2f} s")
            system, seconds = await restart(system, settings, count)
            print(f"  actor system restarted         -> all {count:,} resumed in {seconds:5.2f} s")
            driver, *actors = service_processes()
            print(
                f"  parked: actor processes RSS {mib(rss(actors))} (this process {mib(rss([driver]))},"
                f" Ray daemons {mib(rss(ray_daemons()))})"
            )
            progress = Progress(url, prefix, instances)
            try:
                started = time.time()
                await system.commands.save_resource(Resource(id=RESOURCE, concurrency=count))
                await progress.wait_all_succeeded(timeout=600)
                seconds = progress.last_event_millis() / 1000 - started
            finally:
                progress.close()
            print(f"  limit raised to {count:,}          -> all {count:,} DONE in {seconds:5.2f} s")
        finally:
            await system.kill()
            await system.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="active instances (default 10000)")
    parser.add_argument("--shards", type=int, default=4, help="instance shards (default 4)")
    add_redis_argument(parser)
    args = parser.parse_args()
    start_local_ray()
    try:
        asyncio.run(run(args.count, args.shards, args.redis_url))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
