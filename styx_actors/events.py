"""The events that drive a RunState, and their persisted JSON with `@type` names (docs/semantics.md#events).

Events do not carry their instance: the state they are applied to does. The instance is added when an
event is written out (`event_to_json`), as the string key `component#workflow#parameter`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from styx_actors.model import ExecutionDescription, Message, Trigger, TriggerParameters, WorkflowInstance


@dataclass(frozen=True, slots=True)
class Event:
    type_name: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.type_name

    def fields_json(self) -> dict[str, Any]:
        """The event's own fields in persisted form (null/absent ones omitted, as Styx does)."""
        return {}

    def info(self) -> str:
        """The human-readable detail the CLI `events` command shows (empty for most events)."""
        return ""


@dataclass(frozen=True, slots=True)
class TriggerExecution(Event):
    type_name: ClassVar[str] = "triggerExecution"
    trigger: Trigger
    parameters: TriggerParameters = field(default_factory=TriggerParameters)

    def fields_json(self) -> dict[str, Any]:
        return {"trigger": self.trigger.to_json(), "parameters": self.parameters.model_dump(mode="json")}

    def info(self) -> str:
        params = json.dumps(self.parameters.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return f"Trigger id: {self.trigger.trigger_id}, Parameters: {params}"


@dataclass(frozen=True, slots=True)
class Info(Event):
    type_name: ClassVar[str] = "info"
    message: Message

    def fields_json(self) -> dict[str, Any]:
        return {"message": self.message.model_dump(mode="json")}

    def info(self) -> str:
        return self.message.line


@dataclass(frozen=True, slots=True)
class Dequeue(Event):
    type_name: ClassVar[str] = "dequeue"
    resource_ids: tuple[str, ...] = ()

    def fields_json(self) -> dict[str, Any]:
        return {"resource_ids": list(self.resource_ids)}


@dataclass(frozen=True, slots=True)
class Submit(Event):
    type_name: ClassVar[str] = "submit"
    execution_description: ExecutionDescription
    execution_id: str | None = None

    def fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"execution_description": self.execution_description.model_dump(mode="json")}
        if self.execution_id is not None:
            out["execution_id"] = self.execution_id
        return out

    def info(self) -> str:
        return f"Execution description: {_execution_text(self.execution_description)}, id: {self.execution_id}"


def _execution_text(description: ExecutionDescription) -> str:
    """The container as a person reads it: image and arguments as a shell takes them, then what else is set
    (`busybox:1.36 echo hello (env A=1 B=2; timeout PT1H)`)."""
    image = [description.docker_image] if description.docker_image else []
    env = " ".join(f"{name}={value}" for name, value in sorted(description.env.items()))
    timeout = description.model_dump(mode="json")["running_timeout"]  # ISO-8601, as in workflow files
    details = [
        f"env {env}" if env else "",
        f"service account {description.service_account}" if description.service_account else "",
        f"commit {description.commit_sha}" if description.commit_sha else "",
        f"timeout {timeout}" if timeout else "",
        f"retry condition {description.retry_condition}" if description.retry_condition else "",
        "termination logging" if description.docker_termination_logging else "",
    ]
    shown = "; ".join(detail for detail in details if detail)
    command = shlex.join([*image, *description.docker_args])
    return f"{command} ({shown})" if shown else command


@dataclass(frozen=True, slots=True)
class Submitted(Event):
    type_name: ClassVar[str] = "submitted"
    execution_id: str | None = None
    runner_id: str | None = None

    def fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.execution_id is not None:
            out["execution_id"] = self.execution_id
        if self.runner_id is not None:
            out["runner_id"] = self.runner_id
        return out

    def info(self) -> str:
        return f"Execution id: {self.execution_id}, runner id: {self.runner_id}"


@dataclass(frozen=True, slots=True)
class Started(Event):
    type_name: ClassVar[str] = "started"


@dataclass(frozen=True, slots=True)
class Terminate(Event):
    type_name: ClassVar[str] = "terminate"
    exit_code: int | None = None

    def fields_json(self) -> dict[str, Any]:
        return {} if self.exit_code is None else {"exit_code": self.exit_code}

    def info(self) -> str:
        return f"Exit code: {'-' if self.exit_code is None else self.exit_code}"


@dataclass(frozen=True, slots=True)
class RunError(Event):
    type_name: ClassVar[str] = "runError"
    message: str

    def fields_json(self) -> dict[str, Any]:
        return {"message": self.message}

    def info(self) -> str:
        return f"Error message: {self.message}"


@dataclass(frozen=True, slots=True)
class Success(Event):
    type_name: ClassVar[str] = "success"


@dataclass(frozen=True, slots=True)
class RetryAfter(Event):
    type_name: ClassVar[str] = "retryAfter"
    delay_millis: int

    def fields_json(self) -> dict[str, Any]:
        return {"delay_millis": self.delay_millis}

    def info(self) -> str:
        return f"Delay (seconds): {self.delay_millis // 1000}"


@dataclass(frozen=True, slots=True)
class Stop(Event):
    type_name: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Timeout(Event):
    type_name: ClassVar[str] = "timeout"


@dataclass(frozen=True, slots=True)
class Halt(Event):
    type_name: ClassVar[str] = "halt"


@dataclass(frozen=True, slots=True)
class TimeTrigger(Event):
    """Deprecated: kept so that old event logs replay."""

    type_name: ClassVar[str] = "timeTrigger"


@dataclass(frozen=True, slots=True)
class Created(Event):
    """Deprecated: kept so that old event logs replay."""

    type_name: ClassVar[str] = "created"
    execution_id: str
    docker_image: str = "UNKNOWN"

    def fields_json(self) -> dict[str, Any]:
        return {"execution_id": self.execution_id, "docker_image": self.docker_image}

    def info(self) -> str:
        return f"Execution id: {self.execution_id}, Docker image: {self.docker_image}"


@dataclass(frozen=True, slots=True)
class Retry(Event):
    """Deprecated: kept so that old event logs replay."""

    type_name: ClassVar[str] = "retry"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type_name: cls
    for cls in (
        TriggerExecution,
        Info,
        Dequeue,
        Submit,
        Submitted,
        Started,
        Terminate,
        RunError,
        Success,
        RetryAfter,
        Stop,
        Timeout,
        Halt,
        TimeTrigger,
        Created,
        Retry,
    )
}


class EventParseError(ValueError):
    pass


def event_to_json(event: Event, instance: WorkflowInstance) -> dict[str, Any]:
    return {"@type": event.type_name, "workflow_instance": instance.key(), **event.fields_json()}


def event_to_json_text(event: Event, instance: WorkflowInstance) -> str:
    return json.dumps(event_to_json(event, instance), separators=(",", ":"))


def event_from_json(data: dict[str, Any] | str) -> tuple[Event, str | None]:
    """Parse a persisted event; returns the event and its `workflow_instance` string (if any).

    Accepts Styx's legacy forms (a `trigger_id` string instead of a trigger, missing optional fields).
    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise EventParseError(f"invalid event JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EventParseError("an event must be a JSON object")
    type_name = data.get("@type")
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise EventParseError(f"unknown event type: {type_name!r}")
    instance = data.get("workflow_instance")
    try:
        event = _build(cls, data)
    except (ValidationError, TypeError, ValueError, KeyError) as exc:
        raise EventParseError(f"invalid {type_name} event: {exc}") from exc
    return event, instance if isinstance(instance, str) else None


def _build(cls: type[Event], data: dict[str, Any]) -> Event:
    if cls is TriggerExecution:
        if data.get("trigger") is not None:
            trigger = Trigger.model_validate(data["trigger"])
        else:
            trigger = Trigger.unknown(data.get("trigger_id") or "UNKNOWN")
        params = TriggerParameters.model_validate(data.get("parameters") or {})
        return TriggerExecution(trigger=trigger, parameters=params)
    if cls is Info:
        return Info(message=Message.model_validate(data["message"]))
    if cls is Dequeue:
        return Dequeue(resource_ids=_resource_ids(data.get("resource_ids")))
    if cls is Submit:
        desc = ExecutionDescription.model_validate(data["execution_description"])
        return Submit(execution_description=desc, execution_id=data.get("execution_id"))
    if cls is Submitted:
        return Submitted(execution_id=data.get("execution_id"), runner_id=data.get("runner_id"))
    if cls is Terminate:
        code = data.get("exit_code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ValueError("exit_code must be an integer")
        return Terminate(exit_code=code)
    if cls is RunError:
        return RunError(message=str(data["message"]))
    if cls is RetryAfter:
        delay = data["delay_millis"]
        if isinstance(delay, bool) or not isinstance(delay, int):
            raise ValueError("delay_millis must be an integer")
        return RetryAfter(delay_millis=delay)
    if cls is Created:
        return Created(execution_id=str(data["execution_id"]), docker_image=data.get("docker_image") or "UNKNOWN")
    return cls()


def _resource_ids(value: Any) -> tuple[str, ...]:
    """Sorted resource ids; Styx reads a single string as a one-element array and a missing one as none."""
    if value is None:
        return ()
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("resource_ids must be an array of strings")
    return tuple(sorted(ids))
