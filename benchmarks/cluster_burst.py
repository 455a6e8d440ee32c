"""Burst on a multi-node Ray cluster: the same trigger-command burst with shards spread over 1, then 2 nodes.

    python benchmarks/cluster_burst.py [--nodes 1 2] [--count 2000] [--redis-url redis://HOST:PORT/DB]

For each node count N, a fresh cluster on this machine: `ray start --head` plus N-1 `ray start --address`
nodes of one CPU each, every node offering the `styx_worker` resource the shards require (so with N = 2 the
four shards spread over both). A third Ray node on the same machine does not join here (see
docs/performance.md). All nodes share this machine's two cores, so the figures show the cost of spreading
over nodes (remote calls between shards, broker and scheduler), not added capacity.
"""

from __future__ import annotations

import os

# Clusters started with `ray start` use token authentication; Ray reads this when it is imported.
os.environ["RAY_AUTH_MODE"] = "token"

import argparse
import asyncio
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



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_ports() -> list[str]:
    """Ports of a node's agents: several nodes on one machine must not share Ray's fixed defaults."""
    flags = ("--metrics-export-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
             "--runtime-env-agent-port")
    return [f"{flag}={free_port()}" for flag in flags]


@contextmanager
def cluster(nodes_count: int) -> Iterator[str]:
    """A head and `nodes_count - 1` more nodes on loopback; every process stopped by its process group."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    nodes = [
        subprocess.Popen(
            ["ray", "start", "--head", f"--port={port}", f"--temp-dir={temp_dir}", "--include-dashboard=false",
             "--num-cpus=1", '--resources={"styx_worker": 1}', *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    ]
    nodes += [
        subprocess.Popen(
            ["ray", "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", '--resources={"styx_worker": 1}',
             *node_ports(), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for _ in range(nodes_count - 1)
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


async def run(nodes_count: int, count: int, given_url: str | None) -> None:
    with redis_url(given_url) as (url, prefix), cluster(nodes_count) as address:
        connect(address)
        try:
            await wait_for_nodes(nodes_count)
            settings = bench_settings(
                url, prefix, ray_address=address, shard_count=4, shard_resources={"styx_worker": 0.01}
            )
            now = datetime.now(UTC)
            workflows = await write_due_workflows(settings, count, now.replace(year=now.year + 1))
            async with ray_service(settings) as system:
                figures = await trigger_command_burst(system, url, prefix, instances_of(workflows, now, 1))
            print(figures.line(f"shards on {nodes_count} node{'s' if nodes_count > 1 else ''}"))
        finally:
            ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2], help="node counts (default 1 2)")
    parser.add_argument("--count", type=int, default=2000, help="burst size (default 2000)")
    add_redis_argument(parser)
    args = parser.parse_args()
    print(f"trigger-command burst of {args.count:,} (noop runner, Redis store, 4 shards spread over the nodes)")
    for nodes_count in args.nodes:
        asyncio.run(run(nodes_count, args.count, args.redis_url))


if __name__ == "__main__":
    main()
