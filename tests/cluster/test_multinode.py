"""A two-node Ray cluster on this machine (`ray start --head` + `ray start --address`), driven end to end.

The nodes are real Ray nodes (own raylet, own resources); the Docker Engine is shared, as on one host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port, wait_for
from tests.integration.conftest import remove_containers

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TwoNodeCluster:
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen

    def kill_worker_raylet(self) -> None:
        raylets = [p for p in psutil.Process(self.worker.pid).children(recursive=True) if p.name() == "raylet"]
        assert raylets, "the worker node has no raylet"
        for raylet in raylets:
            raylet.send_signal(signal.SIGKILL)


def ray_env() -> dict[str, str]:
    # Clusters started with `ray start` use token authentication; joining nodes and drivers must say so.
    return {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def two_node_cluster(request: pytest.FixtureRequest) -> Iterator[TwoNodeCluster]:
    """Both nodes offer `styx_shard` slots (each shard takes one): 2 on the worker and, by default, 4 on the
    head, so the head can take the worker's shards when the worker dies."""
    head_slots = getattr(request, "param", 4)
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head = subprocess.Popen(
        [
            "ray", "start", "--head", f"--port={port}", f"--temp-dir={temp_dir}", "--include-dashboard=false",
            f'--resources={{"head": 1, "styx_shard": {head_slots}}}', *common,
        ],
        env=ray_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    worker = subprocess.Popen(
        ["ray", "start", f"--address=127.0.0.1:{port}", '--resources={"worker1": 1, "styx_shard": 2}', *common],
        env=ray_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        yield TwoNodeCluster(f"127.0.0.1:{port}", head, worker)
    finally:
        for process in (worker, head):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def run_driver(cluster: TwoNodeCluster, redis_url: str, tmp_path: Path, script: str, kill_worker: bool) -> dict:
    tag = uuid.uuid4().hex[:8]
    installation = f"styx-test-{tag}"
    driver = subprocess.Popen(
        [
            sys.executable, "-m", "tests.cluster.multinode_driver", "--address", cluster.address,
            "--store", f"{redis_url}?prefix=multi-{tag}", "--namespace", f"multi-{tag}",
            "--data-dir", str(tmp_path), "--script", script,
        ],
        env={**ray_env(), "STYX_DOCKER_INSTALLATION_ID": installation}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert driver.stdout is not None
        lines = []
        for line in driver.stdout:
            lines.append(line.strip())
            if line.strip() == "READY" and kill_worker:
                cluster.kill_worker_raylet()
        assert driver.wait(timeout=300) == 0, lines
        return json.loads(lines[-1])
    finally:
        if driver.poll() is None:
            driver.kill()
        remove_containers(installation)


@pytest.mark.parametrize("two_node_cluster", [2], indirect=True)  # 4 shards, 2 slots per node: both host shards
def test_scenarios_run_with_shards_on_both_nodes(two_node_cluster: TwoNodeCluster, redis_url: str, tmp_path: Path) -> None:
    result = run_driver(two_node_cluster, redis_url, tmp_path, "sleep 1", kill_worker=False)
    assert len(result["shard_nodes"]) == 2  # shards spread over both nodes
    assert set(result["last_events"].values()) == {"success"}
    assert set(result["submits"].values()) == {1}


def test_killing_a_worker_raylet_mid_run_loses_no_instance(
    two_node_cluster: TwoNodeCluster, redis_url: str, tmp_path: Path
) -> None:
    result = run_driver(two_node_cluster, redis_url, tmp_path, "sleep 3", kill_worker=True)
    # Every instance reached its end state: success, possibly after a retry of an execution lost with the node.
    assert set(result["last_events"].values()) == {"success"}, result
    assert len(result["last_events"]) == 10


def test_two_api_processes_serve_one_cluster_consistently(
    two_node_cluster: TwoNodeCluster, redis_url: str, tmp_path: Path
) -> None:
    import httpx

    from tests.e2e.conftest import ServeProcess

    shared = {
        "STYX_RAY_ADDRESS": two_node_cluster.address,
        "STYX_RAY_NAMESPACE": f"two-api-{uuid.uuid4().hex[:8]}",
        "RAY_AUTH_MODE": "token",
    }
    store = f"{redis_url}?prefix=two-api-{uuid.uuid4().hex[:8]}"
    first = ServeProcess(store, tmp_path, **shared)
    second = ServeProcess(store, tmp_path, **shared, STYX_API_ONLY="true")
    try:
        first.start()
        second.start()
        workflow = {"id": "shared", "schedule": "days", "docker_image": "styx-test/busybox:latest", "docker_args": ["true"]}
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
