"""`styx serve` as a real process (its own local Ray), for tests that kill and restart the whole service."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port, wait_for
from tests.integration.conftest import remove_containers

STOP_TIMEOUT = 20


class ServeProcess:
    """One `styx serve` over a given store; start, SIGKILL and start again."""

    def __init__(self, store_url: str, data_dir: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.installation = f"styx-test-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "STYX_STORE": store_url,
            "STYX_DATA_DIR": str(data_dir),
            "STYX_PORT": str(self.port),
            "STYX_SHARD_COUNT": "2",
            "STYX_RAY_NAMESPACE": f"e2e-{uuid.uuid4().hex[:8]}",
            "STYX_DOCKER_INSTALLATION_ID": self.installation,
            "STYX_STATE_MANAGER_TICK_INTERVAL": "1",
            "STYX_CONTAINER_GRACE_PERIOD": "0",
            **extra_env,
        }
        self.log = data_dir / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                ["styx", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._ready, timeout=90, interval=0.2, message=f"styx serve on {self.url} (log: {self.log})")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"styx serve exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the service and everything it started (its local Ray included), as a crash would. Ray's
        workers run in process groups of their own: they are found as descendants before the kill."""
        if self.process is not None:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
            os.killpg(self.process.pid, signal.SIGKILL)
            for child in descendants:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            self.process.wait(timeout=30)
            psutil.wait_procs(descendants, timeout=30)
            self.process = None

    def stop(self) -> None:
        """SIGTERM to the whole process group, as systemd and `kill -- -PGID` send it: the service and its
        local Ray (whose workers it reaches first) must all be gone within STOP_TIMEOUT seconds."""
        if self.process is None:
            return
        descendants = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"styx serve still ran {STOP_TIMEOUT} s after SIGTERM (log: {self.log})") from None
        self.process = None
        _, alive = psutil.wait_procs(descendants, timeout=STOP_TIMEOUT)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        assert not alive, f"processes outlived styx serve: {[child.pid for child in alive]}"


@pytest.fixture(params=["sqlite", "redis"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServeProcess]:
    if request.param == "sqlite":
        store_url = f"sqlite:///{tmp_path / 'styx.db'}"
    else:
        store_url = f"{request.getfixturevalue('redis_url')}?prefix=e2e-{uuid.uuid4().hex[:8]}"
    process = ServeProcess(store_url, tmp_path)
    yield process
    process.stop()
    remove_containers(process.installation)
