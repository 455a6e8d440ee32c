"""The seeded plans of the chaos runner and the rules its checker applies to the workload."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.chaos.checker import RetryVariables
from benchmarks.chaos.history import FaultKind
from benchmarks.chaos.plan import pick_one, plan_faults, plan_workload
from benchmarks.chaos.workload import (
    FAILS_CONDITION,
    MAX_RETRY_COST,
    rules,
    service_settings,
)
from styx_actors.retry_condition import condition_allows_retry


def test_a_seed_fixes_both_plans_and_another_seed_changes_them() -> None:
    kinds = list(FaultKind)
    assert plan_faults(7, 10, 170, kinds, (8, 20)) == plan_faults(7, 10, 170, kinds, (8, 20))
    assert plan_workload(7, 180, (0.5, 2.5)) == plan_workload(7, 180, (0.5, 2.5))
    assert plan_faults(8, 10, 170, kinds, (8, 20)) != plan_faults(7, 10, 170, kinds, (8, 20))
    assert plan_workload(8, 180, (0.5, 2.5)) != plan_workload(7, 180, (0.5, 2.5))


@pytest.mark.parametrize("seed", range(5))
def test_every_fault_kind_comes_once_before_any_comes_twice_within_the_window(seed: int) -> None:
    kinds = [
        FaultKind.ACTOR_KILL,
        FaultKind.SERVICE_KILL,
        FaultKind.CONTAINER_KILL,
    ]  # an external Redis: no Redis faults
    plan = plan_faults(seed, 10, 170, kinds, (8, 20))
    assert sorted(fault.kind for fault in plan[:3]) == sorted(kinds)
    assert all(10 < fault.at < 170 for fault in plan)
    assert all(8 <= later.at - earlier.at <= 20 for earlier, later in itertools.pairwise(plan))
    assert all(fault.hold == 0 for fault in plan)


def test_redis_faults_hold_for_a_seeded_while() -> None:
    plan = plan_faults(3, 0, 1000, list(FaultKind), (8, 20))
    restarts = [f.hold for f in plan if f.kind is FaultKind.REDIS_RESTART]
    pauses = [f.hold for f in plan if f.kind is FaultKind.REDIS_PAUSE]
    assert restarts and all(2 <= hold <= 8 for hold in restarts)
    assert pauses and all(6 <= hold <= 15 for hold in pauses)


def test_a_pick_chooses_among_sorted_candidates() -> None:
    assert pick_one(["a", "b", "c"], 0.0) == "a"
    assert pick_one(["a", "b", "c"], 0.99) == "c"
    assert pick_one([], 0.5) is None


@pytest.mark.parametrize("tries", [0, 1, 2, 3])
def test_the_checkers_retry_condition_says_what_the_services_evaluator_says(tries: int) -> None:
    variables = RetryVariables(exit_code=3, tries=tries, consecutive_failures=tries, trigger_type="adhoc")
    service = {"exitCode": 3, "tries": tries, "consecutiveFailures": tries, "triggerType": "adhoc"}
    assert FAILS_CONDITION.retry_condition is not None
    mirrored = rules(60).retry_conditions[FAILS_CONDITION.key](variables)
    assert mirrored == condition_allows_retry(FAILS_CONDITION.retry_condition, service)


def test_the_checkers_budget_is_the_services() -> None:
    assert rules(60).max_retry_cost == float(service_settings()["STYX_MAX_RETRY_COST"]) == MAX_RETRY_COST
