"""Which node's runner starts an execution, from what each runner reports: pure, no Ray, no Docker.

Rules, in order (what a shard asks before every start, `cluster/ray_runners.py`'s `PlacingRunner`):
1. the runner that holds the execution gets it again (a repeated start after a shard restart must reach the
   same container, never make a second one on another node); `holder` says which: the runner that runs it,
   else one whose engine has a container of it (nodes sharing one Docker Engine all see it);
2. the shard's own node's runner, while it has room (no network hop for the container's statuses, and
   shards spread over the nodes already spread the work);
3. otherwise the least loaded runner with room: lowest share of its capacity in use (nodes of different
   sizes fill evenly), then fewest running, then by role so the choice is deterministic;
4. no runner has room: None, and the caller waits and asks again (the execution stays SUBMITTING, as a
   Kubernetes pod stays Pending until a node has room). Likewise while a runner does not answer and none of
   the others holds the execution: the silent one might, and a second start elsewhere must not happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

UNLIMITED = 0  # a capacity of 0: the runner takes every execution


@dataclass(frozen=True)
class RunnerLoad:
    """What one runner reports: its capacity, the executions it runs now, and what it knows of the one asked
    about: `runs` (started through it and counted in `running`) or `holds` (a container of it on its engine)."""

    role: str
    capacity: int
    running: int
    holds: bool = False
    runs: bool = False

    @property
    def has_room(self) -> bool:
        return self.capacity == UNLIMITED or self.running < self.capacity

    @property
    def utilisation(self) -> float:
        return 0.0 if self.capacity == UNLIMITED else self.running / self.capacity


def holder(loads: Sequence[RunnerLoad]) -> str | None:
    """The role of the runner holding the execution (status and stop go there), None when none does."""
    found = next((load for load in loads if load.runs), None) or next((load for load in loads if load.holds), None)
    return found.role if found else None


def choose_runner(loads: Sequence[RunnerLoad], own_role: str | None, all_answered: bool = True) -> str | None:
    """The role of the runner to start the execution on; None to wait and ask again: every runner is full,
    or one did not answer (`all_answered` False) and may be the one holding the execution."""
    held_by = holder(loads)
    if held_by is not None:
        return held_by
    if not all_answered:
        return None
    with_room = [load for load in loads if load.has_room]
    if any(load.role == own_role for load in with_room):
        return own_role
    if not with_room:
        return None
    return min(with_room, key=lambda load: (load.utilisation, load.running, load.role)).role
