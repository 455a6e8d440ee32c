"""Driver for tests/cluster/test_ray_loopback.py: starts a local Ray as `styx serve` does, in a process of its
own (the test process hosts the session's Ray), with one actor so that a worker serves too.

Prints one JSON line, `{"ports": {component: port}, "node_ip_address": ...}` with what Ray reports for its
node, then waits until its standard input closes and shuts Ray down.
"""

from __future__ import annotations

import json
import sys

import ray

from cluster.ray_system import connect_ray
from styx_actors.settings import Settings


@ray.remote
class Echo:
    def ping(self) -> str:
        return "pong"


def main() -> None:
    connect_ray(Settings(ray_address=None, ray_namespace="styx-loopback-test"))
    echo = Echo.remote()  # type: ignore[attr-defined]
    assert ray.get(echo.ping.remote()) == "pong"
    [node] = ray.nodes()
    ports = {
        "gcs": int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]),
        "node manager": node["NodeManagerPort"],
        "object manager": node["ObjectManagerPort"],
        "metrics exporter": node["MetricsExportPort"],
        "dashboard agent (gRPC)": node["MetricsAgentPort"],
        "dashboard agent (HTTP)": node["DashboardAgentListenPort"],  # -1: not started (no dashboard)
        "runtime env agent": node["RuntimeEnvAgentPort"],
    }
    print(json.dumps({"ports": ports, "node_ip_address": node["NodeManagerAddress"]}), flush=True)
    sys.stdin.read()  # until the test closes it
    ray.shutdown()


if __name__ == "__main__":
    main()
