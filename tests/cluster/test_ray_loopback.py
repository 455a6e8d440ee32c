"""The local Ray of `styx serve` listens on loopback only, and its token file is private (cluster/local_ray.py).

A driver process (tests/cluster/local_ray_driver.py) starts Ray with connect_ray's arguments; every listening
socket of its process tree (the driver, GCS, raylet, dashboard and runtime-env agents, workers) must be on
127.0.0.1/::1. Without cluster/local_ray.py, 0.0.0.0 or :: for most of them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from cluster.local_ray import SINGLE_MACHINE_VARIABLE, local_ray_init, make_token_file_private
from styx_actors.settings import Settings
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
RAY_START_TIMEOUT_SECONDS = 120.0
# Variables through which the driver could find another Ray, token or mode than the test's.
RAY_VARIABLES = (
    "RAY_ADDRESS",
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
    SINGLE_MACHINE_VARIABLE,
    "STYX_RAY_ADDRESS",
)
A_TOKEN = "0123456789abcdef" * 4


@dataclass(frozen=True)
class Listening:
    ip: str
    port: int
    process: str

    @property
    def on_loopback(self) -> bool:
        address = ipaddress.ip_address(self.ip.split("%")[0])
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return (mapped or address).is_loopback


@dataclass
class LocalRay:
    driver: subprocess.Popen[str]
    report: dict[str, Any]
    home: Path

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.driver.pid)
        return [root, *root.children(recursive=True)]

    def listening(self) -> list[Listening]:
        found = []
        for process in self.processes():
            try:
                name = process.name()
                found += [
                    Listening(connection.laddr.ip, connection.laddr.port, name)
                    for connection in process.net_connections(kind="inet")
                    if connection.status == psutil.CONN_LISTEN
                ]
            except psutil.NoSuchProcess:  # a worker that just ended
                continue
        return found


def _first_line(driver: subprocess.Popen[str], timeout: float) -> str:
    assert driver.stdout is not None
    ready, _, _ = select.select([driver.stdout], [], [], timeout)
    assert ready, f"the driver printed nothing within {timeout} s"
    line = driver.stdout.readline()
    assert line, f"the driver ended ({driver.wait()}): {driver.stderr.read() if driver.stderr else ''}"
    return line


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRay]:
    """The driver's Ray, with a home of its own holding a token file that was readable by everyone."""
    home = tmp_path_factory.mktemp("home")
    token_file = home / ".ray" / "auth_token"
    token_file.parent.mkdir()
    token_file.write_text(A_TOKEN)
    token_file.chmod(0o644)
    environment = {name: value for name, value in os.environ.items() if name not in RAY_VARIABLES}
    environment["HOME"] = str(home)
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.local_ray_driver"],
        cwd=REPO,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ray = LocalRay(driver, {}, home)
    processes: list[psutil.Process] = []
    try:
        ray.report = json.loads(_first_line(driver, RAY_START_TIMEOUT_SECONDS))
        processes = ray.processes()
        yield ray
    finally:
        assert driver.stdin is not None
        driver.stdin.close()  # the driver shuts Ray down
        try:
            driver.wait(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
            for process in processes:  # whatever outlived the shutdown: only processes of this driver's tree
                if process.is_running():
                    process.kill()


def test_every_listening_socket_of_the_local_ray_is_on_loopback(local_ray: LocalRay) -> None:
    reported = {name: port for name, port in local_ray.report["ports"].items() if port > 0}
    assert {
        "gcs",
        "node manager",
        "object manager",
        "metrics exporter",
        "dashboard agent (gRPC)",
        "runtime env agent",
    } <= reported.keys()

    def every_component_listens() -> list[Listening] | None:
        listening = local_ray.listening()
        ports = {socket.port for socket in listening}
        serving_worker = any(socket.process == "ray::Echo" for socket in listening)
        return listening if set(reported.values()) <= ports and serving_worker else None

    listening = wait_for(every_component_listens, timeout=60, message=f"Ray's components to listen: {reported}")

    assert [socket for socket in listening if not socket.on_loopback] == []
    processes = {socket.process for socket in listening}
    assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::Echo"} <= processes
    assert local_ray.report["node_ip_address"] == "127.0.0.1"  # what Ray tells others: not the outward address


def test_ray_uses_the_token_file_made_private(local_ray: LocalRay) -> None:
    token_file = local_ray.home / ".ray" / "auth_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text() == A_TOKEN  # Ray kept it: the driver's Ray runs on this token


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in RAY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_a_missing_token_file_is_created_private_before_ray_would_create_it(home: Path) -> None:
    make_token_file_private()

    token_file = home / ".ray" / "auth_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    token = token_file.read_text()
    assert len(token) == 64 and int(token, 16) >= 0  # 256 random bits in hex, as Ray makes them
    make_token_file_private()
    assert token_file.read_text() == token  # an existing token is kept


def test_the_token_file_named_by_ray_auth_token_path_is_the_one_made_private(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = home / "secrets" / "ray-token"
    named.parent.mkdir()
    named.write_text(A_TOKEN)
    named.chmod(0o640)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(named))

    make_token_file_private()

    assert stat.S_IMODE(named.stat().st_mode) == 0o600
    assert not (home / ".ray").exists()


def test_a_token_in_the_environment_needs_no_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", A_TOKEN)
    make_token_file_private()
    assert not (home / ".ray").exists()


def test_a_ray_cluster_is_joined_as_it_is(home: Path) -> None:
    with local_ray_init(Settings(ray_address="10.0.0.5:6379")) as options:
        assert options == {}
        assert SINGLE_MACHINE_VARIABLE not in os.environ
    assert not (home / ".ray").exists()


def test_the_environment_is_restored_once_ray_runs(home: Path) -> None:
    from ray._private import ray_constants

    cluster_capable = ray_constants.ENABLE_RAY_CLUSTER
    with local_ray_init(Settings(ray_address=None)) as options:
        assert options == {"_node_ip_address": "127.0.0.1"}
        assert (os.environ[SINGLE_MACHINE_VARIABLE], ray_constants.ENABLE_RAY_CLUSTER) == ("0", False)
    assert SINGLE_MACHINE_VARIABLE not in os.environ
    assert ray_constants.ENABLE_RAY_CLUSTER == cluster_capable  # children may still `ray start` a cluster
