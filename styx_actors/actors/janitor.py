"""Removes finished containers that no active instance wants any more (Styx's pod cleanup, §9.4)."""

from __future__ import annotations

from styx_actors.runners.base import Runner
from styx_actors.store.base import Store


async def clean_up_executions(store: Store, runner: Runner) -> None:
    wanted = {s.data.execution_id for s in await store.active_states() if s.data.execution_id}
    await runner.cleanup(wanted)
