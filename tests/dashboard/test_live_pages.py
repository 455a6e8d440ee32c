"""Live pages: the active states and backfill pages follow the service by polling alone, redraw only what
changed, pause while the tab is hidden, and a finished backfill offers nothing to halt."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import (
    BROWSER_TESTS,
    UNTIL_DONE_MS,
    create_workflow,
    open_page,
    trigger,
)

pytestmark = BROWSER_TESTS

# Counts the page's calls of fetch per path, so a test can tell whether a poll happened.
COUNT_FETCHES = """
window.fetchCounts = {};
const realFetch = window.fetch;
window.fetch = (url, ...rest) => {
  const path = new URL(url, location.href).pathname;
  window.fetchCounts[path] = (window.fetchCounts[path] || 0) + 1;
  return realFetch(url, ...rest);
};
"""
ACTIVE_STATES = "/api/v3/status/activeStates"


def set_tab_hidden(page: Page, hidden: bool) -> None:
    """What the browser does when the user switches tabs: `document.hidden` changes, then visibilitychange."""
    page.evaluate(
        """(hidden) => {
          Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
          const visibility = hidden ? "hidden" : "visible";
          Object.defineProperty(document, "visibilityState", { value: visibility, configurable: true });
          document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def fetches(page: Page, path: str) -> int:
    return int(page.evaluate("(path) => window.fetchCounts[path] || 0", path))


def test_active_page_follows_new_instances_keeps_unchanged_rows_and_pauses_when_hidden(
    page: Page, styx_url: str, styx_api: httpx.Client
) -> None:
    # A resource of concurrency 0 holds its instances in QUEUED: rows that do not change between polls.
    assert styx_api.post("/resources", json={"id": "closed", "concurrency": 0}).status_code == 200
    create_workflow(styx_api, "ingest", "held", resources=["closed"])
    trigger(styx_api, "ingest", "held", "2024-03-01")
    page.add_init_script(COUNT_FETCHES)
    page.clock.install()
    try:
        open_page(page, styx_url, "active")
        first = page.locator('tr[data-instance="ingest/held/2024-03-01"]')
        expect(first).to_contain_text("QUEUED")
        first.evaluate("row => row.dataset.probe = 'kept'")

        # A new instance appears by polling alone; the unchanged row is the same node (not rebuilt: no flicker).
        trigger(styx_api, "ingest", "held", "2024-03-02")
        expect(page.locator('tr[data-instance="ingest/held/2024-03-02"]')).to_be_visible(timeout=UNTIL_DONE_MS)
        expect(first).to_have_attribute("data-probe", "kept")
        expect(page.locator("#state-counts")).to_contain_text("QUEUED 2")
        expect(page.locator("#live-status")).to_contain_text("Live: refreshed every 3 s")

        # Hidden: no poll however long the tab stays hidden; shown again: one at once.
        page.clock.pause_at(int(page.evaluate("Date.now()")) + 100)
        set_tab_hidden(page, True)
        expect(page.locator("#live-status")).to_have_text("Paused while this tab is hidden.")
        polls_while_hidden = fetches(page, ACTIVE_STATES)
        page.clock.run_for(60_000)
        assert fetches(page, ACTIVE_STATES) == polls_while_hidden
        set_tab_hidden(page, False)
        page.wait_for_function(
            "([path, before]) => (window.fetchCounts[path] || 0) > before", arg=[ACTIVE_STATES, polls_while_hidden]
        )
        expect(page.locator("#live-status")).to_contain_text("Live:")
    finally:
        for parameter in ["2024-03-01", "2024-03-02"]:
            styx_api.post("/scheduler/halt", json={"workflow_instance": f"ingest/held/{parameter}"})


def test_backfill_pages_follow_a_backfill_to_its_end_and_then_offer_no_halt(
    page: Page, styx_url: str, styx_api: httpx.Client
) -> None:
    # Its partitions wait behind a closed resource until the test opens it: the pages see the backfill
    # running first, then finish by polling alone.
    assert styx_api.post("/resources", json={"id": "gate", "concurrency": 0}).status_code == 200
    create_workflow(styx_api, "ingest", "gated", resources=["gate"])
    created = styx_api.post(
        "/backfills",
        json={
            "component": "ingest",
            "workflow": "gated",
            "start": "2024-04-01T00:00:00Z",
            "end": "2024-04-03T00:00:00Z",
            "concurrency": 2,
            "description": "behind a gate",
        },
    )
    assert created.status_code == 200, created.text
    backfill_id = created.json()["id"]

    open_page(page, styx_url, f"backfills/{backfill_id}")
    # Both partitions are triggered at once (concurrency 2) and wait in QUEUED, which counts as running.
    expect(page.locator("#backfill-status")).to_have_text("all triggered", timeout=UNTIL_DONE_MS)
    expect(page.locator("#backfill-halt")).to_be_visible()
    backfills = page.context.new_page()
    open_page(backfills, styx_url, "backfills")
    row = backfills.locator(f'tr[data-backfill="{backfill_id}"]')
    expect(row.locator(".progress-label")).to_have_text("0 done, 2 running, 0 failed, 0 waiting")

    assert styx_api.put("/resources/gate", json={"id": "gate", "concurrency": 2}).status_code == 200
    expect(row.locator(".backfill-status")).to_have_text("finished", timeout=UNTIL_DONE_MS)
    expect(row.locator(".progress-label")).to_have_text("2 done, 0 running, 0 failed, 0 waiting")
    # The backfill's own page followed too, and has nothing left to halt or pace.
    expect(page.locator("#backfill-status")).to_have_text("finished")
    expect(page.locator("#backfill-halt")).to_be_hidden()
    expect(page.locator("#backfill-edit-concurrency")).to_be_hidden()
    expect(page.locator("#backfill-partitions tbody tr")).to_have_count(2)
    expect(page.locator("#backfill-partitions tbody")).not_to_contain_text("QUEUED")
