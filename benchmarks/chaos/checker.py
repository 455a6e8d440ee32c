"""The history checker: pure functions of what a chaos run recorded (history.py) and of the rules the workload
was built with. Each invariant says how many things it checked and lists every violation in words.

Event logs are the service's own (`GET /status/events/...`: dicts with `@type`); container events are the
engine's, read by the chaos runner itself, so the two sources check each other.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.chaos.history import (
    CHECKED_FIELDS,
    Command,
    CommandKind,
    ContainerEvent,
    FinalState,
    History,
    Outcome,
    Readiness,
    RunningSample,
)

TERMINAL_EVENTS = frozenset({"success", "stop", "halt"})
# States a retry decision follows: the event that entered TERMINATED or FAILED.
DECISION_EVENTS = frozenset({"terminate", "runError", "timeout"})
# The service's retry costs (docs/configuration.md, STYX_MAX_RETRY_COST): 0.1 for exit 20, none for a success.
MISSING_DEPS_EXIT = 20
FAIL_FAST_EXIT = 50
PRINTED_VIOLATIONS = 20  # per invariant; the count says how many there are


@dataclass(frozen=True)
class RetryVariables:
    """What a retry_condition sees (docs/api.md): the state the decision is taken on."""

    exit_code: int | None
    tries: int
    consecutive_failures: int
    trigger_type: str | None


RetryCondition = Callable[[RetryVariables], bool]


@dataclass(frozen=True)
class Rules:
    resource_limits: dict[str, int]  # "c/w" -> concurrency of the resource that alone limits it
    max_retry_cost: float
    retry_conditions: dict[str, RetryCondition]  # "c/w" -> its retry_condition, as Python
    readiness_bound: float  # seconds


@dataclass
class Invariant:
    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not violations, but worth seeing


def check(history: History, final: FinalState, rules: Rules) -> list[Invariant]:
    logs = final.event_logs
    return [
        acknowledged_writes_visible(history.commands, final),
        acknowledged_triggers_complete(history.commands, logs),
        executions_started_once(history.container_events, logs),
        resource_limits_hold(history.container_events, history.samples, rules.resource_limits),
        backfills_complete(history.commands, final),
        retry_budgets_hold(history.commands, logs, rules),
        nothing_left_active(final),
        ready_after_restarts(history.readiness, rules.readiness_bound),
        natural_triggers_once(logs),
        no_internal_errors(history.commands),
        no_incidents(history.incidents),
    ]


# -- event logs -----------------------------------------------------------------------------------------


def trigger_id(event: dict[str, Any]) -> str:
    trigger = event.get("trigger") or {}
    return "natural-trigger" if trigger.get("@type") == "natural" else str(trigger.get("trigger_id"))


def runs(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The events of each trigger of an instance: from its triggerExecution to the next one."""
    segments: list[list[dict[str, Any]]] = []
    for event in events:
        if event["@type"] == "triggerExecution" or not segments:
            segments.append([])
        segments[-1].append(event)
    return segments


def workflow_of(instance: str) -> str:
    return instance.rsplit("/", 1)[0]


def count_triggers(events: list[dict[str, Any]], wanted: str) -> int:
    return sum(1 for e in events if e["@type"] == "triggerExecution" and trigger_id(e) == wanted)


# -- invariants -----------------------------------------------------------------------------------------


def _seen(kind: CommandKind, target: str, final: FinalState) -> dict[str, Any] | None:
    if kind is CommandKind.WORKFLOW:
        found = final.workflows.get(target)
        return found["configuration"] if found else None
    if kind is CommandKind.STATE_PATCH:
        found = final.workflows.get(target)
        return found["state"] if found else None
    if kind is CommandKind.RESOURCE:
        return {"concurrency": final.resources[target]} if target in final.resources else None
    return final.backfills.get(target)


def _matches(seen: dict[str, Any], written: dict[str, Any], fields: tuple[str, ...]) -> bool:
    return all(seen.get(name) == written[name] for name in fields if name in written)


def acknowledged_writes_visible(commands: list[Command], final: FinalState) -> Invariant:
    """The last acknowledged write of each workflow, resource, backfill edit and state patch is what the API
    shows; or one whose answer never came, since such a write may take effect at any moment, even later."""
    result = Invariant("no acknowledged write lost")
    by_target: dict[tuple[CommandKind, str], list[Command]] = defaultdict(list)
    for command in commands:
        if command.kind in CHECKED_FIELDS:
            by_target[(command.kind, command.target)].append(command)
    for (kind, target), sent in sorted(by_target.items(), key=lambda item: (item[0][0].value, item[0][1])):
        acknowledged = [c for c in sent if c.outcome is Outcome.ACKED]
        if not acknowledged:
            continue
        result.checked += 1
        fields = CHECKED_FIELDS[kind]
        last = max(acknowledged, key=lambda c: c.at)
        possible = [last.written, *(c.written for c in sent if c.outcome is Outcome.UNKNOWN)]
        seen = _seen(kind, target, final)
        if seen is None:
            result.violations.append(f"{kind.value} {target}: acknowledged, but gone")
        elif not any(_matches(seen, written, fields) for written in possible):
            shown = {name: seen.get(name) for name in fields if name in last.written}
            wanted = {name: last.written[name] for name in fields if name in last.written}
            result.violations.append(f"{kind.value} {target}: shows {shown}, last acknowledged {wanted}")
    return result


def acknowledged_triggers_complete(commands: list[Command], logs: dict[str, list[dict[str, Any]]]) -> Invariant:
    """Each acknowledged trigger has its triggerExecution (its trigger id, once) and its run ended."""
    result = Invariant("acknowledged triggers: triggerExecution + terminal outcome")
    for command in commands:
        if command.kind is not CommandKind.TRIGGER or command.outcome is not Outcome.ACKED:
            continue
        result.checked += 1
        wanted = command.answer["trigger_id"]
        mine = [run for run in runs(logs.get(command.target, [])) if trigger_id(run[0]) == wanted]
        if not mine:
            result.violations.append(f"{command.target}: no triggerExecution of acknowledged trigger {wanted}")
        elif len(mine) > 1:
            result.violations.append(f"{command.target}: trigger {wanted} executed {len(mine)} times")
        elif mine[0][-1]["@type"] not in TERMINAL_EVENTS:
            result.violations.append(f"{command.target}: trigger {wanted} ends with {mine[0][-1]['@type']}")
    return result


def executions_started_once(events: list[ContainerEvent], logs: dict[str, list[dict[str, Any]]]) -> Invariant:
    """One container created and started per execution id ever; one `submit` per execution id in all logs;
    no container the logs do not know."""
    result = Invariant("execution ids started at most once")
    submits = Counter(
        e["execution_id"] for log in logs.values() for e in log if e["@type"] == "submit" and e.get("execution_id")
    )
    engine = Counter((e.execution_id, e.action) for e in events if e.action in ("create", "start"))
    containers = {execution_id for execution_id, _ in engine}
    result.checked = len(containers | set(submits))
    for execution_id, count in sorted(submits.items()):
        if count > 1:
            result.violations.append(f"{execution_id}: {count} submit events")
    for (execution_id, action), count in sorted(engine.items()):
        if count > 1:
            result.violations.append(f"{execution_id}: container {action} {count} times")
    for execution_id in sorted(containers - set(submits)):
        result.violations.append(f"{execution_id}: a container no event log submitted")
    return result


def resource_limits_hold(
    events: list[ContainerEvent], samples: list[RunningSample], limits: dict[str, int]
) -> Invariant:
    """A resource-limited workflow never has more containers running than the resource's concurrency: from
    the engine's start and die events (exact) and from the engine's lists of running containers (sampled)."""
    result = Invariant("resource concurrency never exceeded")
    for workflow, limit in sorted(limits.items()):
        running: set[str] = set()
        for event in sorted((e for e in events if e.workflow == workflow), key=lambda e: e.at):
            if event.action == "start":
                result.checked += 1
                running.add(event.execution_id)
                if len(running) > limit:
                    at_once = f"{len(running)} containers running at {event.at:.3f}"
                    result.violations.append(f"{workflow}: {at_once} (limit {limit}): {sorted(running)}")
            elif event.action == "die":
                running.discard(event.execution_id)
        for sample in samples:
            if sample.workflow == workflow:
                result.checked += 1
                if len(sample.execution_ids) > limit:
                    listed = f"engine listed {len(sample.execution_ids)} running at {sample.at:.3f}"
                    result.violations.append(f"{workflow}: {listed} (limit {limit})")
    return result


def backfills_complete(commands: list[Command], final: FinalState) -> Invariant:
    """Every partition of every acknowledged backfill triggered by it exactly once; each ends all_triggered."""
    result = Invariant("backfill partitions triggered once, all_triggered")
    for command in commands:
        if command.kind is not CommandKind.BACKFILL or command.outcome is not Outcome.ACKED:
            continue
        backfill_id = command.target
        backfill = final.backfills.get(backfill_id)
        if backfill is None:
            result.violations.append(f"backfill {backfill_id}: acknowledged, but gone")
            continue
        if not backfill.get("all_triggered"):
            result.violations.append(f"backfill {backfill_id}: not all_triggered")
        for partition in command.written["partitions"]:
            result.checked += 1
            instance = f"{command.written['workflow']}/{partition}"
            count = count_triggers(final.event_logs.get(instance, []), backfill_id)
            if count != 1:
                result.violations.append(f"backfill {backfill_id}: partition {partition} triggered {count} times")
    return result


def _exit_cost(exit_code: int | None) -> float:
    if exit_code == 0:
        return 0.0
    return 0.1 if exit_code == MISSING_DEPS_EXIT else 1.0


def _over_budget(cost: float, variables: RetryVariables, condition: RetryCondition | None, budget: float) -> str | None:
    if cost >= budget:
        return f"retry cost {cost:g} reached the budget {budget:g}"
    if variables.exit_code == FAIL_FAST_EXIT:
        return f"exit {FAIL_FAST_EXIT}"
    if condition is not None and not condition(variables):
        return f"its retry_condition is false ({variables})"
    return None


def retry_budgets_hold(commands: list[Command], logs: dict[str, list[dict[str, Any]]], rules: Rules) -> Invariant:
    """Replays each run's retry cost, tries and exits: every automatic retry (a retryAfter right after
    TERMINATED or FAILED) was allowed by the cost budget and the workflow's retry_condition. A manual retry
    (POST /scheduler/retry, answered or not) may explain one retry past the budget of its instance."""
    result = Invariant("retry budgets hold")
    manual = Counter(
        c.target for c in commands if c.kind is CommandKind.RETRY and c.outcome in (Outcome.ACKED, Outcome.UNKNOWN)
    )
    for instance, events in sorted(logs.items()):
        condition = rules.retry_conditions.get(workflow_of(instance))
        unexplained_allowed = manual[instance]
        for run in runs(events):
            cost, tries, failures, last_exit, previous = 0.0, 0, 0, None, None
            trigger_type = (run[0].get("trigger") or {}).get("@type")
            for event in run:
                kind = event["@type"]
                if kind == "submitted":
                    tries += 1
                elif kind == "terminate":
                    last_exit = event.get("exit_code")
                    cost += _exit_cost(last_exit)
                    failures = 0 if last_exit in (0, MISSING_DEPS_EXIT) else failures + 1
                elif kind == "runError":
                    cost, last_exit, failures = cost + 1.0, None, failures + 1
                elif kind == "retryAfter" and previous in DECISION_EVENTS:
                    result.checked += 1
                    variables = RetryVariables(last_exit, tries, failures, trigger_type)
                    reason = _over_budget(cost, variables, condition, rules.max_retry_cost)
                    if reason is not None:
                        if unexplained_allowed:
                            unexplained_allowed -= 1
                        else:
                            result.violations.append(f"{instance}: retried after try {tries} although {reason}")
                previous = kind
    return result


def nothing_left_active(final: FinalState) -> Invariant:
    """After convergence nothing is active, unless QUEUED with its reason in its last message."""
    result = Invariant("nothing active after convergence without a reason")
    result.checked = len(final.active)
    for active in final.active:
        line = f"{active['instance']} {active['state']}: {active['last_message']!r}"
        if active["state"] == "QUEUED" and active["last_message"]:
            result.notes.append(f"still active: {line}")
        else:
            result.violations.append(f"still active: {line}")
    if not final.converged:
        result.notes.append(f"did not converge within {final.convergence_seconds:.0f} s")
    return result


def ready_after_restarts(readiness: Iterable[Readiness], bound: float) -> Invariant:
    result = Invariant(f"/readyz within {bound:.0f} s after each restart")
    for ready in readiness:
        result.checked += 1
        if ready.seconds is None or ready.seconds > bound:
            taken = "never" if ready.seconds is None else f"after {ready.seconds:.1f} s"
            result.violations.append(f"after {ready.after} at {ready.at:.3f}: ready {taken}")
        else:
            result.notes.append(f"after {ready.after}: ready in {ready.seconds:.1f} s")
    return result


def natural_triggers_once(logs: dict[str, list[dict[str, Any]]]) -> Invariant:
    """A natural partition is triggered at most once (the scheduler advances past it)."""
    result = Invariant("natural partitions triggered at most once")
    for instance, events in sorted(logs.items()):
        count = count_triggers(events, "natural-trigger")
        if count:
            result.checked += 1
        if count > 1:
            result.violations.append(f"{instance}: {count} natural triggers")
    return result


def no_internal_errors(commands: list[Command]) -> Invariant:
    """Faults may make the API answer 503 (store unavailable); a 500 is a defect."""
    result = Invariant("no 5xx other than 503")
    result.checked = sum(1 for c in commands if c.status is not None)
    for command in commands:
        if command.status is not None and command.status >= 500 and command.status != 503:
            result.violations.append(f"{command.kind.value} {command.target}: {command.status} at {command.at:.3f}")
    return result


def no_incidents(incidents: list[str]) -> Invariant:
    return Invariant("the service never exited by itself", checked=1, violations=list(incidents))


# -- the report -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    faults: dict[str, int]  # kind -> count of the faults that hit something
    missed_faults: int  # planned, but nothing to hit at that moment (no container running, no actor yet)
    actor_kills: dict[str, int]  # actor role -> count
    commands_sent: int
    commands_acknowledged: dict[str, int]  # kind -> count
    instances: int
    triggers: int
    containers: int

    @property
    def acknowledged(self) -> int:
        return sum(self.commands_acknowledged.values())


def summarize(history: History, final: FinalState) -> Summary:
    acknowledged = Counter(c.kind.value for c in history.commands if c.outcome is Outcome.ACKED)
    return Summary(
        faults=dict(Counter(f.kind.value for f in history.faults if f.target)),
        missed_faults=sum(1 for f in history.faults if not f.target),
        actor_kills=dict(Counter(f.target for f in history.faults if f.kind.value == "actor_kill" and f.target)),
        commands_sent=len(history.commands),
        commands_acknowledged=dict(sorted(acknowledged.items())),
        instances=len(final.event_logs),
        triggers=sum(len(runs(events)) for events in final.event_logs.values()),
        containers=len({e.execution_id for e in history.container_events if e.action == "create"}),
    )


def violation_count(invariants: list[Invariant]) -> int:
    return sum(len(i.violations) for i in invariants)


def render(title: str, summary: Summary, invariants: list[Invariant]) -> str:
    faults = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.faults.items())) or "none"
    kills = ", ".join(f"{role} {count}" for role, count in sorted(summary.actor_kills.items()))
    acknowledged = ", ".join(f"{kind} {count}" for kind, count in summary.commands_acknowledged.items())
    lines = [
        title,
        f"  faults injected        {sum(summary.faults.values())}: {faults}"
        + (f" (actors: {kills})" if kills else "")
        + (f"; {summary.missed_faults} more found nothing to hit" if summary.missed_faults else ""),
        f"  commands acknowledged  {summary.acknowledged} of {summary.commands_sent}: {acknowledged}",
        f"  instances              {summary.instances} ({summary.triggers} triggers)",
        f"  containers             {summary.containers}",
        f"  violations             {violation_count(invariants)}",
        "",
        f"  {'invariant':<58} {'checked':>8} {'violations':>10}",
    ]
    lines += [f"  {i.name:<58} {i.checked:>8} {len(i.violations):>10}" for i in invariants]
    for invariant in invariants:
        shown = invariant.violations[:PRINTED_VIOLATIONS]
        hidden = len(invariant.violations) - len(shown)
        if shown or invariant.notes:
            lines += ["", f"  {invariant.name}:"]
            lines += [f"    VIOLATION {line}" for line in shown]
            lines += [f"    ... and {hidden} more"] if hidden else []
            lines += [f"    {line}" for line in invariant.notes]
    return "\n".join(lines)
