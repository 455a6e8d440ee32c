"""Group commit: the transitions of every instance in a shard are flushed to the store together.

Each instance awaits the flush that carries its transition before it runs side effects, so a
transition's effects never precede its persistence (docs/architecture.md#decisions, "Group commit").
"""

from __future__ import annotations

import asyncio

from styx_actors.store.base import Store, Transition


class GroupCommitter:
    """Collects transitions while a flush is in flight and writes them in the next one."""

    def __init__(self, store: Store, max_batch: int = 2000) -> None:
        self._store = store
        self._max_batch = max_batch
        self._pending: list[tuple[Transition, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def commit(self, transition: Transition) -> bool:
        """Persist one transition; True when written, False when the store refused it (stale)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((transition, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        # Yield once so that transitions produced in the same loop iteration join the first batch.
        await asyncio.sleep(0)
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                results = await self._store.commit([transition for transition, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the store is down: every waiter sees the failure and retries
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), written in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(written)
