"""Removes finished containers that no active instance wants any more (Styx's pod cleanup:
docs/runner.md#stop-logs-cleanup), keeping the end of each one's output in the store first, and deletes
kept outputs and finished instances' history past their retention."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta

from styx_actors.runners.base import Runner
from styx_actors.store.base import Store

# Expired outputs deleted per statement, and statements per round (SQLite; Redis expires them itself): each
# statement holds the store's write lock briefly, and a round keeps up with 10,000 executions a minute.
OUTPUT_EXPIRY_BATCH = 500
OUTPUT_EXPIRY_BATCHES_PER_ROUND = 20
# Finished instances whose history is deleted per store call, and calls per round: one call holds Redis (its
# script runs alone) for ~2 ms, or SQLite's write lock for ~20 ms, mostly its fsync (docs/store.md, "Retention
# and sizing"), and a round a minute keeps up with 10,000 instances finishing a minute (14 million a day).
# The scheduler runs the round: one per cluster, with the actors' clock.
HISTORY_EXPIRY_BATCH = 200
HISTORY_EXPIRY_BATCHES_PER_ROUND = 50
HISTORY_EXPIRY_INTERVAL = timedelta(minutes=1)  # the scheduler's round (±50 % jitter)


async def clean_up_executions(store: Store, runner: Runner) -> None:
    wanted = {s.data.execution_id for s in await store.active_states() if s.data.execution_id}
    await runner.cleanup(wanted, keep_output=store.put_execution_output)
    await delete_expired_outputs(store)


async def delete_expired_outputs(store: Store) -> int:
    """Delete kept outputs whose retention has passed, in bounded batches; how many were deleted."""
    return await _in_batches(store.delete_expired_outputs, OUTPUT_EXPIRY_BATCH, OUTPUT_EXPIRY_BATCHES_PER_ROUND)


async def delete_expired_history(store: Store, retention: timedelta, now_millis: int) -> int:
    """Delete the history of instances that finished more than `retention` before `now_millis`, in bounded
    batches; how many instances' history was deleted. A retention of 0 keeps every history."""
    if retention <= timedelta(0):
        return 0
    finished_before = now_millis - retention // timedelta(milliseconds=1)
    delete = functools.partial(store.delete_expired_history, finished_before)
    return await _in_batches(delete, HISTORY_EXPIRY_BATCH, HISTORY_EXPIRY_BATCHES_PER_ROUND)


async def _in_batches(delete: Callable[[int], Awaitable[int]], batch: int, batches: int) -> int:
    """Call `delete(batch)` until it deletes fewer than `batch` or `batches` calls are made; the total deleted."""
    deleted = 0
    for _ in range(batches):
        count = await delete(batch)
        deleted += count
        if count < batch:
            break
    return deleted
