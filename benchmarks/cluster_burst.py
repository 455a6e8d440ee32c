"""Burst on a multi-node Ray cluster: the same trigger-command burst with the shards on 1, then 2 worker nodes.

    python benchmarks/cluster_burst.py [--workers 1 2] [--count 2000] [--redis-url redis://HOST:PORT/DB]

For each worker count N, a fresh cluster on this machine (cluster/local_cluster.py): a head node, where this
process (the API's part: the command facade) connects, plus N worker nodes of one CPU each offering the
`styx_worker` resource the four shards require, so the shards spread over the workers and never run on
the head (which hosts the scheduler and the broker). Every node shares this machine's two cores: the figures
show the cost of spreading over nodes (remote calls between shards, broker and scheduler), not added
capacity; the CPU seconds each part used during the burst show which part a real cluster saturates first.
"""

from __future__ import annotations

import os

# Clusters started with `ray start` use token authentication; Ray reads this when it is imported.
os.environ["RAY_AUTH_MODE"] = "token"

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlparse

import psutil
import ray
from burst import instances_of, trigger_command_burst, write_due_workflows
from harness import add_redis_argument, bench_settings, ray_service, redis_url

from cluster.local_cluster import LocalCluster, local_cluster
from cluster.ray_system import HEAD_NODE_RESOURCE, RaySystem
from styx_actors.timeutil import UTC

WORKER = {"styx_worker": 1}
SHARD_COUNT = 4


async def wait_for_nodes(count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} Ray nodes joined within {timeout} s")
        await asyncio.sleep(0.5)


@dataclass
class CpuMeter:
    """CPU seconds each part of the cluster uses between `start` and `stop`, by process: the place to see
    which part a real cluster would saturate first."""

    groups: dict[str, list[int]]  # part -> its processes
    before: dict[int, float] = field(default_factory=dict)

    @classmethod
    async def of(cls, system: RaySystem, cluster: LocalCluster, redis: str) -> CpuMeter:
        nodes = {role: await system.port(role).handle().node_id.remote() for role in system.roles}
        pids = {role: await system.port(role).handle().pid.remote() for role in system.roles}
        shard_roles = sorted(role for role in system.roles if role.startswith("shard-"))
        node_names = {
            node: f"worker node {n}" for n, node in enumerate(sorted({nodes[r] for r in shard_roles}), start=1)
        }
        groups: dict[str, list[int]] = {
            f"shards on {name}": [pids[role] for role in shard_roles if node_names[nodes[role]] == name]
            for name in sorted(node_names.values())
        }
        groups["scheduler"] = [pids["scheduler"]]
        groups["broker"] = [pids["resources"]]
        groups["API process (commands)"] = [os.getpid()]
        groups["Redis"] = [redis_pid(redis)]
        daemons = {p.pid for node in cluster.nodes for p in psutil.Process(node.pid).children(recursive=True)}
        groups["Ray daemons and idle workers"] = sorted(daemons - set(pids.values()))
        return cls(groups)

    def start(self) -> None:
        self.before = {pid: cpu_seconds(pid) for pids in self.groups.values() for pid in pids}

    def stop(self) -> str:
        used = {
            part: sum(cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in pids)
            for part, pids in self.groups.items()
        }
        return ", ".join(f"{part} {seconds:.1f}" for part, seconds in used.items())


def cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def redis_pid(url: str) -> int:
    port = urlparse(url).port or 6379
    return next(c.pid for c in psutil.net_connections("tcp") if c.laddr.port == port and c.status == psutil.CONN_LISTEN)


async def run(workers: int, count: int, given_url: str | None) -> None:
    with redis_url(given_url) as (url, prefix), local_cluster({"head": 1}, [WORKER] * workers) as cluster:
        ray.init(address=cluster.address, log_to_driver=False, namespace="styx-bench")
        try:
            await wait_for_nodes(1 + workers)
            head_node = next(node["NodeID"] for node in ray.nodes() if HEAD_NODE_RESOURCE in node["Resources"])
            settings = bench_settings(
                url, prefix, ray_address=cluster.address, shard_count=SHARD_COUNT, shard_resources={"styx_worker": 0.01}
            )
            now = datetime.now(UTC)
            workflows = await write_due_workflows(settings, count, now.replace(year=now.year + 1))
            async with ray_service(settings) as system:
                scheduler_node = await system.port("scheduler").handle().node_id.remote()
                assert scheduler_node == head_node, "the scheduler is not on the head node"
                meter = await CpuMeter.of(system, cluster, url)
                meter.start()
                figures = await trigger_command_burst(system, url, prefix, instances_of(workflows, now, 1))
                cpu = meter.stop()
            print(figures.line(f"{workers} worker node{'s' if workers > 1 else ''}"))
            print(f"    CPU seconds: {cpu}")
        finally:
            ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker node counts (default 1 2)")
    parser.add_argument("--count", type=int, default=2000, help="burst size (default 2000)")
    add_redis_argument(parser)
    args = parser.parse_args()
    print(
        f"trigger-command burst of {args.count:,} (noop runner, Redis store, {SHARD_COUNT} shards spread over the "
        f"worker nodes, head + workers on one {os.cpu_count()}-core machine); load {os.getloadavg()[0]:.1f}"
    )
    for workers in args.workers:
        asyncio.run(run(workers, args.count, args.redis_url))


if __name__ == "__main__":
    main()
