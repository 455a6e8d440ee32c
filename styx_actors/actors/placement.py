"""Which instances an actor host owns: a hash shard of all keys (sharded) or exactly one (dedicated)."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from styx_actors.model import RunState, WorkflowInstance
from styx_actors.store.base import Store


def shard_index(instance_key: str, shard_count: int) -> int:
    """Stable across processes and restarts (unlike Python's salted hash())."""
    return zlib.crc32(instance_key.encode()) % shard_count


DEDICATED_ROLE_PREFIX = "instance-"


def dedicated_role(instance_key: str) -> str:
    """The Ray actor role of one instance in dedicated placement (keys may hold any character)."""
    return f"{DEDICATED_ROLE_PREFIX}{hashlib.sha1(instance_key.encode()).hexdigest()}"


@dataclass(frozen=True)
class Sharded:
    index: int
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index}"

    def owns(self, instance_key: str) -> bool:
        return shard_index(instance_key, self.count) == self.index

    async def load(self, store: Store) -> list[RunState]:
        return await store.owned_active_states(self.owns)


@dataclass(frozen=True)
class Dedicated:
    instance: WorkflowInstance

    @property
    def name(self) -> str:
        return dedicated_role(self.instance.key())

    def owns(self, instance_key: str) -> bool:
        return instance_key == self.instance.key()

    async def load(self, store: Store) -> list[RunState]:
        state = await store.active_state(self.instance)
        return [] if state is None else [state]


Placement = Sharded | Dedicated
