"""The in-process actor system restarted over a store where a resource of concurrency 2 is held by an instance on
each shard and three more wait for it: shard 0's waiters ask again as soon as shard 0 has recovered, and must not
be granted before shard 1 has reported its holder (issue #17; on Ray: tests/cluster/test_broker_restart.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from styx_actors.actors.placement import shard_index
from styx_actors.model import Resource, State, TriggerRequest
from styx_actors.store.base import Store
from tests.conftest import wait_until
from tests.integration.conftest import scenario_settings
from tests.integration.test_scenarios import config, deploy, instance, wait_state

pytestmark = pytest.mark.docker


async def test_a_restarted_local_system_never_grants_past_a_limit(start_system, store: Store, tmp_path: Path) -> None:
    settings = scenario_settings(tmp_path)
    system = await start_system(settings)
    await system.commands.save_resource(Resource(id="pair", concurrency=2))
    workflow_id = await deploy(system, config("local-restart", schedule="days", script="sleep 600", resources=["pair"]))
    days = [instance(workflow_id, f"2016-03-{day:02d}") for day in range(1, 14)]
    on_shard = [[wfi for wfi in days if shard_index(wfi.key(), settings.shard_count) == shard] for shard in (0, 1)]
    first, *waiters = on_shard[0][:4]
    second = on_shard[1][0]
    for holder in (first, second):
        await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=holder.parameter))
        await wait_state(store, holder, State.RUNNING, timeout=60)
    for waiter in waiters:
        await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=waiter.parameter))
    await wait_until(lambda: system.broker.waiting_count() == len(waiters), timeout=30, message="the waiters to queue")
    await system.stop()

    restarted = await start_system(settings)

    def served() -> bool:
        broker = restarted.broker
        return not broker.awaited_hosts() and broker.usage()["pair"][0] + broker.waiting_count() == 2 + len(waiters)

    await wait_until(served, timeout=30, message="the waiters to ask the restarted broker again")
    assert restarted.broker.holders("pair") == {first.key(), second.key()}
