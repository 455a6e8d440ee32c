"""Burst on a multi-node Ray cluster: the same trigger-command burst with shards on 1 and then 2 worker nodes.

    python benchmarks/cluster_burst.py [--workers 1 2] [--count 2000] [--redis-url redis://HOST:PORT/DB]

For each worker count, a fresh cluster on this machine: `ray start --head` (no shards: the API driver, the
scheduler and the resource broker) plus W `ray start --address` worker nodes of one CPU each, offering the
`styx_worker` resource every shard requires. All nodes share this machine's cores, so the figures show the
cost of spreading over nodes (remote calls between shards, broker and scheduler), not added capacity;
docs/performance.md says what they mean for a real multi-machine cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import ray

from burst import instances_of, trigger_command_burst, write_due_workflows
from harness import add_redis_argument, bench_settings, ray_service, redis_url
from styx_actors.timeutil import UTC

os.environ["RAY_AUTH_MODE"] = "token"  # nodes started with `ray start` authenticate with the cluster token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def cluster(workers: int) -> Iterator[str]:
    """A head and `workers` worker nodes on loopback; every process stopped by its process group."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    nodes = [
        subprocess.Popen(
            ["ray", "start", "--head", f"--port={port}", f"--temp-dir={temp_dir}", "--include-dashboard=false",
             "--num-cpus=1", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    ]
    nodes += [
        subprocess.Popen(
            ["ray", "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", '--resources={"styx_worker": 1}', *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for _ in range(workers)
    ]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)


def connect(address: str, timeout: float = 120) -> None:
    """Join the cluster once its head answers (a head takes several seconds to start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ray.init(address=address, log_to_driver=False, namespace="styx-bench")
            return
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


async def wait_for_nodes(count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} Ray nodes joined within {timeout} s")
        await asyncio.sleep(0.5)


async def run(workers: int, count: int, given_url: str | None) -> None:
    with redis_url(given_url) as (url, prefix), cluster(workers) as address:
        connect(address)
        try:
            await wait_for_nodes(1 + workers)
            settings = bench_settings(
                url, prefix, ray_address=address, shard_count=4, shard_resources={"styx_worker": 0.01}
            )
            now = datetime.now(UTC)
            workflows = await write_due_workflows(settings, count, now.replace(year=now.year + 1))
            async with ray_service(settings) as system:
                figures = await trigger_command_burst(system, url, prefix, instances_of(workflows, now, 1))
            print(figures.line(f"{workers} worker node{'s' if workers > 1 else ''}"))
        finally:
            ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker node counts (default 1 2)")
    parser.add_argument("--count", type=int, default=2000, help="burst size (default 2000)")
    add_redis_argument(parser)
    args = parser.parse_args()
    print(f"trigger-command burst of {args.count:,} (noop runner, Redis store, 4 shards on the worker nodes)")
    for workers in args.workers:
        asyncio.run(run(workers, args.count, args.redis_url))


if __name__ == "__main__":
    main()
