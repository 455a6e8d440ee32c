"""Containers: ad-hoc instances running `true` in real Docker containers, beside the engine's own rate.

    python benchmarks/containers.py [--count 200] [--redis-url redis://HOST:PORT/DB]

In one run, against the same Docker Engine and image (styx-test/busybox:latest, built by
scripts/setup-docker.sh):
  engine   `count` containers started with docker-py's `containers.run` (create, start, wait for the
           exit), from as many threads as the Docker runner uses (its parallel engine calls): the physical
           limit of this engine;
  styx     `count` workflows triggered at once through `Commands.trigger` on Ray with the Redis store and
           the Docker runner, each instance one container running `true`; until the last is DONE.
Figures: wall time and instances (containers) per second; styx as a share of the engine's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import docker
import ray
from burst import instances_of, trigger_command_burst, write_due_workflows
from harness import (
    TEST_IMAGE,
    add_redis_argument,
    bench_settings,
    ray_service,
    redis_url,
    remove_containers,
    start_local_ray,
)

from styx_actors.runners.docker import _MAX_PARALLEL_CALLS as RUNNER_PARALLEL_CALLS
from styx_actors.timeutil import UTC

ENGINE_LABEL = "styx-bench-engine-rate"


def engine_rate(count: int, parallel: int) -> float:
    """Seconds for `count` `docker run`s of `true`, `parallel` at a time."""
    client = docker.from_env(timeout=120)

    def run_one(_: int) -> None:
        client.containers.run(TEST_IMAGE, ["sh", "-c", "true"], network_mode="none", labels={ENGINE_LABEL: "1"})

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(run_one, range(count)))
        return time.perf_counter() - started
    finally:
        for container in client.containers.list(all=True, filters={"label": ENGINE_LABEL}):
            container.remove(force=True)
        client.close()


async def styx_rate(count: int, given_url: str | None) -> float:
    with redis_url(given_url) as (url, prefix):
        settings = bench_settings(url, prefix, runner="docker")
        never = datetime.now(UTC) + timedelta(days=400)
        try:
            workflows = await write_due_workflows(settings, count, never)
            async with ray_service(settings) as system:
                figures = await trigger_command_burst(
                    system, url, prefix, instances_of(workflows, datetime.now(UTC), 1)
                )
        finally:
            remove_containers(settings.docker_installation_id)
    return figures.wall_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="containers (default 200)")
    add_redis_argument(parser)
    args = parser.parse_args()
    print(f"{args.count} containers running `true` ({TEST_IMAGE}), {RUNNER_PARALLEL_CALLS} parallel engine calls")
    engine = engine_rate(args.count, RUNNER_PARALLEL_CALLS)
    print(f"  engine  docker run  {engine:6.2f} s ({args.count / engine:5.1f} containers/s)")
    start_local_ray()
    try:
        styx = asyncio.run(styx_rate(args.count, args.redis_url))
    finally:
        ray.shutdown()
    print(
        f"  styx    ad-hoc      {styx:6.2f} s ({args.count / styx:5.1f} instances/s)"
        f" = {engine / styx:.0%} of the engine's rate"
    )


if __name__ == "__main__":
    main()
