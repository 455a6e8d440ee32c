"""Fixtures for the dashboard tests: the real service over HTTP (BackgroundService on SQLite with the Docker
runner, its containers removed afterwards) and Debian's Chromium driven headless by Playwright (no browser
download: the system binary is launched through `executable_path`).

Playwright's sync API runs an event loop of its own while it is open, so it is opened per module, never for
the whole session: the asyncio tests that run after this module must find no loop running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.cli.conftest import serve
from tests.conftest import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Every browser test module: real containers, and Debian's Chromium.
BROWSER_TESTS = [
    pytest.mark.docker,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]
IMAGE = "styx-test/busybox:latest"
# Long enough for a container to run to DONE on a busy machine; every container in these tests ends by itself
# or is halted.
UNTIL_DONE_MS = 40_000
# A laptop screen.
VIEWPORT = {"width": 1366, "height": 860}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab; the test fails on any uncaught error in the dashboard's script."""
    context = browser.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    yield context.new_page()
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture(scope="module")
def styx_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API and dashboard of one service (one per test module)."""
    with serve(tmp_path_factory.mktemp("dashboard")) as url:
        yield url


@pytest.fixture(scope="module")
def styx_api(styx_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{styx_url}/api/v3", timeout=30) as client:
        yield client


def screenshot(page: Any, name: str) -> None:
    """Saves the page, whole, as docs/screenshots/<name>.png (referenced by docs/dashboard.md)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def create_workflow(api: httpx.Client, component: str, workflow_id: str, **config: Any) -> None:
    body = {"id": workflow_id, "schedule": "days", "docker_image": IMAGE, "docker_args": ["echo", "hello"], **config}
    response = api.post(f"/workflows/{component}", json=body)
    assert response.status_code == 200, response.text


def trigger(api: httpx.Client, component: str, workflow_id: str, parameter: str, **env: str) -> None:
    body = {
        "workflow_id": {"component_id": component, "id": workflow_id},
        "parameter": parameter,
        "trigger_parameters": {"env": env},
    }
    response = api.post("/scheduler/trigger", json=body)
    assert response.status_code == 200, response.text


def active_state(api: httpx.Client, component: str, workflow_id: str, parameter: str) -> str | None:
    """The instance's active state, None when it is not active."""
    response = api.get("/status/activeStates", params={"component": component, "workflow": workflow_id})
    states = [s for s in response.json()["active_states"] if s["workflow_instance"]["parameter"] == parameter]
    return states[0]["state"] if states else None


def wait_until_finished(api: httpx.Client, component: str, workflow_id: str, parameter: str) -> None:
    """Until the instance's latest trigger is complete (DONE or ERROR)."""

    def finished() -> bool:
        response = api.get(f"/workflows/{component}/{workflow_id}/instances/{parameter}")
        return response.status_code == 200 and response.json()["triggers"][-1]["complete"]

    wait_for(finished, timeout=UNTIL_DONE_MS / 1000, message=f"{component}/{workflow_id}/{parameter} to finish")


def open_page(page: Page, base: str, fragment: str) -> None:
    page.goto(f"{base}/#/{fragment}")
