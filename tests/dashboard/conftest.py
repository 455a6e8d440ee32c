"""Fixtures for the dashboard tests: the real service over HTTP (BackgroundService on SQLite with the Docker
runner) and Debian's Chromium driven headless by Playwright (no browser download: the system binary is
launched through `executable_path`).

Playwright's sync API runs an event loop of its own while it is open, so it is opened per module, never for
the whole session: the asyncio tests that run after this module must find no loop running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from styx_server.auth_mode import OPEN_ACCESS, AuthChoice
from styx_server.service import BackgroundService
from tests.cli.conftest import service_settings

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
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def start_service(data_dir: Path, auth: AuthChoice = OPEN_ACCESS) -> BackgroundService:
    return BackgroundService(service_settings(data_dir), auth=auth)


@pytest.fixture(scope="module")
def styx_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API and dashboard of one service (one per test module)."""
    with start_service(tmp_path_factory.mktemp("dashboard")) as service:
        yield service.url


@pytest.fixture(scope="module")
def styx_api(styx_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{styx_url}/api/v3", timeout=30) as client:
        yield client


def screenshot(page: Any, name: str) -> None:
    """Saves the page, whole, as docs/screenshots/<name>.png (referenced by docs/dashboard.md)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
