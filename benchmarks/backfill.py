"""Backfill: a year of hourly partitions on the noop runner, and two days of them in real containers.

    python benchmarks/backfill.py [--concurrency 100] [--docker-hours 48] [--docker-concurrency 10]
                                  [--redis-url redis://HOST:PORT/DB]

On Ray with the Redis store, one hourly workflow and one backfill through `Commands.create_backfill`:
  (a) the 8,760 partitions of 2023 at concurrency 100, noop runner;
  (b) 48 partitions at concurrency 10, Docker runner, each a container of styx-test/busybox:latest running
      `true` (scripts/setup-docker.sh builds the image; the engine must be running).
Figure: wall time from the backfill's creation to the last partition's DONE (its store timestamp).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta

import ray
from harness import (
    COMPONENT,
    Progress,
    add_redis_argument,
    bench_settings,
    ray_service,
    redis_url,
    remove_containers,
    start_local_ray,
    workflow_config,
)

from styx_actors.model import BackfillInput, WorkflowInstance
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.settings import Settings
from styx_actors.timeutil import UTC

YEAR_START = datetime(2023, 1, 1, tzinfo=UTC)


async def run_backfill(settings: Settings, url: str, prefix: str, hours: int, concurrency: int) -> float:
    """Seconds from creating the backfill to the last DONE."""
    end = YEAR_START + timedelta(hours=hours)
    async with ray_service(settings) as system:
        workflow = await system.commands.save_workflow(COMPONENT, workflow_config("hourly", "hours"))
        schedule = Schedule.parse("hours")
        partitions = schedule.range(YEAR_START, end)
        progress = Progress(
            url,
            prefix,
            [WorkflowInstance(workflow_id=workflow.id, parameter=to_parameter(schedule, p)) for p in partitions],
        )
        try:
            started = time.time()
            await system.commands.create_backfill(
                BackfillInput(
                    start=YEAR_START,
                    end=end,
                    component=COMPONENT,
                    workflow=workflow.workflow_id,
                    concurrency=concurrency,
                )
            )
            await progress.wait_all_succeeded(timeout=900, poll=0.25)
            return progress.last_event_millis() / 1000 - started
        finally:
            progress.close()


async def noop_year(given_url: str | None, concurrency: int) -> None:
    hours = 365 * 24
    with redis_url(given_url) as (url, prefix):
        seconds = await run_backfill(bench_settings(url, prefix), url, prefix, hours, concurrency)
    print(
        f"  noop runner   {hours:>5,} hourly partitions at concurrency {concurrency:>3}: {seconds:6.2f} s"
        f" ({hours / seconds:,.0f} partitions/s)"
    )


async def docker_days(given_url: str | None, hours: int, concurrency: int) -> None:
    with redis_url(given_url) as (url, prefix):
        settings = bench_settings(url, prefix, runner="docker")
        try:
            seconds = await run_backfill(settings, url, prefix, hours, concurrency)
        finally:
            remove_containers(settings.docker_installation_id)
    print(
        f"  docker runner {hours:>5,} hourly partitions at concurrency {concurrency:>3}: {seconds:6.2f} s"
        f" ({hours / seconds:,.1f} partitions/s, containers running `true`)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=100, help="concurrency of the year backfill (default 100)")
    parser.add_argument("--docker-hours", type=int, default=48, help="partitions of the Docker backfill (default 48)")
    parser.add_argument("--docker-concurrency", type=int, default=10, help="its concurrency (default 10)")
    add_redis_argument(parser)
    args = parser.parse_args()
    start_local_ray()
    try:
        print("backfill of one hourly workflow (Redis store, on Ray)")
        asyncio.run(noop_year(args.redis_url, args.concurrency))
        asyncio.run(docker_days(args.redis_url, args.docker_hours, args.docker_concurrency))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
