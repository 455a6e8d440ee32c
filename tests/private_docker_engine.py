"""A Docker Engine of the test's own: dockerd and its containerd under one temporary directory.

The machine's engine is shared by the whole suite, so a test that stops and restarts an engine starts this one
instead: its own socket, data root, exec root, pid file and containerd, no bridge, no iptables, vfs storage
(what works inside a CI container). Processes are started and stopped by PID, never by name. Needs root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[1]
BUILD_TEST_IMAGE = REPO / "scripts" / "build-test-image.sh"
START_TIMEOUT_SECONDS = 30.0
# Without live restore dockerd stops every running container on its way out (SIGTERM, SIGKILL after 10 s).
STOP_TIMEOUT_SECONDS = 30.0

# Everything under the engine's directory; the CRI plugin is Kubernetes', which dockerd does not use.
CONTAINERD_CONFIG = """\
version = 2
root = "{home}/containerd/root"
state = "{home}/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{home}/containerd.sock"
[ttrpc]
  address = "{home}/containerd.sock.ttrpc"
"""


class PrivateDockerEngine:
    """`start()` / `stop()` dockerd as often as a test likes; `close()` removes every trace.

    containerd is started once and stays up while dockerd stops and starts, as on a host where the
    containerd service outlives the docker service: with `live_restore` the containers keep running.
    """

    def __init__(self, live_restore: bool = False) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="styx-dockerd-"))
        self.live_restore = live_restore
        self.url = f"unix://{self.home / 'docker.sock'}"
        self.data_root = self.home / "data"
        self._containerd: subprocess.Popen[bytes] | None = None
        self._dockerd: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._dockerd is not None

    def start(self) -> None:
        """Start dockerd (and containerd, the first time) and wait until the engine answers."""
        for binary in ("dockerd", "containerd", "ctr"):
            if shutil.which(binary) is None:
                pytest.fail(f"{binary} is not installed (run scripts/setup-docker.sh)")
        if os.geteuid() != 0:
            pytest.fail("a private Docker Engine needs root")
        if self._containerd is None:
            self._start_containerd()
        assert self._dockerd is None, "dockerd is already running"
        args = [
            "dockerd",
            f"--host={self.url}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.home / 'exec'}",
            f"--pidfile={self.home / 'dockerd.pid'}",
            f"--containerd={self.home / 'containerd.sock'}",
            "--iptables=false",
            "--bridge=none",
            "--storage-driver=vfs",
        ]
        if self.live_restore:
            args.append("--live-restore")
        self._dockerd = self._spawn(args)
        wait_for(
            lambda: self._alive(self._dockerd) and self.answers(),
            START_TIMEOUT_SECONDS,
            interval=0.05,
            message=f"the private Docker Engine at {self.url}",
        )

    def stop(self) -> None:
        """SIGTERM to dockerd (by PID), as `systemctl stop docker` does; returns once it exited."""
        assert self._dockerd is not None, "dockerd is not running"
        self._terminate(self._dockerd)
        self._dockerd = None

    def answers(self) -> bool:
        try:
            with docker.APIClient(base_url=self.url, timeout=2) as api:
                return bool(api.ping())
        except (docker.errors.DockerException, OSError):
            return False

    def task_statuses(self) -> dict[str, str]:
        """containerd's own view of dockerd's containers, by container id (RUNNING, STOPPED, ...): it
        answers while dockerd is down."""
        listing = self._ctr("tasks", "ls")
        rows = [line.split() for line in listing.splitlines()[1:]]  # TASK PID STATUS
        return {row[0]: row[-1] for row in rows if row}

    @contextmanager
    def client(self) -> Iterator[docker.DockerClient]:
        client = docker.DockerClient(base_url=self.url, timeout=30)
        try:
            yield client
        finally:
            client.close()

    def import_test_image(self) -> None:
        """The suite's test image, built the way scripts/setup-docker.sh builds it for the shared engine."""
        environment = {**os.environ, "DOCKER_HOST": self.url}
        build = subprocess.run(
            ["bash", str(BUILD_TEST_IMAGE)], env=environment, capture_output=True, text=True, check=False
        )
        if build.returncode != 0:
            pytest.fail(f"{BUILD_TEST_IMAGE} failed on the private engine:\n{build.stderr}")

    def close(self) -> None:
        """Remove every container, stop dockerd and containerd, unmount and delete the directory.

        Containers go through the engine (started again if a test left it down); should that fail, containerd
        kills what still runs, so no container process or shim outlives the test.
        """
        try:
            if self._containerd is not None:
                if self._dockerd is None:
                    self.start()
                with self.client() as client:
                    for container in client.containers.list(all=True):
                        container.remove(force=True)
        finally:
            if self._containerd is not None and self._containerd.poll() is None:
                tasks = list(self.task_statuses())
                if tasks:
                    self._ctr("tasks", "delete", "--force", *tasks)
            for process in (self._dockerd, self._containerd):
                if process is not None:
                    self._terminate(process)
            self._dockerd = self._containerd = None
            # dockerd bind-mounts its data root onto itself and leaves it mounted; network namespaces of
            # containers it did not get to remove stay mounted under the exec root.
            for mount_point in sorted(_mount_points_under(self.home), reverse=True):
                subprocess.run(["umount", mount_point], check=True)
            shutil.rmtree(self.home, ignore_errors=True)

    def _log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join((self.home / name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # -- processes ------------------------------------------------------------------------------------------

    def _ctr(self, *args: str) -> str:
        """containerd's own client, in dockerd's namespace."""
        address = f"--address={self.home / 'containerd.sock'}"
        command = ["ctr", address, "--namespace=moby", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    def _start_containerd(self) -> None:
        config = self.home / "containerd.toml"
        config.write_text(CONTAINERD_CONFIG.format(home=self.home))
        self._containerd = self._spawn(["containerd", f"--config={config}"])
        socket = self.home / "containerd.sock"
        wait_for(
            lambda: self._alive(self._containerd) and socket.exists(),
            START_TIMEOUT_SECONDS,
            interval=0.05,
            message=f"containerd at {socket}",
        )

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        """Start a daemon, its output in `<program>.log`."""
        with (self.home / f"{args[0]}.log").open("ab") as log:
            # Its own session: a Ctrl-C meant for pytest does not reach the engine half-way through a test.
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def _alive(self, process: subprocess.Popen[bytes] | None) -> bool:
        """True while it runs; a daemon that died while being waited for fails the test with its log."""
        assert process is not None
        if process.poll() is not None:
            program = _program(process)
            raise AssertionError(f"{program} exited with {process.returncode}:\n{self._log_tail(f'{program}.log')}")
        return True

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            message = f"{_program(process)} (pid {process.pid}) ignored SIGTERM for {STOP_TIMEOUT_SECONDS} s"
            raise AssertionError(message) from None


def _program(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    assert isinstance(args, list)
    return str(args[0])


def _mount_points_under(directory: Path) -> list[str]:
    prefix = f"{directory}/"
    with open("/proc/self/mountinfo") as mounts:
        return [point for point in (line.split()[4] for line in mounts) if point.startswith(prefix)]
