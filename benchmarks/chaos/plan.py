"""The seeded plans of a chaos run: which command and which fault at which moment.

A seed fixes both plans entirely: the kinds, their order, their moments (seconds after the workload started),
how long Redis stays down or paused, and a `pick` in [0, 1) that chooses the target among the candidates
there are when the moment comes (sorted, so the same candidates give the same choice). What a pick hits
depends on timing (which containers run, which instances are queued), so a replay repeats the plan, not
necessarily every outcome.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import TypeVar

from benchmarks.chaos.history import FaultKind

# How often each fault kind is drawn after every kind has been drawn once. A service restart costs tens of
# seconds on a small machine, so it is drawn less often than the quick kills.
FAULT_WEIGHTS: dict[FaultKind, int] = {
    FaultKind.ACTOR_KILL: 4,
    FaultKind.CONTAINER_KILL: 3,
    FaultKind.SERVICE_KILL: 1,
    FaultKind.REDIS_RESTART: 1,
    FaultKind.REDIS_PAUSE: 1,
}
REDIS_DOWN_SECONDS = (2.0, 8.0)
REDIS_PAUSE_SECONDS = (6.0, 15.0)


class Action(str, enum.Enum):
    TRIGGER_ADHOC = "trigger_adhoc"
    TRIGGER_LIMITED = "trigger_limited"  # the workflow limited by a resource of concurrency 2
    TRIGGER_FAILS_BUDGET = "trigger_fails_budget"  # always fails: stops when its retry cost reaches the budget
    TRIGGER_FAILS_CONDITION = "trigger_fails_condition"  # always fails: stops when its retry_condition says so
    HALT = "halt"
    RETRY = "retry"
    EDIT_BACKFILL = "edit_backfill"  # a backfill's concurrency
    TOGGLE_WORKFLOW = "toggle_workflow"  # disable or enable a minutely workflow
    REDEPLOY = "redeploy"  # save a workflow again with another env
    EDIT_RESOURCE = "edit_resource"


ACTION_WEIGHTS: dict[Action, int] = {
    Action.TRIGGER_ADHOC: 4,
    Action.TRIGGER_LIMITED: 3,
    Action.TRIGGER_FAILS_BUDGET: 1,
    Action.TRIGGER_FAILS_CONDITION: 1,
    Action.HALT: 1,
    Action.RETRY: 2,
    Action.EDIT_BACKFILL: 1,
    Action.TOGGLE_WORKFLOW: 1,
    Action.REDEPLOY: 1,
    Action.EDIT_RESOURCE: 1,
}


@dataclass(frozen=True)
class PlannedFault:
    at: float  # seconds after the workload started; a fault still under way delays the next one
    kind: FaultKind
    hold: float  # seconds Redis stays down or paused; 0 for the kills
    pick: float


@dataclass(frozen=True)
class PlannedCommand:
    at: float
    action: Action
    pick: float
    value: int  # 1-5: a job's sleep seconds, a concurrency


def plan_faults(
    seed: int, start: float, end: float, kinds: list[FaultKind], gap: tuple[float, float]
) -> list[PlannedFault]:
    """Faults between `start` and `end`, `gap` seconds apart (uniform). Every kind of `kinds` comes once, in
    a seeded order, before any comes twice, so a short run still sees each."""
    rng = random.Random(f"{seed}:faults")
    first_round = sorted(kinds, key=lambda kind: kind.value)
    rng.shuffle(first_round)
    weights = [FAULT_WEIGHTS[kind] for kind in kinds]
    planned: list[PlannedFault] = []
    at = start
    while True:
        at += rng.uniform(*gap)
        if at >= end:
            return planned
        kind = first_round[len(planned)] if len(planned) < len(first_round) else rng.choices(kinds, weights)[0]
        hold = {
            FaultKind.REDIS_RESTART: rng.uniform(*REDIS_DOWN_SECONDS),
            FaultKind.REDIS_PAUSE: rng.uniform(*REDIS_PAUSE_SECONDS),
        }.get(kind, 0.0)
        planned.append(PlannedFault(at=round(at, 3), kind=kind, hold=round(hold, 3), pick=rng.random()))


def plan_workload(seed: int, duration: float, gap: tuple[float, float]) -> list[PlannedCommand]:
    rng = random.Random(f"{seed}:workload")
    actions = list(ACTION_WEIGHTS)
    weights = list(ACTION_WEIGHTS.values())
    planned: list[PlannedCommand] = []
    at = 0.0
    while (at := at + rng.uniform(*gap)) < duration:
        action = rng.choices(actions, weights)[0]
        planned.append(PlannedCommand(at=round(at, 3), action=action, pick=rng.random(), value=rng.randint(1, 5)))
    return planned


T = TypeVar("T")


def pick_one(candidates: list[T], pick: float) -> T | None:
    """The candidate a plan's pick chooses (candidates sorted by the caller); None when there is none."""
    return candidates[int(pick * len(candidates))] if candidates else None
