"""Ray clusters of two and three nodes on this machine (`ray start --head` + `ray start --address`, see
cluster/local_cluster.py), driven end to end.

The nodes are real Ray nodes (own raylet, own resources); the Docker Engine is shared, as on one host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.local_cluster import ROOT, LocalCluster, local_cluster, ray_env
from tests.conftest import wait_for
from tests.integration.conftest import remove_containers

pytestmark = pytest.mark.docker

# Each shard takes one `styx_shard` slot: where the slots are is where the shards may go.
HEAD_AND_WORKER = ({"head": 1, "styx_shard": 4}, [{"worker1": 1, "styx_shard": 2}])  # the head can take over
SHARDS_ON_HEAD = ({"head": 1, "styx_shard": 4}, [{"worker1": 1}])  # the worker node only has a runner
HEAD_AND_TWO_WORKERS = ({"head": 1}, [{"worker1": 1, "styx_shard": 2}, {"worker2": 1, "styx_shard": 2}])


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """A head and worker nodes on this machine (cluster/local_cluster.py); by default HEAD_AND_WORKER."""
    head, nodes = getattr(request, "param", HEAD_AND_WORKER)
    with local_cluster(head, nodes) as started:
        yield started


def run_driver(
    cluster: LocalCluster, redis_url: str, tmp_path: Path, script: str, *options: str, kill_worker: bool = False
) -> dict:
    tag = uuid.uuid4().hex[:8]
    installation = f"styx-test-{tag}"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.multinode_driver",
            "--address",
            cluster.address,
            "--store",
            f"{redis_url}?prefix=multi-{tag}",
            "--namespace",
            f"multi-{tag}",
            "--data-dir",
            str(tmp_path),
            "--script",
            script,
            "--installation",
            installation,
            "--nodes",
            str(len(cluster.nodes)),
            *options,
        ],
        env=ray_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert driver.stdout is not None
        lines = []
        for line in driver.stdout:
            lines.append(line.strip())
            if line.strip() == "READY" and kill_worker:
                cluster.kill_raylet(1)
        assert driver.wait(timeout=300) == 0, lines
        return json.loads(lines[-1])
    finally:
        if driver.poll() is None:
            driver.kill()
        remove_containers(installation)


@pytest.mark.parametrize("cluster", [HEAD_AND_TWO_WORKERS], indirect=True)
def test_scenarios_run_with_shards_on_both_worker_nodes(cluster: LocalCluster, redis_url: str, tmp_path: Path) -> None:
    """The deployment's topology: the head runs the scheduler and the broker, two worker nodes the shards."""
    result = run_driver(cluster, redis_url, tmp_path, "sleep 1")
    assert result["shard_nodes"] == [2, 2]  # 4 shards, 2 on each worker node, none on the head
    assert set(result["last_events"].values()) == {"success"}
    assert set(result["submits"].values()) == {1}


@pytest.mark.parametrize("cluster", [SHARDS_ON_HEAD], indirect=True)
def test_executions_go_to_a_node_with_capacity_and_are_never_started_twice(
    cluster: LocalCluster, redis_url: str, tmp_path: Path
) -> None:
    # Every shard is on the head; one execution per node at a time, six at once: the head's runner fills,
    # and the others go to the worker node's runner or wait until one of the two has room.
    result = run_driver(
        cluster, redis_url, tmp_path, "sleep 2", "--scenario", "capacity", "--instances", "6", "--runner-capacity", "1"
    )
    assert result["shard_nodes"] == [4]
    assert set(result["last_events"].values()) == {"success"}, result
    assert set(result["submits"].values()) == {1}, result  # each instance started one execution
    assert result["on_several_runners"] == []  # and each execution ran on one runner only
    assert result["peak_per_runner"] == 1
    assert result["peak_total"] == 2  # both nodes ran one at once
    per_runner = result["executions_per_runner"]
    assert len(per_runner) == 2 and min(per_runner) >= 1 and sum(per_runner) == 6, result  # the worker's runner too


def test_killing_a_worker_raylet_mid_run_loses_no_instance(
    cluster: LocalCluster, redis_url: str, tmp_path: Path
) -> None:
    result = run_driver(cluster, redis_url, tmp_path, "sleep 3", kill_worker=True)
    # Every instance reached its end state: success, possibly after a retry of an execution lost with the node.
    assert set(result["last_events"].values()) == {"success"}, result
    assert len(result["last_events"]) == 10


def test_two_api_processes_serve_one_cluster_consistently(
    cluster: LocalCluster, redis_url: str, tmp_path: Path
) -> None:
    import httpx

    from tests.e2e.conftest import ServeProcess

    shared = {
        "STYX_RAY_ADDRESS": cluster.address,
        "STYX_RAY_NAMESPACE": f"two-api-{uuid.uuid4().hex[:8]}",
        "RAY_AUTH_MODE": "token",
    }
    store = f"{redis_url}?prefix=two-api-{uuid.uuid4().hex[:8]}"
    first = ServeProcess(store, tmp_path, **shared)
    second = ServeProcess(store, tmp_path, **shared, STYX_API_ONLY="true")
    try:
        first.start()
        second.start()
        workflow = {
            "id": "shared",
            "schedule": "days",
            "docker_image": "styx-test/busybox:latest",
            "docker_args": ["true"],
        }
        assert httpx.post(f"{first.url}/api/v3/workflows/two", json=workflow).status_code == 200
        assert httpx.get(f"{second.url}/api/v3/workflows/two/shared").json()["configuration"]["id"] == "shared"
        trigger = {"workflow_id": {"component_id": "two", "id": "shared"}, "parameter": "2020-01-01"}
        assert httpx.post(f"{second.url}/api/v3/scheduler/trigger", json=trigger).status_code == 200

        def succeeded() -> bool:
            events = httpx.get(f"{first.url}/api/v3/status/events/two/shared/2020-01-01").json()["events"]
            return bool(events) and events[-1]["event"]["@type"] == "success"

        wait_for(succeeded, timeout=120, interval=0.5, message="the instance triggered through the second API")
    finally:
        second.stop()
        first.stop()
        remove_containers(first.installation)
        remove_containers(second.installation)
