"""The dashboard in a real headless Chromium against the real service: every page loads, and the actions a
user takes on it (enable, trigger, backfill, halt) go through the API and show their outcome. The instance
grid, run summaries and outputs: test_instances.py; live refresh: test_live_pages.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from api.security import AllowAll, Principal, Unauthorized
from styx_server.auth_mode import AuthChoice
from tests.cli.conftest import serve
from tests.dashboard.conftest import (
    BROWSER_TESTS,
    UNTIL_DONE_MS,
    create_workflow,
    open_page,
    screenshot,
)

pytestmark = BROWSER_TESTS


def test_workflows_page_lists_filters_and_searches(page: Page, styx_url: str, styx_api: httpx.Client) -> None:
    create_workflow(styx_api, "reports", "daily-summary")
    create_workflow(styx_api, "ingest", "events", schedule="hours")
    styx_api.patch("/workflows/ingest/events/state", json={"enabled": True})
    refusals: list[str] = []
    page.on(
        "console",
        lambda message: refusals.append(message.text) if "Content Security Policy" in message.text else None,
    )
    open_page(page, styx_url, "workflows")
    # Authentication is off on loopback: no token box.
    expect(page.locator("#token-form")).to_be_hidden()
    rows = page.locator("main tbody tr")
    expect(rows.filter(has_text="daily-summary")).to_have_count(1)
    expect(rows.filter(has_text="events")).to_contain_text("hours")

    page.select_option("#component-filter", "ingest")
    expect(rows.filter(has_text="daily-summary")).to_have_count(0)
    expect(rows.filter(has_text="events")).to_have_count(1)
    page.select_option("#component-filter", "")
    page.fill("#workflow-search", "summary")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("daily-summary")
    page.fill("#workflow-search", "no-such-thing")
    expect(rows).to_have_text("No workflow matches the filter.")
    page.fill("#workflow-search", "")
    # Enabled reads as good news (green), disabled as neutral, and neither has run yet.
    enabled = rows.filter(has_text="events").locator(".workflow-state .badge")
    expect(enabled).to_have_text("enabled")
    expect(enabled).to_have_css("background-color", "rgb(46, 157, 79)")
    expect(rows.filter(has_text="daily-summary").locator(".workflow-state")).to_have_text("disabled")
    expect(rows.filter(has_text="daily-summary").locator(".latest-run")).to_have_text("never triggered")
    # The page runs under a strict Content-Security-Policy (its own script and styles only) without a refusal.
    assert "script-src 'self'" in httpx.get(f"{styx_url}/").headers["content-security-policy"]
    assert refusals == []


def test_enable_workflow_through_the_page(page: Page, styx_url: str, styx_api: httpx.Client) -> None:
    create_workflow(styx_api, "reports", "to-enable")
    open_page(page, styx_url, "workflows/reports/to-enable")
    expect(page.locator("#workflow-enabled")).to_have_text("false")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#workflow-enabled")).to_have_text("true")
    assert styx_api.get("/workflows/reports/to-enable/state").json()["enabled"] == "true"
    # The redrawn button keeps the keyboard focus and now disables.
    expect(page.get_by_role("button", name="Disable")).to_be_focused()


def test_trigger_instance_from_the_page_until_done(page: Page, styx_url: str, styx_api: httpx.Client) -> None:
    create_workflow(styx_api, "reports", "triggered")
    parameter = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d")
    open_page(page, styx_url, "workflows/reports/triggered")
    page.fill("#trigger-parameter", parameter)
    page.fill("#trigger-env", "GREETING=hi")
    page.get_by_role("button", name="Trigger").click()
    expect(page.locator("main .ok")).to_contain_text(re.compile(r"Triggered ad-hoc-cli-\d+-\d+"))

    # The grid shows the instance at once (the page reads it again after the trigger), and it turns DONE
    # without a reload.
    cell = page.locator(f'#instance-grid a[data-parameter="{parameter}"]')
    expect(cell).to_be_visible()
    expect(cell).to_have_attribute("data-state", "DONE", timeout=UNTIL_DONE_MS)

    page.click("#triggered-instance")
    expect(page.locator("#instance-current")).to_have_text("Finished: DONE", timeout=UNTIL_DONE_MS)
    expect(page.locator("#instance-triggers")).to_contain_text("SUCCESS")
    expect(page.locator("#instance-events")).to_contain_text("triggerExecution")
    expect(page.locator("#instance-events")).to_contain_text("success")
    expect(page.locator("#instance-halt")).to_be_disabled()
    # The only execution's output, open by default (`echo hello`).
    expect(page.locator("#execution-outputs details[open] pre.output")).to_have_text("hello\n", timeout=UNTIL_DONE_MS)
    history = styx_api.get(f"/workflows/reports/triggered/instances/{parameter}").json()
    assert history["triggers"][0]["parameters"] == {"env": {"GREETING": "hi"}}


def test_backfill_from_the_page_with_live_states_resources_and_halt(
    page: Page, styx_url: str, styx_api: httpx.Client
) -> None:
    assert styx_api.post("/resources", json={"id": "slots", "concurrency": 2}).status_code == 200
    create_workflow(styx_api, "ingest", "slow", docker_args=["sleep", "60"], resources=["slots"])
    open_page(page, styx_url, "workflows/ingest/slow")
    page.fill("#backfill-start", "2026-10-01T00:00:00Z")
    page.fill("#backfill-end", "2026-10-06T00:00:00Z")
    page.fill("#backfill-concurrency", "1")
    page.fill("#backfill-description", "from the dashboard")
    page.get_by_role("button", name="Start backfill").click()

    expect(page).to_have_url(re.compile(r"#/backfills/backfill-"))
    backfill_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#backfill-status")).to_have_text("running")
    partitions = page.locator("#backfill-partitions tbody tr")
    expect(partitions).to_have_count(5)
    expect(partitions.first).to_contain_text("RUNNING", timeout=UNTIL_DONE_MS)
    expect(page.locator(".progress-label")).to_have_text("0 done, 1 running, 0 failed, 4 waiting")

    page.fill("#backfill-edit-concurrency", "2")
    page.get_by_role("button", name="Save concurrency").click()
    expect(page.locator("#backfill-concurrency-value")).to_have_text("2")
    screenshot(page, "backfill")

    open_page(page, styx_url, "active")
    expect(page.locator("#state-counts")).to_contain_text("RUNNING")
    expect(page.locator("main tbody")).to_contain_text("ingest/slow/2026-10-01")
    page.fill("#active-search", "no-such-instance")
    expect(page.locator("main tbody tr")).to_have_text("No active instance matches the filter.")
    page.fill("#active-search", "slow")

    page.get_by_role("button", name="RUNNING").click()
    expect(page.get_by_role("button", name="RUNNING")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "active-states")

    # A second tab keeps the resources page open: it must follow the halt below by polling alone.
    resources = page.context.new_page()
    open_page(resources, styx_url, "resources")
    slots = resources.locator('tr[data-resource="slots"]')
    slots_usage = slots.locator(".usage")
    expect(slots.locator(".used-of-limit")).to_have_text("2 / 2 in use", timeout=UNTIL_DONE_MS)
    expect(slots.locator(".meter")).to_have_attribute("aria-label", "2 of 2 in use")
    expect(slots.locator(".holders")).to_contain_text("ingest/slow/2026-10-01")
    screenshot(resources, "resources")

    open_page(page, styx_url, f"backfills/{backfill_id}")
    page.get_by_role("button", name="Halt backfill").click()
    expect(page.locator("#backfill-status")).to_have_text("halted")
    assert styx_api.get(f"/backfills/{backfill_id}").json()["backfill"]["halted"] is True
    # A halted backfill has nothing left to halt or to pace.
    expect(page.locator("#backfill-halt")).to_be_hidden()
    expect(page.locator("#backfill-edit-concurrency")).to_be_hidden()
    # The halt also halts the running instances, which frees the resource.
    expect(slots_usage).to_have_text("0", timeout=UNTIL_DONE_MS)
    expect(slots.locator(".meter")).to_have_attribute("aria-label", "0 of 2 in use")

    open_page(page, styx_url, "backfills")
    row = page.locator(f'tr[data-backfill="{backfill_id}"]')
    expect(row.locator(".backfill-status")).to_have_text("halted")
    expect(row).to_contain_text("from the dashboard")
    # The halted instances end in ERROR: counted as failed, none running, the untriggered rest waiting.
    expect(row.locator(".progress-label")).to_contain_text(re.compile(r"0 done, 0 running, [12] failed, [34] waiting"))
    screenshot(page, "backfills")


def test_api_errors_and_unknown_pages_are_shown(page: Page, styx_url: str, styx_api: httpx.Client) -> None:
    open_page(page, styx_url, "workflows/nope/missing")
    expect(page.get_by_role("alert").filter(has_text="Error 404")).to_have_text("Error 404: Workflow does not exist")
    screenshot(page, "error")

    create_workflow(styx_api, "reports", "refusals")
    open_page(page, styx_url, "workflows/reports/refusals")
    page.fill("#trigger-parameter", "not-a-date")
    page.get_by_role("button", name="Trigger").click()
    expect(page.locator("main .error")).to_contain_text("Error 400: Cannot parse time parameter")

    open_page(page, styx_url, "backfills/backfill-unknown")
    expect(page.locator("main .error")).to_have_text("Error 404: backfill not found")
    expect(page.locator("#backfill-halt")).to_be_hidden()
    open_page(page, styx_url, "no-such-page")
    expect(page.locator("h1")).to_have_text("Page not found")


class OneTokenAuthentication:
    """Accepts exactly one bearer token. The dashboard only forwards what the user pasted, so what matters
    here is which requests carry it and how a refusal is shown (Google token checks: tests/auth)."""

    TOKEN = "valid-test-token"

    async def authenticate(self, authorization: str | None) -> Principal | None:
        if authorization is None:
            return None
        if authorization != f"Bearer {self.TOKEN}":
            raise Unauthorized("Authorization token is invalid")
        return Principal(email="someone@example.com")


@pytest.fixture(scope="module")
def guarded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    auth = AuthChoice(OneTokenAuthentication(), AllowAll(), enabled=True)
    with serve(tmp_path_factory.mktemp("guarded"), auth) as url:
        yield url


def test_changes_need_the_pasted_token_when_authentication_is_on(page: Page, guarded_url: str) -> None:
    with httpx.Client(
        base_url=f"{guarded_url}/api/v3",
        headers={"Authorization": f"Bearer {OneTokenAuthentication.TOKEN}"},
    ) as api:
        create_workflow(api, "secure", "guarded")
    authorizations: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda request: authorizations.append((request.method, request.headers.get("authorization"))),
    )
    open_page(page, guarded_url, "workflows/secure/guarded")
    expect(page.locator("#token-form")).to_be_visible()
    toggle = page.get_by_role("button", name="Enable")

    toggle.click()
    expect(page.get_by_role("alert").filter(has_text="401")).to_contain_text(
        "Not authorized (401): Unauthorized access. Paste a valid Google ID token"
    )
    page.fill("#token-input", "forged")
    page.get_by_role("button", name="Save token").click()
    toggle.click()
    expect(page.get_by_role("alert").filter(has_text="401")).to_contain_text("Authorization token is invalid")
    expect(page.locator("#workflow-enabled")).to_have_text("false")

    page.fill("#token-input", OneTokenAuthentication.TOKEN)
    page.get_by_role("button", name="Save token").click()
    expect(page.locator("#token-status")).to_have_text("token saved for this tab")
    toggle.click()
    expect(page.locator("#workflow-enabled")).to_have_text("true")
    assert ("PATCH", f"Bearer {OneTokenAuthentication.TOKEN}") in authorizations
    assert all(header is None for method, header in authorizations if method == "GET")
