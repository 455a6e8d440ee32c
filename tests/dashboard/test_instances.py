"""What the dashboard shows of instances: the workflow page's grid of the latest instances that exist (whatever
their dates, as after the README tour) and its duration chart, the workflow list's latest instance, recent
instances and next trigger, each execution's output on the instance page, and the bounded reads under
/ui/data that feed them."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import wait_for
from tests.dashboard.conftest import (
    BROWSER_TESTS,
    UNTIL_DONE_MS,
    active_state,
    create_workflow,
    open_page,
    screenshot,
    trigger,
    wait_until_finished,
)

pytestmark = BROWSER_TESTS

TOUR_DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
HALTED_DAY = "2024-01-04"
GREEN = "rgb(46, 157, 79)"
RED = "rgb(200, 58, 50)"


@pytest.fixture(scope="module")
def tour(styx_api: httpx.Client) -> str:
    """reports/tour, enabled, with instances dated 2024 as the README tour leaves them: three DONE and the
    fourth halted while it ran (ERROR). Returns the workflow's path."""
    # Each runs for a second (a visible bar in the chart); PAUSE keeps one running until it is halted.
    create_workflow(styx_api, "reports", "tour", docker_args=["sh", "-c", "echo tour; sleep ${PAUSE:-1}"])
    assert styx_api.patch("/workflows/reports/tour/state", json={"enabled": True}).status_code == 200
    for day in TOUR_DAYS:
        trigger(styx_api, "reports", "tour", day)
    trigger(styx_api, "reports", "tour", HALTED_DAY, PAUSE="60")
    wait_for(lambda: active_state(styx_api, "reports", "tour", HALTED_DAY) == "RUNNING", timeout=UNTIL_DONE_MS / 1000)
    halt = styx_api.post("/scheduler/halt", json={"workflow_instance": f"reports/tour/{HALTED_DAY}"})
    assert halt.status_code == 200, halt.text
    for day in [*TOUR_DAYS, HALTED_DAY]:
        wait_until_finished(styx_api, "reports", "tour", day)
    return "reports/tour"


def test_workflow_page_shows_the_latest_instances_whatever_their_dates(page: Page, styx_url: str, tour: str) -> None:
    open_page(page, styx_url, f"workflows/{tour}")
    cells = page.locator("#instance-grid a.cell")
    # No range typed: the instances of 2024 are shown, oldest first, each labelled with its parameter.
    expect(cells.locator(".cell-label")).to_have_text([*TOUR_DAYS, HALTED_DAY])
    expect(page.locator("#grid-summary")).to_have_text("4 instances, 2024-01-01 to 2024-01-04, the latest that exist")
    done = cells.first
    expect(done).to_have_attribute("data-state", "DONE")
    expect(done).to_have_css("background-color", GREEN)
    expect(cells.last).to_have_attribute("data-state", "ERROR")
    expect(cells.last).to_have_css("background-color", RED)

    # Hovering a cell shows its state, how long it ran and its tries.
    tip = page.locator(f'#instance-grid a[data-parameter="{HALTED_DAY}"] .tip')
    expect(tip).to_be_hidden()
    cells.last.hover()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(re.compile(r"ERROR\s*ran \d+(\.\d)? m?s\s*1 try"))
    expect(cells.first.locator(".tip")).to_contain_text(re.compile(r"DONE\s*ran \d+(\.\d)? m?s\s*1 try"))
    screenshot(page, "workflow")

    # The chart has a bar per instance that ran, in the grid's order, each naming its instance and duration.
    bars = page.locator("#duration-chart svg a")
    expect(bars).to_have_count(4)
    expect(bars.first.locator("title")).to_have_text(re.compile(r"^2024-01-01: DONE, ran \d"))
    expect(bars.last.locator("rect.bar-run")).to_have_class(re.compile(r"s-failed"))
    expect(page.locator("#duration-chart svg")).to_have_attribute(
        "aria-label", re.compile(r"^Run durations of 4 instances")
    )

    # A range narrows the grid (stop exclusive) and the chart with it.
    page.fill("#grid-start", "2024-01-02")
    page.fill("#grid-stop", HALTED_DAY)
    page.locator("#grid-stop").dispatch_event("change")
    expect(cells.locator(".cell-label")).to_have_text(["2024-01-02", "2024-01-03"])
    expect(bars).to_have_count(2)


def test_workflow_list_shows_latest_instance_recent_runs_and_next_trigger(
    page: Page, styx_url: str, styx_api: httpx.Client, tour: str
) -> None:
    create_workflow(styx_api, "reports", "idle")
    state = styx_api.get(f"/workflows/{tour}/state").json()
    open_page(page, styx_url, "workflows")
    row = page.locator(f'tr[data-workflow="{tour}"]')
    expect(row.locator(".latest-run")).to_contain_text(f"ERROR {HALTED_DAY}")
    squares = row.locator(".recent-runs a.square")
    expect(squares).to_have_count(4)
    assert [squares.nth(i).get_attribute("data-state") for i in range(4)] == ["DONE", "DONE", "DONE", "ERROR"]
    expect(squares.first).to_have_attribute("href", "#/instances/reports/tour/2024-01-01")
    # The next natural trigger: when it fires and for which period.
    next_trigger = row.locator(".next-trigger")
    expect(next_trigger).to_contain_text(f"period {state['next_natural_trigger']}")
    expect(next_trigger.locator("time")).to_have_attribute("datetime", state["next_natural_offset_trigger"])
    idle = page.locator('tr[data-workflow="reports/idle"]')
    expect(idle.locator(".latest-run")).to_have_text("never triggered")
    expect(idle.locator(".next-trigger")).to_have_text("none while disabled")
    screenshot(page, "workflows")


def test_each_execution_shows_its_own_output(page: Page, styx_url: str, styx_api: httpx.Client) -> None:
    create_workflow(styx_api, "reports", "twice", docker_args=["sh", "-c", "echo run $RUN"])
    trigger(styx_api, "reports", "twice", "2024-02-01", RUN="first")
    wait_until_finished(styx_api, "reports", "twice", "2024-02-01")
    trigger(styx_api, "reports", "twice", "2024-02-01", RUN="second")
    wait_until_finished(styx_api, "reports", "twice", "2024-02-01")

    open_page(page, styx_url, "instances/reports/twice/2024-02-01")
    outputs = page.locator("#execution-outputs details")
    expect(outputs).to_have_count(2)
    # Newest first and open; the older one loads its own output when opened.
    expect(outputs.first).to_have_attribute("open", "")
    expect(outputs.first.locator("pre.output")).to_have_text("run second\n", timeout=UNTIL_DONE_MS)
    outputs.last.locator("summary").click()
    expect(outputs.last.locator("pre.output")).to_have_text("run first\n", timeout=UNTIL_DONE_MS)
    screenshot(page, "instance")


def test_an_execution_without_output_says_so(page: Page, styx_url: str, styx_api: httpx.Client) -> None:
    # Nothing listens on port 1: the image cannot be pulled, so no container ever starts.
    create_workflow(styx_api, "reports", "no-image", docker_image="127.0.0.1:1/styx-test/missing:latest")
    trigger(styx_api, "reports", "no-image", "2024-02-01")
    try:
        open_page(page, styx_url, "instances/reports/no-image/2024-02-01")
        newest = page.locator("#execution-outputs details").first
        expect(newest.locator("summary")).to_contain_text("FAILED", timeout=UNTIL_DONE_MS)
        expect(newest.locator(".output-body")).to_contain_text("No output for this execution (")
    finally:
        styx_api.post("/scheduler/halt", json={"workflow_instance": "reports/no-image/2024-02-01"})


def test_dashboard_reads_are_bounded_and_paged(styx_url: str, styx_api: httpx.Client) -> None:
    with httpx.Client(base_url=f"{styx_url}/ui/data", timeout=30) as ui:
        too_many = ui.get("/runs/reports/tour", params={"limit": 501})
        assert too_many.status_code == 400
        assert too_many.json()["message"] == "query.limit: Input should be less than or equal to 500"
        assert ui.get("/recent-runs", params={"limit": 101}).status_code == 400
        assert ui.get("/recent-runs", params={"runs": 26}).status_code == 400
        assert ui.get("/runs/reports/nothing-here").json() == {"code": 404, "message": "Workflow does not exist"}

        for name in ["paged-a", "paged-b", "paged-c"]:
            create_workflow(styx_api, "paging", name)
        expected = sorted((w["component_id"], w["workflow_id"]) for w in styx_api.get("/workflows").json())
        listed: list[tuple[str, str]] = []
        offset: int | None = 0
        while offset is not None:
            answer = ui.get("/recent-runs", params={"offset": offset, "limit": 2}).json()
            assert len(answer["workflows"]) <= 2
            listed += [(w["component_id"], w["workflow_id"]) for w in answer["workflows"]]
            offset = answer["next_offset"]
        assert listed == expected
