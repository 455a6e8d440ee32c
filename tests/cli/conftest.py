"""Fixtures for the CLI tests: the real API served over HTTP, and the `styx` CLI run as a subprocess.

The service is the app over an in-process actor system (styx_server.service.BackgroundService) on a
temporary SQLite store with the Docker runner, one per test module. The CLI runs exactly as a user runs
it, in a child process, with an environment that holds no Google credentials, so no request ever leaves
the machine.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from styx_actors.settings import Settings
from styx_server.auth_mode import OPEN_ACCESS, AuthChoice
from styx_server.service import BackgroundService
from tests.conftest import free_port, settings_for_tests
from tests.integration.conftest import remove_containers

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
IMAGE = "styx-test/busybox:latest"
CLI_TIMEOUT_SECONDS = 60
# What API errors end with: the request id the CLI sent (a dash-less uuid4), echoed by the service.
REQUEST_ID_SUFFIX = r"\(Request ID: [0-9a-f]{32}\)$"
# Variables through which the CLI could find a host or credentials other than the test's, or (unbuffered
# output) hide a missing flush of what `--follow` prints.
CLEARED_VARIABLES = (
    "PYTHONUNBUFFERED",
    "STYX_CLI_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCE_METADATA_HOST",
    "K_SERVICE",
    "FORCE_COLOR",
)


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def cli_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in CLEARED_VARIABLES}
    env["HOME"] = str(home)  # no gcloud credentials file
    env["CLOUDSDK_CONFIG"] = str(home / "gcloud")
    env.update(extra or {})
    return env


def run_cli(args: list[str], home: Path, stdin: str | None = None, env: Mapping[str, str] | None = None) -> Result:
    completed = subprocess.run(
        [sys.executable, "-m", "styx_server.cli", *args],
        input=stdin if stdin is not None else "",
        check=False,
        capture_output=True,
        text=True,
        env=cli_environment(home, env),
        timeout=CLI_TIMEOUT_SECONDS,
        cwd=REPO,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def run_cli_on_terminal(args: list[str], home: Path, typed: str, env: Mapping[str, str] | None = None) -> Result:
    """Run the CLI with a pseudo-terminal as standard input (as a person at a console), typing `typed`."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "styx_server.cli", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_environment(home, env),
            cwd=REPO,
        )
        os.close(terminal)
        terminal = -1
        os.write(controller, typed.encode())
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    return Result(process.returncode, stdout, stderr)


class Styx:
    """The CLI bound to one API host: `styx("ls", "--json")`."""

    def __init__(self, host: str, home: Path) -> None:
        self.host = host
        self.home = home

    def __call__(self, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        return run_cli(list(args), self.home, stdin, {"STYX_CLI_HOST": self.host, **(env or {})})

    def on_terminal(self, *args: str, typed: str) -> Result:
        return run_cli_on_terminal(list(args), self.home, typed, {"STYX_CLI_HOST": self.host})

    def ok(self, *args: str, stdin: str | None = None) -> Result:
        """Run and require exit status 0."""
        result = self(*args, stdin=stdin)
        assert result.code == 0, f"styx {' '.join(args)} exited {result.code}: {result.stderr}"
        return result


def service_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": f"sqlite:///{data_dir / 'styx.db'}",
        "actor_system": "local",
        "host": "127.0.0.1",
        "port": 0,
        "runner": "docker",
        "trigger_tick_interval": timedelta(seconds=0.2),
        "backfill_tick_interval": timedelta(seconds=0.2),
    }
    return settings_for_tests(data_dir, "cli-test", **{**values, **overrides})


@contextmanager
def serve(data_dir: Path, auth: AuthChoice = OPEN_ACCESS, **overrides: Any) -> Iterator[str]:
    """The API on a free loopback port until the block ends (`overrides`: settings); yields its URL. Its
    containers are removed afterwards."""
    settings = service_settings(data_dir, **overrides)
    try:
        with BackgroundService(settings, auth=auth) as service:
            yield service.url
    finally:  # the service's janitor would remove finished containers only a minute later
        remove_containers(settings.docker_installation_id)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def styx(tmp_path_factory: pytest.TempPathFactory, cli_home: Path) -> Iterator[Styx]:
    """The CLI against a service of its own (one per test module)."""
    with serve(tmp_path_factory.mktemp("service")) as url:
        yield Styx(url, cli_home)


@pytest.fixture
def offline_styx(cli_home: Path) -> Styx:
    """The CLI pointed at a loopback port where nothing listens: any API call would fail with status 3."""
    return Styx(f"http://127.0.0.1:{free_port()}", cli_home)
