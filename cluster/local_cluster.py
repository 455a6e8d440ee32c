"""A Ray cluster of several nodes on this one machine: `ray start --head` plus `ray start --address` nodes,
each a real Ray node (own raylet, own resources), for the multi-node tests and the cluster benchmark.

Why nodes start one after the other: nodes on one host share the head's session directory, and each
`ray start` names its raylet's socket `sockets/raylet.<n>` after the first n not taken yet, a check that only
becomes true once that raylet has bound the socket. Two nodes started at once take the same name; the
second raylet dies with "bind: Address already in use" (raylet.<n>.err) and its `ray start` gives up with
"The current node timed out during startup". So each node starts once the previous one's `ray start` has
reported it running (its raylet registered; also, a node stopped while still starting ignores SIGTERM for
half a minute). Each node also gets its own agent and metrics ports: Ray's defaults (e.g. 52365) are fixed
numbers that a second node, or another Ray on the machine, already holds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
NODE_START_TIMEOUT = 120.0
_STOP_TIMEOUT = 60.0


def ray_env() -> dict[str, str]:
    """Clusters started with `ray start` use token authentication: every node and driver must say so."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _own_ports() -> list[str]:
    flags = (
        "--metrics-export-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
    )
    return [f"{flag}={free_port()}" for flag in flags]


@dataclass
class LocalCluster:
    address: str
    temp_dir: Path
    nodes: list[subprocess.Popen] = field(default_factory=list)  # the head first
    # A node drains on SIGTERM for up to 30 s by default; these throwaway clusters have nothing to drain.
    _node_env: dict[str, str] = field(
        default_factory=lambda: {**ray_env(), "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "2"}
    )

    def add_node(self, resources: dict[str, float], num_cpus: int = 1) -> subprocess.Popen:
        """Start one more node and return once `ray start` says it runs (see the module docstring)."""
        head = not self.nodes
        role = [
            "--head",
            f"--port={self.address.rsplit(':', 1)[1]}",
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=false",
        ]
        output = self.temp_dir / f"ray-start-{len(self.nodes)}.out"
        with output.open("w") as sink:
            node = subprocess.Popen(
                [
                    "ray",
                    "start",
                    *(role if head else [f"--address={self.address}"]),
                    "--block",
                    f"--num-cpus={num_cpus}",
                    f"--resources={json.dumps(resources)}",
                    "--node-ip-address=127.0.0.1",
                    "--disable-usage-stats",
                    *_own_ports(),
                ],
                env=self._node_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.nodes.append(node)
        self._wait_until_started(node, output)
        return node

    def _wait_until_started(self, node: subprocess.Popen, output: Path) -> None:
        # Printed once the node's raylet has registered with the GCS, so its socket name is taken.
        deadline = time.monotonic() + NODE_START_TIMEOUT
        while "Ray runtime started" not in output.read_text():
            if node.poll() is not None:
                raise RuntimeError(f"Ray node {len(self.nodes) - 1} exited with {node.returncode}; see {output}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Ray node {len(self.nodes) - 1} did not start within {NODE_START_TIMEOUT} s; see {output}"
                )
            time.sleep(0.1)

    def kill_raylet(self, index: int) -> None:
        """SIGKILL the raylet of node `index` (0 is the head): the node dies as if its machine failed."""
        raylets = [p for p in psutil.Process(self.nodes[index].pid).children(recursive=True) if p.name() == "raylet"]
        if not raylets:
            raise RuntimeError(f"Ray node {index} has no raylet")
        for raylet in raylets:
            raylet.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        """Stop every node by its process group, the head last; returns once no process of them is left
        (Ray's agents outlive `ray start` briefly, and would write into a removed temp dir)."""
        for node in reversed(self.nodes):
            _signal_group(node.pid, signal.SIGTERM)
            if not _gone(node, _STOP_TIMEOUT):
                _signal_group(node.pid, signal.SIGKILL)
                _gone(node, _STOP_TIMEOUT)
        self.nodes.clear()
        # Ray's worker processes run in sessions of their own, out of the nodes' groups: found by this
        # cluster's temp dir on their command line, they are given time to notice their raylet is gone.
        workers = [
            p for p in psutil.process_iter(["cmdline"]) if str(self.temp_dir) in " ".join(p.info["cmdline"] or ())
        ]
        _, left = psutil.wait_procs(workers, timeout=_STOP_TIMEOUT)
        for process in left:
            process.kill()


def _gone(node: subprocess.Popen, timeout: float) -> bool:
    """Whether the node's whole process group has exited within `timeout`."""
    deadline = time.monotonic() + timeout
    while node.poll() is None or _signal_group(node.pid, 0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _signal_group(group: int, signal_number: int) -> bool:
    """Send a signal to a process group; False when no process of it is left."""
    try:
        os.killpg(group, signal_number)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def local_cluster(head_resources: dict[str, float], node_resources: list[dict[str, float]]) -> Iterator[LocalCluster]:
    """A head offering `head_resources` and one more node per entry of `node_resources`, one CPU each."""
    # Short: Ray's socket paths under it must stay below 108 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    cluster = LocalCluster(f"127.0.0.1:{free_port()}", temp_dir)
    try:
        cluster.add_node(head_resources)
        for resources in node_resources:
            cluster.add_node(resources)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
