"""The whole actor system in one process and one event loop (`STYX_ACTOR_SYSTEM=local`, tests, benchmarks).

The same actor classes run on Ray through cluster/ray_system.py; only the ports differ. Both satisfy
`ActorSystem` (styx_actors/actors/system.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import timedelta

from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.commands import Commands
from styx_actors.actors.janitor import clean_up_executions
from styx_actors.actors.loops import every
from styx_actors.actors.placement import Sharded, shard_index
from styx_actors.actors.ports import ShardRouter, local_broker, local_host, local_scheduler
from styx_actors.actors.resources import ResourceBroker
from styx_actors.actors.scheduler import Scheduler
from styx_actors.actors.shard import InstanceShard
from styx_actors.clock import Clock
from styx_actors.runners.base import Runner
from styx_actors.settings import Settings
from styx_actors.store.base import Store
from styx_actors.validation import ValidationLimits

# Styx's pod cleanup loop runs every 60 s.
CLEANUP_INTERVAL = timedelta(seconds=60)


async def load_resource_limits(broker: ResourceBroker, store: Store) -> None:
    """Resource limits and global concurrency come from the store; holders come back from the shards."""
    broker.sync_limits({r.id: r.concurrency for r in await store.resources()})
    broker.set_global_concurrency((await store.get_config()).concurrency)


@dataclass
class LocalActorSystem:
    store: Store
    shards: list[InstanceShard]
    broker: BrokerHost
    scheduler: Scheduler
    commands: Commands
    runner: Runner
    janitor: asyncio.Task[None] | None = None
    owns_runner: bool = False  # close the runner on stop (the system made it)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        store: Store,
        runner: Runner,
        clock: Clock,
        run_scheduler_loops: bool = True,
        rng: random.Random | None = None,
        owns_runner: bool = False,
    ) -> LocalActorSystem:
        rng = rng or random.Random()
        count = settings.shard_count
        router = ShardRouter([])
        shards: list[InstanceShard] = []
        broker = BrokerHost(on_granted=lambda holder, ids: shards[shard_index(holder, count)].granted(holder, ids))
        await load_resource_limits(broker.broker, store)
        broker.expect_reports(Sharded(i, count).name for i in range(count))  # each shard reports as it starts
        scheduler = Scheduler(store, router.trigger, clock, settings)
        broker_port = local_broker(broker)
        shards.extend(
            InstanceShard(
                Sharded(i, count), store, runner, broker_port, settings, clock, scheduler.instance_finished, rng
            )
            for i in range(count)
        )
        router.shards = [local_host(shard) for shard in shards]
        commands = Commands(
            store,
            router,
            local_scheduler(scheduler),
            broker_port,
            clock,
            ValidationLimits.from_settings(settings),
            rng,
            runners=[runner],  # a Runner reads logs itself (a LogReader): no port needed in one process
        )
        for shard in shards:
            await shard.start()
        await scheduler.start(run_loops=run_scheduler_loops)
        janitor = asyncio.create_task(every(CLEANUP_INTERVAL, lambda: clean_up_executions(store, runner), rng))
        return cls(store, shards, broker, scheduler, commands, runner, janitor, owns_runner)

    async def tick(self) -> int:
        return await self.scheduler.tick()

    async def active_count(self) -> int:
        return sum(shard.active_count() for shard in self.shards)

    async def stop(self) -> None:
        """Stop every loop; the store stays open, and so does the runner unless the system made it."""
        if self.janitor is not None:
            self.janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.janitor
        await self.scheduler.stop()
        for shard in self.shards:
            await shard.stop()
        if self.owns_runner:
            await self.runner.close()
