"""The domain's data: pydantic models shaped like the v3 contract's payloads.

Input follows Styx's lenient JSON conventions (docs/semantics.md#input-conventions): unknown fields are
ignored, numbers and booleans may arrive as strings, a single value is accepted where a list is expected.
Output follows the contract (docs/api.md#decisions-where-the-contract-and-styx-differ): `enabled` as the
strings "true"/"false", `running_timeout` as an ISO duration, instants as ISO UTC strings, absent
optionals as null.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_serializer,
    field_validator,
    model_serializer,
)

from styx_actors.timeutil import format_duration, format_instant, parse_duration, parse_instant


def _as_list(value: Any) -> Any:
    """Styx accepts a single value where an array is expected (`"docker_args": "x"` means `["x"]`)."""
    if value is None or isinstance(value, (list, tuple, set, frozenset)):
        return value
    return [value]


def _instant_in(value: Any) -> Any:
    return parse_instant(value) if isinstance(value, str) else value


def _duration_in(value: Any) -> Any:
    return None if value is None else parse_duration(value)


def _strict_bool_in(value: Any) -> Any:
    """Booleans as JSON booleans or the strings "true"/"false" (any case); nothing else."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


StrList = Annotated[list[str], BeforeValidator(_as_list)]
Instant = Annotated[
    datetime,
    BeforeValidator(_instant_in),
    PlainSerializer(format_instant, return_type=str, when_used="json-unless-none"),
]
IsoDuration = Annotated[
    timedelta,
    BeforeValidator(_duration_in),
    PlainSerializer(format_duration, return_type=str, when_used="json-unless-none"),
]
LenientBool = Annotated[bool, BeforeValidator(_strict_bool_in)]
# The contract writes `enabled` as a string.
StringBool = Annotated[
    bool,
    BeforeValidator(_strict_bool_in),
    PlainSerializer(lambda b: "true" if b else "false", return_type=str, when_used="json"),
]


class StyxModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------------------------------------
# Identifiers


class WorkflowId(StyxModel):
    component_id: str
    id: str

    def key(self) -> str:
        return f"{self.component_id}#{self.id}"

    def __str__(self) -> str:
        return self.key()

    @classmethod
    def parse_key(cls, key: str) -> WorkflowId:
        index = key.find("#")
        if index < 1:
            raise ValueError(f"invalid workflow key: {key}")
        return cls(component_id=key[:index], id=key[index + 1 :])


class WorkflowInstance(StyxModel):
    workflow_id: WorkflowId
    parameter: str

    def key(self) -> str:
        return f"{self.workflow_id.key()}#{self.parameter}"

    def __str__(self) -> str:
        return self.key()

    @property
    def component_id(self) -> str:
        return self.workflow_id.component_id

    @classmethod
    def of(cls, component_id: str, workflow_id: str, parameter: str) -> WorkflowInstance:
        return cls(workflow_id=WorkflowId(component_id=component_id, id=workflow_id), parameter=parameter)

    @classmethod
    def parse_key(cls, key: str) -> WorkflowInstance:
        index = key.rfind("#")
        if index < 1:
            raise ValueError(f"invalid workflow instance key: {key}")
        return cls(workflow_id=WorkflowId.parse_key(key[:index]), parameter=key[index + 1 :])

    def slash_form(self) -> str:
        """The contract's string form, `component/workflow/parameter`."""
        return f"{self.workflow_id.component_id}/{self.workflow_id.id}/{self.parameter}"

    def contract_json(self) -> dict[str, Any]:
        """The instances endpoint names the workflow `workflow` (contract), not `workflow_id`."""
        return {"workflow": self.workflow_id.model_dump(mode="json"), "parameter": self.parameter}


# ---------------------------------------------------------------------------------------------------------
# Workflows


class DeploymentSource(StyxModel):
    repository: str | None = None
    source: str | None = None


class WorkflowConfiguration(StyxModel):
    id: str
    schedule: str
    offset: str | None = None
    commit_sha: str | None = None
    docker_image: str | None = None
    docker_args: StrList | None = None
    docker_termination_logging: LenientBool = False
    service_account: str | None = None
    resources: StrList = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    running_timeout: IsoDuration | None = None
    retry_condition: str | None = None
    deployment_source: DeploymentSource | None = None
    deployment_time: Instant | None = None

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_as_strings(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) else _scalar_text(v) for k, v in value.items()}
        return value

    @field_validator("resources", mode="before")
    @classmethod
    def _resources_default(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_serializer("schedule")
    def _schedule_json_form(self, schedule: str) -> str:
        from styx_actors.schedule import Schedule

        try:
            return Schedule.parse(schedule).json_form()
        except ValueError:
            return schedule

    def has_execution_info(self) -> bool:
        return self.docker_image is not None


def _scalar_text(value: Any) -> Any:
    """Env values written as YAML/JSON scalars (`PORT: 80`) are their text; containers are refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class Workflow(StyxModel):
    component_id: str
    workflow_id: str
    configuration: WorkflowConfiguration

    @property
    def id(self) -> WorkflowId:
        return WorkflowId(component_id=self.component_id, id=self.workflow_id)

    @classmethod
    def create(cls, component_id: str, configuration: WorkflowConfiguration) -> Workflow:
        return cls(component_id=component_id, workflow_id=configuration.id, configuration=configuration)


class WorkflowState(StyxModel):
    enabled: StringBool = False
    next_natural_trigger: Instant | None = None
    next_natural_offset_trigger: Instant | None = None


class WorkflowStatePatch(StyxModel):
    """PATCH body: only the fields present overwrite the stored state (docs/semantics.md#workflow-state)."""

    enabled: LenientBool | None = None
    next_natural_trigger: Instant | None = None
    next_natural_offset_trigger: Instant | None = None


class WorkflowWithState(StyxModel):
    workflow: Workflow
    state: WorkflowState


# ---------------------------------------------------------------------------------------------------------
# Triggers and executions


class TriggerType(str, enum.Enum):
    NATURAL = "natural"
    ADHOC = "adhoc"
    BACKFILL = "backfill"
    UNKNOWN = "unknown"


NATURAL_TRIGGER_ID = "natural-trigger"


class Trigger(StyxModel):
    """Why an instance was created. JSON: `{"@type": "natural"}` or `{"@type": T, "trigger_id": id}`."""

    type: TriggerType = Field(alias="@type")
    explicit_id: str | None = Field(default=None, alias="trigger_id")

    @property
    def trigger_id(self) -> str:
        if self.type is TriggerType.NATURAL:
            return NATURAL_TRIGGER_ID
        return self.explicit_id if self.explicit_id is not None else "UNKNOWN"

    @classmethod
    def natural(cls) -> Trigger:
        return cls(type=TriggerType.NATURAL)

    @classmethod
    def adhoc(cls, trigger_id: str) -> Trigger:
        return cls(type=TriggerType.ADHOC, explicit_id=trigger_id)

    @classmethod
    def backfill(cls, backfill_id: str) -> Trigger:
        return cls(type=TriggerType.BACKFILL, explicit_id=backfill_id)

    @classmethod
    def unknown(cls, trigger_id: str = "UNKNOWN") -> Trigger:
        return cls(type=TriggerType.UNKNOWN, explicit_id=trigger_id)

    @model_serializer
    def to_json(self) -> dict[str, Any]:
        if self.type is TriggerType.NATURAL:
            return {"@type": "natural"}
        return {"@type": self.type.value, "trigger_id": self.trigger_id}


class TriggerParameters(StyxModel):
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_default(cls, value: Any) -> Any:
        return {} if value is None else value


class ExecutionDescription(StyxModel):
    docker_image: str | None = None
    docker_args: StrList = Field(default_factory=list)
    docker_termination_logging: LenientBool = False
    service_account: str | None = None
    commit_sha: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    running_timeout: IsoDuration | None = None
    retry_condition: str | None = None


class MessageLevel(str, enum.Enum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


class Message(StyxModel):
    level: MessageLevel
    line: str

    @field_validator("level", mode="before")
    @classmethod
    def _unknown_level(cls, value: Any) -> Any:
        return value if value in MessageLevel._value2member_map_ else MessageLevel.UNKNOWN

    @classmethod
    def info(cls, line: str) -> Message:
        return cls(level=MessageLevel.INFO, line=line)

    @classmethod
    def warning(cls, line: str) -> Message:
        return cls(level=MessageLevel.WARNING, line=line)

    @classmethod
    def error(cls, line: str) -> Message:
        return cls(level=MessageLevel.ERROR, line=line)


# ---------------------------------------------------------------------------------------------------------
# Run state


class State(str, enum.Enum):
    NEW = "NEW"
    QUEUED = "QUEUED"
    PREPARE = "PREPARE"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    DONE = "DONE"

    @property
    def is_terminal(self) -> bool:
        return self in (State.ERROR, State.DONE)

    @property
    def consumes_resources(self) -> bool:
        """An instance holds its resource permits while in these states (docs/semantics.md#states)."""
        return self in (State.PREPARE, State.SUBMITTING, State.SUBMITTED, State.RUNNING)


class StateData(StyxModel):
    tries: int = 0
    consecutive_failures: int = 0
    retry_cost: float = 0.0
    retry_delay_millis: int | None = None
    last_exit: int | None = None
    trigger: Trigger | None = None
    trigger_id: str | None = None
    execution_id: str | None = None
    runner_id: str | None = None
    execution_description: ExecutionDescription | None = None
    resource_ids: list[str] | None = None
    trigger_parameters: TriggerParameters | None = None
    messages: list[Message] = Field(default_factory=list)

    def last_message(self) -> Message | None:
        return self.messages[-1] if self.messages else None


class RunState(StyxModel):
    workflow_instance: WorkflowInstance
    state: State
    timestamp: int  # epoch milliseconds of the last transition
    data: StateData = Field(default_factory=StateData)
    counter: int = -1

    @classmethod
    def fresh(cls, instance: WorkflowInstance, timestamp: int, counter: int = -1) -> RunState:
        return cls(workflow_instance=instance, state=State.NEW, timestamp=timestamp, counter=counter)

    def retry_due_millis(self) -> int | None:
        """The end of a QUEUED instance's retry delay (RetryAfter), if it has one: then it may ask for permits."""
        delay = self.data.retry_delay_millis
        return self.timestamp + delay if delay else None


class RunStateData(StyxModel):
    """API view of one instance's state (activeStates and backfill statuses)."""

    workflow_instance: WorkflowInstance
    state: str
    state_data: StateData
    initial_timestamp: int | None = None
    latest_timestamp: int | None = None

    @classmethod
    def of(cls, run_state: RunState) -> RunStateData:
        return cls(
            workflow_instance=run_state.workflow_instance,
            state=run_state.state.value,
            state_data=run_state.data,
            latest_timestamp=run_state.timestamp,
        )


class RunStateDataPayload(StyxModel):
    active_states: list[RunStateData]


# ---------------------------------------------------------------------------------------------------------
# Resources, backfills, global config


class Resource(StyxModel):
    id: str
    concurrency: int


class Backfill(StyxModel):
    id: str
    start: Instant
    end: Instant
    workflow_id: WorkflowId
    concurrency: int
    description: str | None = None
    next_trigger: Instant
    schedule: str
    all_triggered: bool = False
    halted: bool = False
    reverse: bool = False
    trigger_parameters: TriggerParameters | None = None
    created: Instant | None = None
    last_modified: Instant | None = None

    @field_serializer("schedule")
    def _schedule_json_form(self, schedule: str) -> str:
        from styx_actors.schedule import Schedule

        try:
            return Schedule.parse(schedule).json_form()
        except ValueError:
            return schedule


class BackfillInput(StyxModel):
    start: Instant
    end: Instant
    component: str
    workflow: str
    concurrency: int = 0
    reverse: LenientBool = False
    description: str | None = None
    trigger_parameters: TriggerParameters | None = None


class EditableBackfillInput(StyxModel):
    id: str
    concurrency: int | None = None
    description: str | None = None


class GlobalConfig(StyxModel):
    """Cluster-wide switches (docs/semantics.md#global-config)."""

    enabled: bool = True
    concurrency: int | None = None
    docker_runner_id: str = "default"
    debug: bool = False
    client_blacklist: list[str] = Field(default_factory=list)


class TriggerRequest(StyxModel):
    workflow_id: WorkflowId
    parameter: str
    trigger_parameters: TriggerParameters | None = None


class TriggerResponse(StyxModel):
    workflow_id: WorkflowId
    parameter: str
    trigger_parameters: TriggerParameters | None = None
    trigger_id: str


TriggerTypeName = Literal["natural", "adhoc", "backfill", "unknown"]
