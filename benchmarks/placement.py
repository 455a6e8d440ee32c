"""Placement: the trigger burst with instances hosted by shards vs. one dedicated Ray actor per instance.

    python benchmarks/placement.py [--dedicated 30] [--sharded 30 1000] [--redis-url redis://HOST:PORT/DB]

The same burst as burst.py (b): N workflows, one `Commands.trigger` each, all at once, noop runner, Redis,
on Ray. `dedicated` starts a Ray actor process per instance (and ends it with the instance), so it runs
with a small N that this machine can hold; `sharded` runs with that N and with a large one. Per-instance
figures (seconds and RSS per instance) show the cost ratio.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timedelta

import ray
from burst import BurstFigures, instances_of, trigger_command_burst, write_due_workflows
from harness import (
    add_redis_argument,
    bench_settings,
    mib,
    ray_service,
    redis_url,
    rss,
    service_processes,
    start_local_ray,
)

from styx_actors.timeutil import UTC


async def burst(placement: str, count: int, given_url: str | None) -> tuple[BurstFigures, int]:
    """The burst's figures and the service's RSS before it."""
    with redis_url(given_url) as (url, prefix):
        settings = bench_settings(url, prefix, placement=placement)
        never = datetime.now(UTC) + timedelta(days=400)  # no natural trigger: only the command burst runs
        workflows = await write_due_workflows(settings, count, never)
        async with ray_service(settings) as system:
            idle = rss(service_processes())
            figures = await trigger_command_burst(system, url, prefix, instances_of(workflows, datetime.now(UTC), 1))
            return figures, idle


def report(placement: str, figures: BurstFigures, idle: int) -> float:
    per_instance = figures.wall_seconds / figures.count
    memory = (figures.peak_rss - idle) / figures.count
    print(
        f"  {placement:<9} {figures.count:>6,} instances: {figures.wall_seconds:6.2f} s"
        f" = {per_instance * 1000:8.2f} ms per instance"
        f" | peak RSS {mib(figures.peak_rss)} (idle {mib(idle)}): {memory / 1024:,.0f} KiB per instance at peak"
    )
    return per_instance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dedicated", type=int, default=30, help="instances in dedicated placement (default 30)")
    parser.add_argument("--sharded", type=int, nargs="+", default=[30, 1000], help="instances in sharded placement")
    add_redis_argument(parser)
    args = parser.parse_args()
    start_local_ray()
    try:
        print("trigger burst (noop runner, Redis store, on Ray), by placement")
        dedicated = report("dedicated", *asyncio.run(burst("dedicated", args.dedicated, args.redis_url)))
        sharded = [report("sharded", *asyncio.run(burst("sharded", count, args.redis_url))) for count in args.sharded]
        for count, per_instance in zip(args.sharded, sharded, strict=True):
            print(f"  dedicated / sharded({count:,}) time per instance: {dedicated / per_instance:,.0f}x")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
