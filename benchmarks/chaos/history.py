"""What a chaos run records: the commands sent and how each was answered, the faults injected, the engine's
container events, samples of running containers, readiness after restarts, and the state read back once the
system converged. Plain data (JSON-friendly), so the checker (checker.py) is a pure function of it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class Outcome(str, enum.Enum):
    ACKED = "acked"  # a 2xx: the service says it was done
    REFUSED = "refused"  # a 4xx: the service says nothing was done
    NOT_SENT = "not_sent"  # the connection was refused: the request never reached the service
    UNKNOWN = "unknown"  # a 5xx, a timeout or a connection lost mid-request: it may have been done, even later


class CommandKind(str, enum.Enum):
    WORKFLOW = "workflow"  # POST /workflows/{c}: target "c/w", written = the configuration sent
    RESOURCE = "resource"  # PUT /resources/{id}: target the id, written = {"concurrency": n}
    BACKFILL = "backfill"  # POST /backfills: target the id answered, written = its input and its partitions
    BACKFILL_EDIT = "backfill_edit"  # PUT /backfills/{id}: written = {"concurrency": n}
    STATE_PATCH = "state_patch"  # PATCH /workflows/{c}/{w}/state: written = {"enabled": b}
    TRIGGER = "trigger"  # POST /scheduler/trigger: target "c/w/p", answer = {"trigger_id": ...}
    RETRY = "retry"  # POST /scheduler/retry: target "c/w/p"
    HALT = "halt"  # POST /scheduler/halt: target "c/w/p"


# Writes whose effect must still be visible after convergence, and the fields compared.
CHECKED_FIELDS: dict[CommandKind, tuple[str, ...]] = {
    CommandKind.WORKFLOW: ("schedule", "docker_image", "docker_args", "env", "resources", "retry_condition"),
    CommandKind.RESOURCE: ("concurrency",),
    CommandKind.BACKFILL_EDIT: ("concurrency",),
    CommandKind.STATE_PATCH: ("enabled",),
}


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    target: str
    written: dict[str, Any]
    outcome: Outcome
    status: int | None  # the HTTP status, None without an answer
    at: float  # wall clock (s) when it was sent
    answer: dict[str, Any] = field(default_factory=dict)  # what the checker needs of a 2xx; a 4xx's message


class FaultKind(str, enum.Enum):
    ACTOR_KILL = "actor_kill"  # SIGKILL of one actor process (shard, scheduler, broker, runner)
    SERVICE_KILL = "service_kill"  # SIGKILL of the whole service (its Ray included), then a restart
    CONTAINER_KILL = "container_kill"  # `docker kill` of one of the service's running containers
    REDIS_RESTART = "redis_restart"  # Redis stopped, then started again on its port with its AOF
    REDIS_PAUSE = "redis_pause"  # Redis SIGSTOPped, then SIGCONTed


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: float
    target: str  # what was hit: an actor's name, a container, "redis", "service"; "" when nothing was there
    detail: str = ""


@dataclass(frozen=True)
class ContainerEvent:
    """One event of the engine about one of the installation's containers."""

    at: float  # seconds, from the engine's nanosecond timestamp
    action: str  # create, start, die, kill, destroy, ...
    execution_id: str
    workflow: str  # "component/workflow"


@dataclass(frozen=True)
class RunningSample:
    at: float
    workflow: str
    execution_ids: tuple[str, ...]  # the workflow's containers the engine listed as running


@dataclass(frozen=True)
class Readiness:
    """How long `/readyz` took to answer 200 after something restarted; None: not within the bound."""

    after: str  # "service start", "redis restart", "redis pause"
    at: float
    seconds: float | None


@dataclass
class FinalState:
    """What the API shows once the run converged (or its bound passed)."""

    workflows: dict[str, dict[str, Any]]  # "c/w" -> {"configuration": {...}, "state": {...}}
    resources: dict[str, int]  # id -> concurrency
    backfills: dict[str, dict[str, Any]]  # id -> the backfill's JSON
    event_logs: dict[str, list[dict[str, Any]]]  # "c/w/p" -> its events (each with "@type" and "timestamp")
    active: list[dict[str, Any]]  # {"instance": "c/w/p", "state": ..., "last_message": str | None}
    converged: bool
    convergence_seconds: float


@dataclass
class History:
    commands: list[Command] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    container_events: list[ContainerEvent] = field(default_factory=list)
    samples: list[RunningSample] = field(default_factory=list)
    readiness: list[Readiness] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)  # wrong by themselves: the service exited on its own

    def dump(self, path: Path, final: FinalState | None) -> None:
        """Everything recorded, as JSON, for a look after the run."""
        payload = {"history": asdict(self), "final": asdict(final) if final is not None else None}
        path.write_text(json.dumps(payload, indent=1, default=str))
