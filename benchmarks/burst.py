"""Burst: N workflows whose instances are all triggered at once, on Ray with the noop runner and Redis.

    python benchmarks/burst.py [--counts 1000 10000] [--shards 4] [--redis-url redis://HOST:PORT/DB]

For each N, on a freshly started service:
  (a) natural tick: N enabled workflows (half hourly, half daily) whose next natural trigger falls due a
      few seconds after the service started; one tick triggers them all;
  (b) trigger command: one `Commands.trigger` per workflow (the API's POST /scheduler/trigger path without
      HTTP), all sent at once from the driver;
  (c) parked: global concurrency 0, then N more triggers, which all stay QUEUED: the memory they hold.
Figures: wall time from the first trigger to the last DONE (store timestamps), transitions/s (7 per
instance), peak RSS of the service (driver + Ray actor processes, sampled every 100 ms), memory per active
instance (c), and Ray's own daemons beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import ray
from harness import (
    TRANSITIONS_PER_RUN,
    MemorySampler,
    Progress,
    add_redis_argument,
    bench_settings,
    mib,
    opened_store,
    ray_daemons,
    ray_service,
    redis_url,
    rss,
    service_processes,
    start_local_ray,
    workflow_config,
    write_workflows,
)

from cluster.ray_system import RaySystem
from styx_actors.model import GlobalConfig, TriggerRequest, WorkflowId, WorkflowInstance, WorkflowState
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.settings import Settings
from styx_actors.timeutil import UTC

SCHEDULES = ("hours", "days")
START_LEAD = timedelta(seconds=20)  # the natural triggers fall due this long after the workflows are written


@dataclass
class BurstFigures:
    count: int
    wall_seconds: float  # first trigger to last DONE
    submit_seconds: float  # until every trigger was accepted (trigger command only)
    peak_rss: int

    @property
    def transitions_per_second(self) -> float:
        return self.count * TRANSITIONS_PER_RUN / self.wall_seconds

    def line(self, name: str) -> str:
        accepted = f", all accepted in {self.submit_seconds:.2f} s" if self.submit_seconds else ""
        return (
            f"  {name:<16} {self.count:>6,} instances: trigger to last DONE {self.wall_seconds:6.2f} s"
            f" ({self.count / self.wall_seconds:,.0f} instances/s, {self.transitions_per_second:,.0f} transitions/s"
            f"{accepted}) | peak RSS {mib(self.peak_rss)}"
        )


def period_start(schedule: Schedule, now: datetime, periods_back: int) -> datetime:
    """The start of the period `periods_back` periods before the one `now` is in."""
    instant = schedule.previous(schedule.next(now))
    for _ in range(periods_back):
        instant = schedule.previous(instant)
    return instant


def instances_of(workflows: list[WorkflowId], now: datetime, periods_back: int) -> list[WorkflowInstance]:
    instances = []
    for number, workflow_id in enumerate(workflows):
        schedule = Schedule.parse(SCHEDULES[number % 2])
        parameter = to_parameter(schedule, period_start(schedule, now, periods_back))
        instances.append(WorkflowInstance(workflow_id=workflow_id, parameter=parameter))
    return instances


async def write_due_workflows(settings: Settings, count: int, due: datetime, **config: object) -> list[WorkflowId]:
    """N enabled workflows (half hourly, half daily) whose current period is triggered naturally at `due`
    (their next trigger after that lies in the next period, so each fires once)."""
    now = datetime.now(UTC)
    async with opened_store(settings) as store:
        ids: list[WorkflowId] = []
        for schedule_name in SCHEDULES:
            schedule = Schedule.parse(schedule_name)
            state = WorkflowState(
                enabled=True, next_natural_trigger=period_start(schedule, now, 0), next_natural_offset_trigger=due
            )
            names = [f"wf-{n:05d}" for n in range(count) if SCHEDULES[n % 2] == schedule_name]
            configs = (workflow_config(name, schedule_name, **config) for name in names)
            ids += await write_workflows(store, configs, state)
    return sorted(ids, key=lambda w: w.id)


async def natural_tick_burst(
    system: RaySystem, settings: Settings, url: str, prefix: str, workflows: list[WorkflowId], due: datetime
) -> BurstFigures:
    progress = Progress(url, prefix, instances_of(workflows, due, 0))
    try:
        with MemorySampler() as memory:
            await progress.wait_all_succeeded(timeout=600 + (due - datetime.now(UTC)).total_seconds())
        wall = (progress.last_event_millis() - progress.first_event_millis()) / 1000
        return BurstFigures(len(workflows), wall, 0.0, memory.peak)
    finally:
        progress.close()


async def trigger_command_burst(
    system: RaySystem, url: str, prefix: str, instances: list[WorkflowInstance]
) -> BurstFigures:
    """Every instance triggered through the command facade at once."""
    progress = Progress(url, prefix, instances)
    try:
        with MemorySampler() as memory:
            started = time.time()
            await asyncio.gather(
                *(
                    system.commands.trigger(TriggerRequest(workflow_id=i.workflow_id, parameter=i.parameter))
                    for i in instances
                )
            )
            accepted = time.time() - started
            await progress.wait_all_succeeded(timeout=600)
        wall = progress.last_event_millis() / 1000 - started
        return BurstFigures(len(instances), wall, accepted, memory.peak)
    finally:
        progress.close()


async def parked_memory(system: RaySystem, url: str, prefix: str, instances: list[WorkflowInstance]) -> tuple[int, int]:
    """(RSS before, RSS with every instance QUEUED behind global concurrency 0)."""
    await system.commands.set_global_config(GlobalConfig(concurrency=0))
    gc.collect()
    before = rss(service_processes())
    progress = Progress(url, prefix, instances)
    try:
        await asyncio.gather(
            *(
                system.commands.trigger(TriggerRequest(workflow_id=i.workflow_id, parameter=i.parameter))
                for i in instances
            )
        )
        await progress.wait_active(len(instances), timeout=600)
    finally:
        progress.close()
    return before, rss(service_processes())


async def run(count: int, shards: int, given_url: str | None) -> None:
    with redis_url(given_url) as (url, prefix):
        settings = bench_settings(url, prefix, shard_count=shards)
        due = datetime.now(UTC) + START_LEAD
        workflows = await write_due_workflows(settings, count, due)
        async with ray_service(settings) as system:
            idle = rss(service_processes())
            if datetime.now(UTC) > due:
                print(
                    f"  (the service took longer than {START_LEAD.seconds} s to start: the tick fired during startup)"
                )
            natural = await natural_tick_burst(system, settings, url, prefix, workflows, due)
            print(natural.line("natural tick"))
            now = datetime.now(UTC)
            command = await trigger_command_burst(system, url, prefix, instances_of(workflows, now, 1))
            print(command.line("trigger command"))
            before, parked = await parked_memory(system, url, prefix, instances_of(workflows, now, 2))
            print(
                f"  {'parked QUEUED':<16} {count:>6,} instances: service RSS {mib(before)} -> {mib(parked)}"
                f" = {(parked - before) / count / 1024:,.1f} KiB per active instance"
                f" | idle service {mib(idle)}, Ray daemons {mib(rss(ray_daemons()))}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000], help="burst sizes (default 1000 10000)")
    parser.add_argument("--shards", type=int, default=4, help="instance shards (default 4, STYX_SHARD_COUNT)")
    add_redis_argument(parser)
    args = parser.parse_args()
    start_local_ray()
    try:
        for count in args.counts:
            print(f"burst of {count:,} (noop runner, Redis store, {args.shards} shards on Ray)")
            asyncio.run(run(count, args.shards, args.redis_url))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
