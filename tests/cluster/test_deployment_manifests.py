"""The deployment manifests are valid for the tools that consume them."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def test_ray_cluster_yaml_validates_against_rays_own_schema() -> None:
    config = yaml.safe_load((ROOT / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))  # raises on any schema violation
    assert config["head_node_type"] in config["available_node_types"]
    assert any("styx serve --ray-address auto" in c for c in config["head_start_ray_commands"])


def test_kuberay_manifest_declares_head_api_and_shard_workers() -> None:
    cluster, service = yaml.safe_load_all((ROOT / "cluster" / "kuberay.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "styx serve --ray-address auto" in " ".join(head["args"])
    workers = cluster["spec"]["workerGroupSpecs"][0]
    mounts = workers["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "docker-socket", "mountPath": "/var/run/docker.sock"} in mounts
    assert service["kind"] == "Service" and service["spec"]["ports"][0]["targetPort"] == 8080
