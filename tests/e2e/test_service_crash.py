"""Kill the whole service (SIGKILL, its Ray included) in the middle of a backfill; restart it; nothing is lost
and nothing runs twice."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import ServeProcess
from tests.integration.conftest import TEST_IMAGE

pytestmark = pytest.mark.docker

API = "/api/v3"
HOURS = [f"2020-01-01T{h:02d}" for h in range(8)]


def events_of(client: httpx.Client, parameter: str) -> list[str]:
    response = client.get(f"{API}/status/events/crash/nightly/{parameter}")
    response.raise_for_status()
    return [entry["event"]["@type"] for entry in response.json()["events"]]


def test_killed_mid_backfill_every_partition_runs_exactly_once(serve: ServeProcess) -> None:
    serve.start()
    with httpx.Client(base_url=serve.url, timeout=30) as client:
        workflow = {
            "id": "nightly",
            "schedule": "hours",
            "docker_image": TEST_IMAGE,
            "docker_args": ["sh", "-c", "sleep 1"],
        }
        assert client.post(f"{API}/workflows/crash", json=workflow).status_code == 200
        backfill = client.post(
            f"{API}/backfills",
            json={
                "start": "2020-01-01T00:00:00Z",
                "end": "2020-01-01T08:00:00Z",
                "component": "crash",
                "workflow": "nightly",
                "concurrency": 3,
            },
        )
        assert backfill.status_code == 200, backfill.text
        backfill_id = backfill.json()["id"]

        # Crash once the backfill is under way: some partitions done, some running, some not triggered.
        wait_for(lambda: events_of(client, HOURS[0])[-1:] == ["success"], timeout=90, message="a first partition done")
    serve.kill()
    serve.start()

    with httpx.Client(base_url=serve.url, timeout=30) as client:

        def all_done() -> bool:
            return all(events_of(client, hour)[-1:] == ["success"] for hour in HOURS)

        wait_for(all_done, timeout=180, interval=0.5, message="every partition to succeed after the restart")
        for hour in HOURS:
            events = events_of(client, hour)
            assert events.count("triggerExecution") == 1, (hour, events)
            assert events.count("submitted") == 1, (hour, events)  # no execution started twice
        status = client.get(f"{API}/backfills/{backfill_id}").json()
        assert status["backfill"]["all_triggered"] is True
        assert [entry["state"] for entry in status["statuses"]["active_states"]] == ["DONE"] * len(HOURS)
