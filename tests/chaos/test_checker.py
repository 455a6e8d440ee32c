"""The chaos history checker on small recorded histories: each invariant passes on a correct history and names
the violation in a wrong one."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.chaos.checker import (
    Rules,
    acknowledged_triggers_complete,
    acknowledged_writes_visible,
    backfills_complete,
    check,
    executions_started_once,
    natural_triggers_once,
    no_incidents,
    no_internal_errors,
    nothing_left_active,
    ready_after_restarts,
    render,
    resource_limits_hold,
    retry_budgets_hold,
    summarize,
    violation_count,
)
from benchmarks.chaos.history import (
    Command,
    CommandKind,
    ContainerEvent,
    Fault,
    FaultKind,
    FinalState,
    History,
    Outcome,
    Readiness,
    RunningSample,
)

ADHOC = "chaos/adhoc"
LIMITED = "chaos/limited"
FAILS = "chaos/fails"
RULES = Rules(
    resource_limits={LIMITED: 2},
    max_retry_cost=3.0,
    retry_conditions={"chaos/fails-condition": lambda v: v.tries < 2},
    readiness_bound=60.0,
)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"@type": kind, "timestamp": 0, **fields}


def adhoc_trigger(trigger_id: str) -> dict[str, Any]:
    return event("triggerExecution", trigger={"@type": "adhoc", "trigger_id": trigger_id})


def run_once(execution_id: str, exit_code: int) -> list[dict[str, Any]]:
    return [
        event("dequeue"),
        event("submit", execution_id=execution_id),
        event("submitted", execution_id=execution_id),
        event("started"),
        event("terminate", exit_code=exit_code),
    ]


def succeeded(trigger_id: str, execution_id: str) -> list[dict[str, Any]]:
    return [adhoc_trigger(trigger_id), *run_once(execution_id, 0), event("success")]


def command(
    kind: CommandKind,
    target: str,
    written: dict[str, Any] | None = None,
    outcome: Outcome = Outcome.ACKED,
    at: float = 0.0,
    answer: dict[str, Any] | None = None,
    status: int | None = 200,
) -> Command:
    return Command(kind, target, written or {}, outcome, status, at, answer or {})


def final_state(**parts: Any) -> FinalState:
    values: dict[str, Any] = {
        "workflows": {},
        "resources": {},
        "backfills": {},
        "event_logs": {},
        "active": [],
        "converged": True,
        "convergence_seconds": 1.0,
    }
    values.update(parts)
    return FinalState(**values)


def container(at: float, action: str, execution_id: str, workflow: str = LIMITED) -> ContainerEvent:
    return ContainerEvent(at=at, action=action, execution_id=execution_id, workflow=workflow)


# -- no acknowledged write lost -----------------------------------------------------------------------------


def workflow_final(env: dict[str, str], enabled: bool = True) -> FinalState:
    configuration = {"schedule": "days", "docker_args": ["sh", "-c", "sleep 1"], "env": env}
    return final_state(workflows={ADHOC: {"configuration": configuration, "state": {"enabled": enabled}}})


def redeploy(version: str, outcome: Outcome = Outcome.ACKED, at: float = 0.0) -> Command:
    return command(CommandKind.WORKFLOW, ADHOC, {"schedule": "days", "env": {"VERSION": version}}, outcome, at)


def test_the_last_acknowledged_workflow_write_is_what_the_api_shows() -> None:
    commands = [redeploy("1", at=1), redeploy("2", at=2), redeploy("3", Outcome.NOT_SENT, at=3)]
    assert acknowledged_writes_visible(commands, workflow_final({"VERSION": "2"})).violations == []

    lost = acknowledged_writes_visible(commands, workflow_final({"VERSION": "1"}))
    assert lost.checked == 1
    assert lost.violations == [
        (
            "workflow chaos/adhoc: shows {'schedule': 'days', 'env': {'VERSION': '1'}}, last acknowledged "
            "{'schedule': 'days', 'env': {'VERSION': '2'}}"
        )
    ]


def test_a_write_whose_answer_never_came_may_be_what_the_api_shows_even_if_sent_earlier() -> None:
    # Sent first, answered by nothing (Redis paused), applied after the acknowledged one: allowed.
    commands = [redeploy("1", Outcome.UNKNOWN, at=1), redeploy("2", at=2)]
    assert acknowledged_writes_visible(commands, workflow_final({"VERSION": "1"})).violations == []


def test_a_write_refused_or_never_sent_explains_nothing() -> None:
    commands = [redeploy("1", at=1), redeploy("2", Outcome.REFUSED, at=2), redeploy("3", Outcome.NOT_SENT, at=3)]
    for shown in ("2", "3"):
        assert len(acknowledged_writes_visible(commands, workflow_final({"VERSION": shown})).violations) == 1


def test_acknowledged_resources_state_patches_and_backfill_edits_must_survive_or_be_named_gone() -> None:
    commands = [
        command(CommandKind.RESOURCE, "pair", {"concurrency": 2}),
        command(CommandKind.STATE_PATCH, ADHOC, {"enabled": False}),
        command(CommandKind.BACKFILL_EDIT, "bf-1", {"concurrency": 4}),
    ]
    right = workflow_final({}, enabled=False)
    right.resources, right.backfills = {"pair": 2}, {"bf-1": {"concurrency": 4}}
    assert acknowledged_writes_visible(commands, right).violations == []

    wrong = workflow_final({}, enabled=True)
    wrong.backfills = {"bf-1": {"concurrency": 3}}
    assert acknowledged_writes_visible(commands, wrong).violations == [
        "backfill_edit bf-1: shows {'concurrency': 3}, last acknowledged {'concurrency': 4}",
        "resource pair: acknowledged, but gone",
        "state_patch chaos/adhoc: shows {'enabled': True}, last acknowledged {'enabled': False}",
    ]


# -- acknowledged triggers ---------------------------------------------------------------------------------


def trigger(target: str, trigger_id: str, outcome: Outcome = Outcome.ACKED) -> Command:
    answer = {"trigger_id": trigger_id} if outcome is Outcome.ACKED else {}
    return command(CommandKind.TRIGGER, target, outcome=outcome, answer=answer)


def test_every_acknowledged_trigger_has_its_trigger_execution_and_ends() -> None:
    instance = f"{ADHOC}/2021-01-01"
    # Triggered twice over time: each acknowledged trigger is judged on its own run.
    log = [*succeeded("t1", "e1"), adhoc_trigger("t2"), *run_once("e2", 1), event("stop")]
    commands = [trigger(instance, "t1"), trigger(instance, "t2"), trigger(f"{ADHOC}/2021-01-02", "", Outcome.UNKNOWN)]
    result = acknowledged_triggers_complete(commands, {instance: log})
    assert (result.checked, result.violations) == (2, [])


def test_a_lost_or_unfinished_acknowledged_trigger_is_a_violation() -> None:
    first, second = f"{ADHOC}/2021-01-01", f"{ADHOC}/2021-01-02"
    logs = {first: [*succeeded("other", "e1")], second: [adhoc_trigger("t2"), *run_once("e2", 0)]}
    result = acknowledged_triggers_complete([trigger(first, "t1"), trigger(second, "t2")], logs)
    assert result.violations == [
        "chaos/adhoc/2021-01-01: no triggerExecution of acknowledged trigger t1",
        "chaos/adhoc/2021-01-02: trigger t2 ends with terminate",
    ]


# -- executions started once -------------------------------------------------------------------------------


def test_one_submit_and_one_container_per_execution_id() -> None:
    logs = {f"{ADHOC}/1": succeeded("t1", "e1"), f"{ADHOC}/2": succeeded("t2", "e2")}
    events = [
        container(1, "create", "e1"),
        container(2, "start", "e1"),
        container(3, "create", "e2"),
        container(4, "start", "e2"),
    ]
    result = executions_started_once(events, logs)
    assert (result.checked, result.violations) == (2, [])


def test_an_execution_id_submitted_twice_started_twice_or_unknown_to_the_logs_is_a_violation() -> None:
    logs = {f"{ADHOC}/1": [*succeeded("t1", "e1"), *run_once("e1", 0)]}
    events = [
        container(1, "create", "e1"),
        container(2, "start", "e1"),
        container(5, "start", "e1"),
        container(6, "create", "stray"),
    ]
    assert executions_started_once(events, logs).violations == [
        "e1: 2 submit events",
        "e1: container start 2 times",
        "stray: a container no event log submitted",
    ]


# -- resource limits ---------------------------------------------------------------------------------------


def test_containers_of_a_limited_workflow_within_the_limit() -> None:
    events = [
        container(1, "start", "a"),
        container(2, "start", "b"),
        container(3, "die", "a"),
        container(4, "start", "c"),
        container(4.5, "start", "x", workflow=ADHOC),  # other workflows do not count
    ]
    samples = [RunningSample(3.5, LIMITED, ("b",)), RunningSample(5, LIMITED, ("b", "c"))]
    result = resource_limits_hold(events, samples, RULES.resource_limits)
    assert (result.checked, result.violations) == (5, [])


def test_a_third_running_container_of_a_concurrency_2_resource_is_a_violation() -> None:
    events = [
        container(1, "start", "a"),
        container(2, "start", "b"),
        container(3, "start", "c"),
        container(4, "die", "a"),
    ]
    samples = [RunningSample(3.5, LIMITED, ("a", "b", "c"))]
    assert resource_limits_hold(events, samples, RULES.resource_limits).violations == [
        "chaos/limited: 3 containers running at 3.000 (limit 2): ['a', 'b', 'c']",
        "chaos/limited: engine listed 3 running at 3.500 (limit 2)",
    ]


# -- backfills ---------------------------------------------------------------------------------------------


def backfill_trigger(backfill_id: str) -> dict[str, Any]:
    return event("triggerExecution", trigger={"@type": "backfill", "trigger_id": backfill_id})


def backfill_command(partitions: list[str]) -> Command:
    written = {"workflow": LIMITED, "reverse": False, "partitions": partitions}
    return command(CommandKind.BACKFILL, "bf-1", written, answer={"id": "bf-1"})


def test_every_backfill_partition_triggered_once_and_all_triggered() -> None:
    logs = {f"{LIMITED}/2020-01-01T0{h}": [backfill_trigger("bf-1"), event("success")] for h in range(3)}
    final = final_state(event_logs=logs, backfills={"bf-1": {"all_triggered": True}})
    result = backfills_complete([backfill_command([f"2020-01-01T0{h}" for h in range(3)])], final)
    assert (result.checked, result.violations) == (3, [])


def test_a_partition_triggered_twice_or_never_and_an_unfinished_backfill_are_violations() -> None:
    logs = {
        f"{LIMITED}/2020-01-01T00": [
            backfill_trigger("bf-1"),
            event("success"),
            backfill_trigger("bf-1"),
            event("success"),
        ],
        f"{LIMITED}/2020-01-01T01": [backfill_trigger("another"), event("success")],
    }
    final = final_state(event_logs=logs, backfills={"bf-1": {"all_triggered": False}})
    result = backfills_complete([backfill_command(["2020-01-01T00", "2020-01-01T01"])], final)
    assert result.violations == [
        "backfill bf-1: not all_triggered",
        "backfill bf-1: partition 2020-01-01T00 triggered 2 times",
        "backfill bf-1: partition 2020-01-01T01 triggered 0 times",
    ]
    assert backfills_complete([backfill_command([])], final_state()).violations == [
        "backfill bf-1: acknowledged, but gone"
    ]


# -- retry budgets -----------------------------------------------------------------------------------------


def failing_run(tries: int, exit_code: int = 1, then: str = "stop") -> list[dict[str, Any]]:
    events = [adhoc_trigger("t1")]
    for attempt in range(tries):
        events += run_once(f"e{attempt}", exit_code)
        events.append(event("retryAfter", delay_millis=3000) if attempt < tries - 1 else event(then))
    return events


def test_retries_until_the_cost_budget_then_stop_hold() -> None:
    result = retry_budgets_hold([], {f"{FAILS}/1": failing_run(3)}, RULES)
    assert (result.checked, result.violations) == (2, [])


def test_a_retry_once_the_cost_budget_is_spent_is_a_violation_unless_a_manual_retry_explains_it() -> None:
    logs = {f"{FAILS}/1": failing_run(4)}
    assert retry_budgets_hold([], logs, RULES).violations == [
        "chaos/fails/1: retried after try 3 although retry cost 3 reached the budget 3"
    ]
    manual = command(CommandKind.RETRY, f"{FAILS}/1", outcome=Outcome.UNKNOWN, status=None)
    assert retry_budgets_hold([manual], logs, RULES).violations == []


def test_a_retry_past_the_retry_condition_or_after_exit_50_is_a_violation() -> None:
    logs = {"chaos/fails-condition/1": failing_run(3, exit_code=3), f"{FAILS}/2": failing_run(2, exit_code=50)}
    violations = retry_budgets_hold([], logs, RULES).violations
    assert violations[0].startswith(
        "chaos/fails-condition/1: retried after try 2 although its retry_condition is false"
    )
    assert violations[1] == "chaos/fails/2: retried after try 1 although exit 50"
    assert len(violations) == 2


def test_run_errors_cost_like_failures_and_a_new_trigger_starts_a_new_budget() -> None:
    run_error = [
        adhoc_trigger("t1"),
        event("dequeue"),
        event("submit", execution_id="e0"),
        event("runError", message="x"),
    ]
    log = [*failing_run(3), *run_error, event("retryAfter", delay_millis=0), *run_once("e9", 0), event("success")]
    assert retry_budgets_hold([], {f"{FAILS}/1": log}, RULES).violations == []


def test_a_manual_retry_of_a_queued_instance_is_not_a_retry_decision() -> None:
    # Fails, is retried by the policy, a manual retry cuts its delay short (QUEUED -> QUEUED), fails twice more.
    first, rest = failing_run(3)[:7], failing_run(3)[7:]
    log = [*first, event("retryAfter", delay_millis=0), *rest]
    assert [e["@type"] for e in first[-2:]] == ["terminate", "retryAfter"]
    result = retry_budgets_hold([], {f"{FAILS}/1": log}, RULES)
    assert (result.checked, result.violations) == (2, [])


# -- convergence, readiness, natural triggers, answers -----------------------------------------------------


def test_only_a_queued_instance_with_a_reason_may_stay_active() -> None:
    final = final_state(
        active=[
            {"instance": f"{LIMITED}/1", "state": "QUEUED", "last_message": "Resource limit reached for: [pair]"},
            {"instance": f"{ADHOC}/2", "state": "RUNNING", "last_message": None},
            {"instance": f"{ADHOC}/3", "state": "QUEUED", "last_message": None},
        ],
        converged=False,
        convergence_seconds=300,
    )
    result = nothing_left_active(final)
    assert result.violations == [
        "still active: chaos/adhoc/2 RUNNING: None",
        "still active: chaos/adhoc/3 QUEUED: None",
    ]
    assert "did not converge within 300 s" in result.notes
    assert "Resource limit reached" in result.notes[0]


def test_readyz_must_answer_within_the_bound_after_each_restart() -> None:
    readiness = [
        Readiness("service start", 1.0, 20.0),
        Readiness("service restart", 2.0, None),
        Readiness("redis restart", 3.0, 61.0),
    ]
    result = ready_after_restarts(readiness, 60.0)
    assert result.checked == 3
    assert result.violations == [
        "after service restart at 2.000: ready never",
        "after redis restart at 3.000: ready after 61.0 s",
    ]


def test_a_natural_partition_triggered_twice_is_a_violation() -> None:
    natural = event("triggerExecution", trigger={"@type": "natural"})
    logs = {
        "chaos/m/1": [natural, event("success")],
        "chaos/m/2": [natural, event("success"), natural, event("success")],
    }
    result = natural_triggers_once(logs)
    assert (result.checked, result.violations) == (2, ["chaos/m/2: 2 natural triggers"])


def test_a_500_is_a_violation_a_503_is_not() -> None:
    commands = [
        command(CommandKind.RETRY, f"{FAILS}/1", status=500, outcome=Outcome.UNKNOWN, at=5),
        command(CommandKind.TRIGGER, f"{FAILS}/2", status=503, outcome=Outcome.UNKNOWN),
        command(CommandKind.TRIGGER, f"{FAILS}/3", status=None, outcome=Outcome.NOT_SENT),
    ]
    result = no_internal_errors(commands)
    assert (result.checked, result.violations) == (2, ["retry chaos/fails/1: 500 at 5.000"])


def test_the_service_exiting_by_itself_is_a_violation() -> None:
    assert no_incidents(["the service exited by itself with code 1 at 5.000"]).violations
    assert no_incidents([]).violations == []


# -- the whole check and its table -------------------------------------------------------------------------


def test_check_and_render_count_faults_commands_instances_containers_and_violations() -> None:
    instance = f"{ADHOC}/2021-01-01"
    history = History(
        commands=[trigger(instance, "t1"), trigger(f"{ADHOC}/x", "", Outcome.NOT_SENT)],
        faults=[
            Fault(FaultKind.ACTOR_KILL, 1.0, "shard-0"),
            Fault(FaultKind.REDIS_PAUSE, 2.0, "redis"),
            Fault(FaultKind.CONTAINER_KILL, 3.0, "", "of 0 running"),
            Fault(FaultKind.ACTOR_KILL, 4.0, "", "of 0 actors"),
        ],
        container_events=[container(1, "create", "e1", ADHOC), container(2, "start", "e1", ADHOC)],
        readiness=[Readiness("service start", 0.0, 10.0)],
    )
    good = final_state(event_logs={instance: succeeded("t1", "e1")})
    invariants = check(history, good, RULES)
    assert violation_count(invariants) == 0
    summary = summarize(history, good)
    assert (summary.acknowledged, summary.commands_sent, summary.instances, summary.containers) == (1, 2, 1, 1)
    table = render("chaos run: seed 1", summary, invariants)
    assert (
        "faults injected        2: actor_kill 1, redis_pause 1 (actors: shard-0 1); 2 more found nothing to hit"
        in table
    )
    assert "violations             0" in table

    lost = final_state(event_logs={})
    bad = check(history, lost, RULES)
    assert violation_count(bad) == 2  # the trigger is gone, and its container matches no submit
    assert "VIOLATION chaos/adhoc/2021-01-01: no triggerExecution of acknowledged trigger t1" in render(
        "x", summarize(history, lost), bad
    )


@pytest.mark.parametrize("count", [25])
def test_the_table_prints_a_bounded_number_of_violations_per_invariant(count: int) -> None:
    events = [container(i, "start", f"c{i:02d}") for i in range(count)]
    invariants = [resource_limits_hold(events, [], RULES.resource_limits)]
    history = History(container_events=events)
    table = render("x", summarize(history, final_state()), invariants)
    assert table.count("VIOLATION") == 20
    assert f"... and {count - 2 - 20} more" in table
