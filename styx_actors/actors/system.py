"""The actor system as the front end sees it, whichever way the actors run.

Two implementations satisfy it: `LocalActorSystem` (every actor in this process and event loop:
styx_actors/actors/local.py) and `RaySystem` (named Ray actors: cluster/ray_system.py). The composition
root (styx_server/systems.py) picks one from `Settings.actor_system`; nothing else knows which one runs,
and the API test suite runs over both (docs/architecture.md).
"""

from __future__ import annotations

from typing import Protocol

from styx_actors.actors.commands import Commands


class ActorSystem(Protocol):
    @property
    def commands(self) -> Commands:
        """The command facade: every write the API accepts, validated and routed to the actors."""
        ...

    async def tick(self) -> int:
        """Run one natural-trigger round and one backfill round now; the number of instances triggered.
        (The scheduler's own loops do the same every STYX_TRIGGER_TICK_INTERVAL.)"""
        ...

    async def active_count(self) -> int:
        """How many instances the actors hold active right now."""
        ...

    async def stop(self) -> None:
        """Stop what this process started. Actors shared with other API processes (a Ray cluster) keep
        running; the store passed in at start stays open (its owner closes it)."""
        ...
