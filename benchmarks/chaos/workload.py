"""The mixed workload of a chaos run, driven through the REST API, every command recorded with its outcome.

Workflows of component `chaos` (busybox jobs of a few seconds):

| workflow | schedule | job | driven by |
|---|---|---|---|
| minutely-steady | `* * * * *` | sleep 1 | natural triggers |
| minutely-toggled | `* * * * *` | sleep 2 | natural triggers; disabled and enabled again and again |
| hourly | hours | sleep 2 | natural triggers (the next trigger set 3 hours back: a catch-up); a reverse backfill |
| limited | hours | sleep 1-5 | `chaos-pair` (concurrency 2); ad-hoc triggers; a backfill (concurrency edited) |
| adhoc | days | sleep 1-5 | ad-hoc triggers, halts, retries; saved again with another env |
| fails-budget | days | exit 1 | ad-hoc triggers: retried until the retry cost reaches STYX_MAX_RETRY_COST |
| fails-condition | days | exit 3 | ad-hoc triggers: retried while `#tries < 2` |

Resource `chaos-spare` is edited now and then (its concurrency only has to survive). Ad-hoc triggers give
the job its sleep through the trigger's env (SLEEP_SECONDS), from the plan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from benchmarks.chaos.checker import Rules, workflow_of
from benchmarks.chaos.history import Command, CommandKind, History, Outcome
from benchmarks.chaos.plan import Action, PlannedCommand, pick_one

log = logging.getLogger(__name__)

API = "/api/v3"
COMPONENT = "chaos"
IMAGE = "styx-test/busybox:latest"
PAIR = "chaos-pair"
PAIR_CONCURRENCY = 2
SPARE = "chaos-spare"
MAX_RETRY_COST = 3.0  # STYX_MAX_RETRY_COST of the service under test
SETUP_TIMEOUT_SECONDS = 120.0
CATCH_UP_HOURS = 3


@dataclass(frozen=True)
class WorkflowSpec:
    id: str
    schedule: str
    script: str
    resources: tuple[str, ...] = ()
    retry_condition: str | None = None
    natural: bool = False  # enabled: natural triggers

    @property
    def key(self) -> str:
        return f"{COMPONENT}/{self.id}"

    def configuration(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule": self.schedule,
            "docker_image": IMAGE,
            "docker_args": ["sh", "-c", self.script],
            "resources": list(self.resources),
            "env": env or {},
            "retry_condition": self.retry_condition,
        }


MINUTELY = "* * * * *"
STEADY = WorkflowSpec("minutely-steady", MINUTELY, "sleep 1", natural=True)
TOGGLED = WorkflowSpec("minutely-toggled", MINUTELY, "sleep 2", natural=True)
HOURLY = WorkflowSpec("hourly", "hours", "sleep 2", natural=True)
LIMITED = WorkflowSpec("limited", "hours", "sleep ${SLEEP_SECONDS:-3}", resources=(PAIR,))
ADHOC = WorkflowSpec("adhoc", "days", "sleep ${SLEEP_SECONDS:-2}")
FAILS_BUDGET = WorkflowSpec("fails-budget", "days", "sleep 1; exit 1")
FAILS_CONDITION = WorkflowSpec("fails-condition", "days", "sleep 1; exit 3", retry_condition="#tries < 2")
WORKFLOWS = (STEADY, TOGGLED, HOURLY, LIMITED, ADHOC, FAILS_BUDGET, FAILS_CONDITION)

# Where each workflow's ad-hoc parameters start (one new parameter per trigger), far from natural ones.
FIRST_PARAMETER = {
    LIMITED.id: datetime(2021, 6, 1, tzinfo=UTC),
    ADHOC.id: datetime(2021, 1, 1, tzinfo=UTC),
    FAILS_BUDGET.id: datetime(2022, 1, 1, tzinfo=UTC),
    FAILS_CONDITION.id: datetime(2023, 1, 1, tzinfo=UTC),
}
TRIGGERED = {
    Action.TRIGGER_ADHOC: ADHOC,
    Action.TRIGGER_LIMITED: LIMITED,
    Action.TRIGGER_FAILS_BUDGET: FAILS_BUDGET,
    Action.TRIGGER_FAILS_CONDITION: FAILS_CONDITION,
}
HALTED = (ADHOC, FAILS_BUDGET, FAILS_CONDITION)  # never `limited`: see docs/reliability.md
RETRIED = (ADHOC, FAILS_BUDGET, FAILS_CONDITION)


def rules(readiness_bound: float) -> Rules:
    """What the checker holds this workload to."""
    return Rules(
        resource_limits={LIMITED.key: PAIR_CONCURRENCY},
        max_retry_cost=MAX_RETRY_COST,
        retry_conditions={FAILS_CONDITION.key: lambda v: v.tries < 2},
        readiness_bound=readiness_bound,
    )


def service_settings() -> dict[str, str]:
    """STYX_* settings that make the workload's cycle short (docs/configuration.md)."""
    return {
        "STYX_AUTH": "none",
        "STYX_SHARD_COUNT": "2",
        "STYX_STATE_MANAGER_TICK_INTERVAL": "2",
        "STYX_RETRY_BASE_DELAY": "3",  # failed instances wait 3-9 s in QUEUED: time for manual retries
        "STYX_RETRY_MAX_EXPONENT": "2",
        "STYX_MAX_RETRY_COST": str(MAX_RETRY_COST),
        "STYX_CONTAINER_GRACE_PERIOD": "5",
        "STYX_CONTAINER_STOP_TIMEOUT": "1",
        "STYX_CONTAINER_NETWORK": "none",
        "STYX_WORKFLOW_CACHE_TTL": "1",
    }


def hours(start: datetime, count: int) -> list[str]:
    return [(start + timedelta(hours=i)).strftime("%Y-%m-%dT%H") for i in range(count)]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Workload:
    """Sends the commands and records each with its outcome (history.Outcome)."""

    def __init__(self, client: httpx.AsyncClient, history: History, backfill_partitions: int) -> None:
        self._client = client
        self._history = history
        self._backfill_partitions = backfill_partitions
        self._next_parameter = {workflow: 0 for workflow in FIRST_PARAMETER}
        self._toggled_enabled = True
        self._version = 0
        self.backfill_ids: list[str] = []

    # -- sending --------------------------------------------------------------------------------------------

    async def send(
        self, kind: CommandKind, target: str, method: str, path: str, body: dict[str, Any], written: dict[str, Any]
    ) -> Command:
        at = time.time()
        status: int | None = None
        answer: dict[str, Any] = {}
        try:
            response = await self._client.request(method, f"{API}{path}", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            outcome = Outcome.NOT_SENT
        except httpx.HTTPError:
            outcome = Outcome.UNKNOWN
        else:
            status = response.status_code
            if response.is_success:
                outcome = Outcome.ACKED
                answer = _answer(kind, response)
                target = answer.get("id", target)
            else:
                outcome = Outcome.REFUSED if status < 500 else Outcome.UNKNOWN
                if status >= 500 and status != 503:
                    log.warning("%s %s answered %d: %s", method, path, status, response.text[:300])
            if outcome is Outcome.REFUSED:
                answer = {"refusal": response.text[:300]}
        command = Command(kind, target, written, outcome, status, at, answer)
        self._history.commands.append(command)
        return command

    async def send_until_acked(
        self, kind: CommandKind, target: str, method: str, path: str, body: dict[str, Any], written: dict[str, Any]
    ) -> Command:
        """For the writes the run depends on (its set-up, the final quiescing): again until acknowledged."""
        deadline = time.monotonic() + SETUP_TIMEOUT_SECONDS
        while (command := await self.send(kind, target, method, path, body, written)).outcome is not Outcome.ACKED:
            if command.outcome is Outcome.REFUSED or time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path} was not acknowledged: {command}")
            await asyncio.sleep(1)  # the service restarts or its store is down: ask again in a while
        return command

    # -- the phases -----------------------------------------------------------------------------------------

    async def set_up(self) -> None:
        for resource, concurrency in ((PAIR, PAIR_CONCURRENCY), (SPARE, 3)):
            await self._save_resource(resource, concurrency, until_acked=True)
        for spec in WORKFLOWS:
            configuration = spec.configuration()
            await self.send_until_acked(
                CommandKind.WORKFLOW, spec.key, "POST", f"/workflows/{COMPONENT}", configuration, configuration
            )
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        catch_up = iso(now - timedelta(hours=CATCH_UP_HOURS))
        for spec in WORKFLOWS:
            if spec.natural:
                patch: dict[str, Any] = {"enabled": True}
                if spec is HOURLY:
                    patch |= {"next_natural_trigger": catch_up, "next_natural_offset_trigger": catch_up}
                path = f"/workflows/{COMPONENT}/{spec.id}/state"
                await self.send_until_acked(CommandKind.STATE_PATCH, spec.key, "PATCH", path, patch, {"enabled": True})
        start = datetime(2020, 1, 1, tzinfo=UTC)
        for spec, reverse, concurrency in ((LIMITED, False, 3), (HOURLY, True, 2)):
            end = start + timedelta(hours=self._backfill_partitions)
            body = {
                "start": iso(start),
                "end": iso(end),
                "component": COMPONENT,
                "workflow": spec.id,
                "concurrency": concurrency,
                "reverse": reverse,
                "description": "chaos",
            }
            written = {"workflow": spec.key, "reverse": reverse, "partitions": hours(start, self._backfill_partitions)}
            command = await self.send_until_acked(CommandKind.BACKFILL, "", "POST", "/backfills", body, written)
            self.backfill_ids.append(command.target)
            start = end + timedelta(days=1)

    async def run(self, plan: list[PlannedCommand], began: float) -> None:
        """Each planned command at its moment (monotonic seconds after `began`)."""
        for planned in plan:
            await asyncio.sleep(max(0.0, began + planned.at - time.monotonic()))
            await self.do(planned)

    async def quiesce(self) -> None:
        """Stop natural triggers, so that the run can converge."""
        for spec in WORKFLOWS:
            if spec.natural:
                await self._patch_enabled(spec, False, until_acked=True)

    # -- the actions ----------------------------------------------------------------------------------------

    async def do(self, planned: PlannedCommand) -> None:
        action = planned.action
        if action in TRIGGERED:
            await self._trigger(TRIGGERED[action], planned.value)
        elif action is Action.HALT:
            await self._to_active(CommandKind.HALT, "/scheduler/halt", HALTED, planned.pick, queued_only=False)
        elif action is Action.RETRY:
            await self._to_active(CommandKind.RETRY, "/scheduler/retry", RETRIED, planned.pick, queued_only=True)
        elif action is Action.EDIT_BACKFILL:
            backfill_id = pick_one(sorted(self.backfill_ids), planned.pick)
            if backfill_id is not None:
                written = {"concurrency": planned.value}
                path = f"/backfills/{backfill_id}"
                await self.send(
                    CommandKind.BACKFILL_EDIT, backfill_id, "PUT", path, {"id": backfill_id, **written}, written
                )
        elif action is Action.TOGGLE_WORKFLOW:
            self._toggled_enabled = not self._toggled_enabled
            await self._patch_enabled(TOGGLED, self._toggled_enabled)
        elif action is Action.REDEPLOY:
            self._version += 1
            configuration = ADHOC.configuration({"VERSION": str(self._version)})
            path = f"/workflows/{COMPONENT}"
            await self.send(CommandKind.WORKFLOW, ADHOC.key, "POST", path, configuration, configuration)
        elif action is Action.EDIT_RESOURCE:
            await self._save_resource(SPARE, planned.value)

    async def _trigger(self, spec: WorkflowSpec, sleep_seconds: int) -> None:
        index = self._next_parameter[spec.id]
        self._next_parameter[spec.id] += 1
        step = timedelta(hours=index) if spec.schedule == "hours" else timedelta(days=index)
        moment = FIRST_PARAMETER[spec.id] + step
        parameter = moment.strftime("%Y-%m-%dT%H") if spec.schedule == "hours" else moment.strftime("%Y-%m-%d")
        body = {
            "workflow_id": {"component_id": COMPONENT, "id": spec.id},
            "parameter": parameter,
            "trigger_parameters": {"env": {"SLEEP_SECONDS": str(sleep_seconds)}},
        }
        await self.send(CommandKind.TRIGGER, f"{spec.key}/{parameter}", "POST", "/scheduler/trigger", body, {})

    async def _to_active(
        self, kind: CommandKind, path: str, workflows: tuple[WorkflowSpec, ...], pick: float, queued_only: bool
    ) -> None:
        """Halt or retry one of the active instances of `workflows` (QUEUED ones only for a retry: elsewhere a
        retry is refused, 400)."""
        wanted = {spec.key for spec in workflows}
        candidates = sorted(
            instance_key(state)
            for state in await self.active_states()
            if workflow_of(instance_key(state)) in wanted and (state["state"] == "QUEUED" or not queued_only)
        )
        instance = pick_one(candidates, pick)
        if instance is not None:
            await self.send(kind, instance, "POST", path, {"workflow_instance": instance}, {})

    async def active_states(self) -> list[dict[str, Any]]:
        """The component's active states; [] when the service does not answer (a read: not recorded)."""
        try:
            response = await self._client.get(f"{API}/status/activeStates", params={"component": COMPONENT})
        except httpx.HTTPError:
            return []
        return response.json()["active_states"] if response.is_success else []

    async def _save_resource(self, resource: str, concurrency: int, until_acked: bool = False) -> None:
        send = self.send_until_acked if until_acked else self.send
        body = {"id": resource, "concurrency": concurrency}
        await send(CommandKind.RESOURCE, resource, "PUT", f"/resources/{resource}", body, {"concurrency": concurrency})

    async def _patch_enabled(self, spec: WorkflowSpec, enabled: bool, until_acked: bool = False) -> None:
        send = self.send_until_acked if until_acked else self.send
        path = f"/workflows/{COMPONENT}/{spec.id}/state"
        await send(CommandKind.STATE_PATCH, spec.key, "PATCH", path, {"enabled": enabled}, {"enabled": enabled})


def instance_key(active_state: dict[str, Any]) -> str:
    """`component/workflow/parameter` of an entry of GET /status/activeStates."""
    instance = active_state["workflow_instance"]
    return f"{instance['workflow_id']['component_id']}/{instance['workflow_id']['id']}/{instance['parameter']}"


def _answer(kind: CommandKind, response: httpx.Response) -> dict[str, Any]:
    if kind is CommandKind.TRIGGER:
        return {"trigger_id": response.json()["trigger_id"]}
    if kind is CommandKind.BACKFILL:
        return {"id": response.json()["id"]}
    return {}
