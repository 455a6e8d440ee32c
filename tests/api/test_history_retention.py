"""The history janitor as `styx serve` runs it: the scheduler actor's round, over both actor systems (on Ray
the scheduler is another process, reading the test's clock through a file). The store side and the exact
cutoff: tests/integration/test_store_retention.py, tests/integration/test_history_janitor.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cluster.ray_system import RaySystem
from styx_actors.clock import ManualClock
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi, api_settings

RETENTION = timedelta(days=30)


async def expire_history(api: Api) -> int:
    """One round of the scheduler's janitor now, in whichever process the scheduler runs."""
    system = api.service.system
    scheduler = system.port("scheduler") if isinstance(system, RaySystem) else system.scheduler  # type: ignore[attr-defined]
    return int(await scheduler.expire_history())


async def test_the_schedulers_round_deletes_history_past_the_retention(
    start_api: StartApi, clock: ManualClock, tmp_path: Path
) -> None:
    api = await start_api(settings=api_settings(tmp_path, event_retention=RETENTION))
    await api.create_workflow()
    assert (await api.trigger("2016-03-14T10")).status_code == 200
    assert (await api.wait_finished("2016-03-14T10"))[-1] == "success"
    instance = f"{API}/workflows/{COMPONENT}/{WORKFLOW}/instances/2016-03-14T10"
    assert (await api.client.get(instance)).status_code == 200

    clock.advance(RETENTION)
    assert await expire_history(api) == 0  # exactly the retention: kept
    assert (await api.client.get(instance)).status_code == 200

    clock.advance(timedelta(seconds=1))
    assert await expire_history(api) == 1
    assert (await api.client.get(instance)).status_code == 404
    events = await api.client.get(f"{API}/status/events/{COMPONENT}/{WORKFLOW}/2016-03-14T10")
    assert events.json() == {"events": []}
