"""The processes a chaos run starts and breaks: its own redis-server (AOF on) and `styx serve`, each stopped,
killed, paused and restarted by its own PID (never by name)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import redis

from cluster.local_cluster import ROOT, free_port

log = logging.getLogger(__name__)

ACTOR_PROCESS_TITLE = "ray::ActorHost"  # what Ray titles an actor process of cluster/ray_system.py
STOP_TIMEOUT_SECONDS = 30.0
HELPER_TIMEOUT_SECONDS = 60.0
RESTART_BACKOFF_SECONDS = 1.0


class RedisProcess:
    """A redis-server on a free loopback port with AOF (fsync every second); a restart keeps its port, its
    directory and so every acknowledged write."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed; install it or pass --store redis://...")
        self.port = free_port()
        self.directory = directory
        self._args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory)]
        self._args += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("a") as output:
            self.process = subprocess.Popen(self._args, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with redis.Redis(port=self.port, socket_timeout=1) as client:
            while True:
                try:
                    if client.ping():  # answers only once the AOF is loaded
                        return
                except redis.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis writes its AOF out and exits (resumed first, should it be paused)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class ServiceProcess:
    """`styx serve` as shipped (its own local Ray), configured by STYX_* variables."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int, namespace: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.namespace = namespace
        self._env = env
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> float | None:
        """Start it and wait for `/readyz`; the seconds that took, None when not within `timeout`. A start that
        fails (say its store does not answer yet) is tried again, as a process supervisor would."""
        began = time.monotonic()
        deadline = began + timeout
        while time.monotonic() < deadline:
            with self._log_path.open("a") as output:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "styx_server.cli", "serve"],
                    env=self._env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: a kill takes its Ray along
                    cwd=ROOT,
                )
            if wait_ready(self.url, deadline - time.monotonic(), self.process):
                return time.monotonic() - began
            if self.process.poll() is None:
                return None  # still starting at the deadline: the caller decides
            log.warning("styx serve exited with %d while starting; starting it again", self.process.returncode)
            self.kill()  # whatever it left behind
            time.sleep(RESTART_BACKOFF_SECONDS)
        return None

    def exit_code(self) -> int | None:
        """The exit code when the process ended (by itself: kill and stop forget the process)."""
        return self.process.poll() if self.process is not None else None

    def descendants(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the service and everything it started, as a crash of its machine would. Ray gives each
        worker (every actor) a process group of its own, so those are killed by PID, from the list taken
        before their parent died."""
        if self.process is None:
            return
        descendants = self.descendants()
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.process = None
        _kill_all(descendants)

    def stop(self) -> None:
        """SIGTERM to the service alone (it stops its actors and its Ray), SIGKILL to what is left after."""
        if self.process is None:
            return
        descendants = self.descendants()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.process = None
        _kill_all(descendants)

    def actor_pids(self) -> dict[str, int]:
        """The service's actors by name (`styx-shard-0`, `styx-resources`, ...), asked of its Ray's GCS by a
        helper process (ray_actors.py). Actor processes the GCS does not name (it could not be asked) are
        listed as `actor pid N`. Only processes of this service are listed."""
        actors = {p.pid: p for p in self.descendants() if _title(p).startswith(ACTOR_PROCESS_TITLE)}
        named: dict[str, int] = {}
        gcs = self.raylet_argument("--gcs-address")
        if gcs is not None:
            try:
                helper = subprocess.run(
                    [sys.executable, "-m", "benchmarks.chaos.ray_actors", gcs, self.namespace],
                    env={**self._env, "RAY_AUTH_MODE": self._env.get("RAY_AUTH_MODE", "token")},
                    capture_output=True,
                    text=True,
                    timeout=HELPER_TIMEOUT_SECONDS,
                    cwd=ROOT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                log.warning("the GCS did not name the actors within %.0f s", HELPER_TIMEOUT_SECONDS)
            else:
                if helper.returncode == 0:
                    named = {name: pid for name, pid in json.loads(helper.stdout).items() if pid in actors}
                else:
                    last_line = (helper.stderr.strip().splitlines() or ["no error output"])[-1]
                    log.warning("the GCS did not name the actors: %s", last_line)
        unnamed = set(actors) - set(named.values())
        return {**named, **{f"actor pid {pid}": pid for pid in sorted(unnamed)}}

    def raylet_argument(self, name: str) -> str | None:
        """A flag the service's raylet was started with: `--gcs-address` (where its GCS listens),
        `--session_dir` (where its actors' logs are, under `logs/worker-*`)."""
        for process in self.descendants():
            try:
                if process.name() != "raylet":
                    continue
                for argument in process.cmdline():
                    if argument.startswith(f"{name}="):
                        return argument.split("=", 1)[1]
            except psutil.Error:
                continue
        return None


def wait_ready(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll `/readyz` until it answers 200 (True), the deadline passes or the process exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=STOP_TIMEOUT_SECONDS)


def _title(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""
