"""dredd 14 replays every example transaction of the v3 contract (../shared/spec/api.apib from the
repository root) against a real HTTP server on a real Docker runner; dredd_hooks.js seeds what each
example assumes.

dredd is installed from npm into ~/.cache/styx-actors/dredd on first use (about 10 s; outside the
repository, so it outlives CI's fresh clones and is never committed); the test is skipped only when npm is
not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from styx_server.service import BackgroundService
from tests.api.conftest import SYSTEMS, api_settings
from tests.integration.conftest import TEST_IMAGE, remove_containers

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "spec" / "api.apib"
HOOKS = Path(__file__).with_name("dredd_hooks.js")
DREDD_PREFIX = Path.home() / ".cache" / "styx-actors" / "dredd"
DREDD = DREDD_PREFIX / "node_modules" / ".bin" / "dredd"
DREDD_VERSION = "14"
INSTALL_TIMEOUT_SECONDS = 300
DREDD_TIMEOUT_SECONDS = 90
# dredd's closing line, e.g. "complete: 22 passing, 0 failing, 0 errors, 0 skipped, 22 total"
SUMMARY = re.compile(r"complete: (?P<passing>\d+) passing, .*, (?P<total>\d+) total")


def dredd_executable() -> Path:
    if DREDD.exists():
        return DREDD
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: dredd (npm package dredd@14) cannot be installed")
    install = [
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(DREDD_PREFIX),
        f"dredd@{DREDD_VERSION}",
    ]
    subprocess.run(
        [npm, *install],
        check=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    return DREDD


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_api_passes_dredd_against_the_contract(tmp_path: Path, system: str, request: pytest.FixtureRequest) -> None:
    """Over both actor systems: `ray` is what `styx serve` runs."""
    assert CONTRACT.exists(), f"the contract is expected at {CONTRACT} (shared/ beside the repository)"
    dredd = dredd_executable()
    if system == "ray":
        request.getfixturevalue("ray_runtime")
    settings = api_settings(tmp_path, port=0, runner="docker", actor_system=system, allowed_hosts=[])
    try:
        with BackgroundService(settings) as service:
            result = subprocess.run(
                [
                    str(dredd),
                    str(CONTRACT),
                    f"{service.url}/api",
                    "--hookfiles",
                    str(HOOKS),
                    "--language",
                    "nodejs",
                    "--loglevel",
                    "warning",
                    "--no-color",
                ],
                env={**os.environ, "STYX_CONTRACT_API": f"{service.url}/api/v3", "STYX_CONTRACT_IMAGE": TEST_IMAGE},
                capture_output=True,
                text=True,
                timeout=DREDD_TIMEOUT_SECONDS,
                cwd=tmp_path,
            )
    finally:
        remove_containers(settings.docker_installation_id)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    summary = SUMMARY.search(report)
    assert summary is not None, report
    # Every transaction dredd compiles from the contract passes: none failed, errored or was skipped.
    assert summary["passing"] == summary["total"] != "0", report
