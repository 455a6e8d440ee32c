"""The README's five-minute tour, verbatim, against a real `styx serve` (its own local Ray, Docker runner)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ServeProcess
from tests.integration.conftest import remove_containers

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def tour_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tour:start -->\s*```sh\n(.*?)```\s*<!-- tour:end -->", readme, re.S)
    assert block, "the README has no tour block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_tour_works_verbatim(tmp_path: Path) -> None:
    serve = ServeProcess(f"sqlite:///{tmp_path / 'styx.db'}", tmp_path)
    serve.start()
    try:
        env = {**os.environ, "STYX_CLI_HOST": serve.url}
        for command in tour_commands():
            if "<BACKFILL ID>" in command:
                backfills = httpx.get(f"{serve.url}/api/v3/backfills", params={"showAll": "true"}).json()["backfills"]
                command = command.replace("<BACKFILL ID>", backfills[0]["backfill"]["id"])
            result = subprocess.run(
                shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            if command.startswith("styx events demo hello"):
                assert "success" in result.stdout
            if command.startswith("styx logs demo hello"):
                assert "hello 2024-01-01" in result.stdout
        partitions = httpx.get(f"{serve.url}/api/v3/backfills", params={"showAll": "true", "status": "true"}).json()
        states = [s["state"] for s in partitions["backfills"][0]["statuses"]["active_states"]]
        assert states == ["DONE"] * 6
    finally:
        serve.stop()
        remove_containers(serve.installation)
