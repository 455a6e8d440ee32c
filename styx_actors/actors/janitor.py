"""Removes finished containers that no active instance wants any more (Styx's pod cleanup:
docs/runner.md#stop-logs-cleanup), keeping the end of each one's output in the store first, and deletes
kept outputs past their retention."""

from __future__ import annotations

from styx_actors.runners.base import Runner
from styx_actors.store.base import Store

# Expired outputs deleted per statement, and statements per round (SQLite; Redis expires them itself): each
# statement holds the store's write lock briefly, and a round keeps up with 10,000 executions a minute.
OUTPUT_EXPIRY_BATCH = 500
OUTPUT_EXPIRY_BATCHES_PER_ROUND = 20


async def clean_up_executions(store: Store, runner: Runner) -> None:
    wanted = {s.data.execution_id for s in await store.active_states() if s.data.execution_id}
    await runner.cleanup(wanted, keep_output=store.put_execution_output)
    await delete_expired_outputs(store)


async def delete_expired_outputs(store: Store) -> int:
    """Delete kept outputs whose retention has passed, in bounded batches; how many were deleted."""
    deleted = 0
    for _ in range(OUTPUT_EXPIRY_BATCHES_PER_ROUND):
        count = await store.delete_expired_outputs(OUTPUT_EXPIRY_BATCH)
        deleted += count
        if count < OUTPUT_EXPIRY_BATCH:
            break
    return deleted
