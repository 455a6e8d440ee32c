"""Request and response bodies of the v3 API: reading JSON payloads with Styx's error texts, and the
wrapper shapes of the contract.

Bodies are read by hand rather than by FastAPI so that each route answers with Styx's own texts:
workflow routes say `Missing payload.` / `Invalid payload. <why>`, every other route `Missing payload` /
`Payload parsing failed: <why>` (docs/semantics.md#errors). A trailing comma before `}` or `]` is tolerated,
because the contract's own examples carry them (docs/api.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Self, TypeAlias, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from api.errors import validation_message
from styx_actors.errors import BadRequest
from styx_actors.model import (
    Backfill,
    Instant,
    Resource,
    RunStateDataPayload,
    StyxModel,
    Workflow,
    WorkflowInstance,
    WorkflowState,
)
from styx_actors.store.base import StoredEvent

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class PayloadTexts:
    missing: str
    invalid_prefix: str


WORKFLOW_PAYLOAD = PayloadTexts(missing="Missing payload.", invalid_prefix="Invalid payload. ")
ENTITY_PAYLOAD = PayloadTexts(missing="Missing payload", invalid_prefix="Payload parsing failed: ")


class ModelResponse(Response):
    """A model as JSON in one pydantic-core pass. FastAPI's own path validates a returned model again, turns
    it into Python objects and those into JSON: three times the work, which shows on big payloads
    (activeStates with 10,000 instances, docs/performance.md). The route keeps its response_model for the
    OpenAPI schema."""

    media_type = "application/json"

    def render(self, content: BaseModel) -> bytes:
        return content.__pydantic_serializer__.to_json(content, by_alias=True)


# A JSON string, kept, or a comma that directly precedes `}` or `]`, dropped. One left-to-right pass in
# linear time: the string's closing quote is optional, so an unterminated string is consumed once instead of
# being rescanned from every later quote, and a comma's lookahead only crosses the whitespace after it.
_STRING_OR_TRAILING_COMMA = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*"?)|,(?=\s*[}\]])', re.DOTALL)


def _without_trailing_commas(text: str) -> str:
    """Drop commas that directly precede `}` or `]` (outside strings), in linear time."""
    # split keeps the text between matches and each match's group: a string, or None for a dropped comma.
    # (Three times faster than sub, which expands a template for every string.)
    return "".join(filter(None, _STRING_OR_TRAILING_COMMA.split(text)))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _loads(text: str | bytes) -> Any:
    """Strict JSON: Python's NaN/Infinity extensions are refused like any other non-JSON text."""
    return json.loads(text, parse_constant=_refuse_constant)


def parse_json(body: bytes, texts: PayloadTexts) -> Any:
    if not body.strip():
        raise BadRequest(texts.missing)
    data = _parse_lenient(body, texts)
    if _MAY_HOLD_A_SURROGATE.search(body):
        _refuse_unencodable_text(data, texts)
    return data


def _parse_lenient(body: bytes, texts: PayloadTexts) -> Any:
    try:
        return _loads(body)
    except RecursionError:
        raise BadRequest(f"{texts.invalid_prefix}JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers too long to convert
        first_error = exc
    try:
        return _loads(_without_trailing_commas(body.decode()))
    except (ValueError, RecursionError):
        raise BadRequest(f"{texts.invalid_prefix}{first_error}") from None


# json.loads reads a UTF-16 surrogate escape (`\ud800`), or a surrogate written in UTF-8 bytes, into a str
# that cannot be encoded again: stored or echoed, it would fail deep in a store or a response (a 500). Only
# bodies that name one are walked, so ordinary bodies pay one byte scan.
_MAY_HOLD_A_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
UNENCODABLE = "not valid Unicode text (an unpaired surrogate)"

# A place in a JSON document: None for the document itself, else (the parent's place, key or index).
_Place: TypeAlias = tuple["_Place", str | int] | None


def _refuse_unencodable_text(data: Any, texts: PayloadTexts) -> None:
    """Raise naming a key or string that has an unpaired surrogate, e.g. `env.FOO: not valid Unicode ...`."""
    if isinstance(data, str) and not _encodable(data):
        raise BadRequest(f"{texts.invalid_prefix}{UNENCODABLE}")
    containers: list[tuple[dict[str, Any] | list[Any], _Place]] = []
    if isinstance(data, (dict, list)):
        containers.append((data, None))
    while containers:
        container, place = containers.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in items:
            if isinstance(key, str) and not _encodable(key):
                raise BadRequest(f"{texts.invalid_prefix}{_where(place)}a key is {UNENCODABLE}")
            if isinstance(child, str):
                if not _encodable(child):
                    raise BadRequest(f"{texts.invalid_prefix}{_where((place, key))}{UNENCODABLE}")
            elif isinstance(child, (dict, list)):
                containers.append((child, (place, key)))


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _where(place: _Place) -> str:
    """`a.b.0: ` as pydantic names places; empty for the document itself."""
    parts: list[str] = []
    while place is not None:
        place, part = place
        parts.append(str(part))
    return ".".join(reversed(parts)) + ": " if parts else ""


# A payload with thousands of wrong items would otherwise be answered (and audited) with thousands of
# messages; the first few say what is wrong.
MAX_REPORTED_ERRORS = 10


def parse_model(data: Any, model: type[M], texts: PayloadTexts) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        message = validation_message([dict(error) for error in errors[:MAX_REPORTED_ERRORS]])
        if len(errors) > MAX_REPORTED_ERRORS:
            message += f"; and {len(errors) - MAX_REPORTED_ERRORS} more errors"
        raise BadRequest(texts.invalid_prefix + message) from None
    except RecursionError:
        raise BadRequest(f"{texts.invalid_prefix}JSON nested too deeply") from None
    except OverflowError as exc:  # an instant whose UTC form falls outside years 1-9999
        raise BadRequest(f"{texts.invalid_prefix}{exc}") from None


async def read_json(request: Request, texts: PayloadTexts) -> Any:
    return parse_json(await request.body(), texts)


async def read_payload(request: Request, model: type[M], texts: PayloadTexts) -> M:
    return parse_model(await read_json(request, texts), model, texts)


def parse_instance_reference(text: Any, texts: PayloadTexts) -> WorkflowInstance:
    """A workflow instance named as the contract does (`component/workflow/parameter`) or by its Styx key
    (`component#workflow#parameter`). The component ends at the first separator, the parameter starts
    after the last one."""
    if isinstance(text, str):
        separator = "#" if "#" in text else "/"
        component, _, rest = text.partition(separator)
        workflow, _, parameter = rest.rpartition(separator)
        if component and workflow and parameter:
            return WorkflowInstance.of(component, workflow, parameter)
    raise BadRequest(f'{texts.invalid_prefix}workflow_instance must be "component/workflow/parameter", got {text!r}')


def parse_instance_payload(data: Any, texts: PayloadTexts) -> WorkflowInstance:
    """Retry and halt bodies: the contract's `{"workflow_instance": "c/w/p"}` or Styx's WorkflowInstance
    `{"workflow_id": {"component_id", "id"}, "parameter"}`."""
    if isinstance(data, dict) and "workflow_instance" in data:
        return parse_instance_reference(data["workflow_instance"], texts)
    return parse_model(data, WorkflowInstance, texts)


# ---------------------------------------------------------------------------------------------------------
# OpenAPI descriptions of the hand-read bodies


def _inline_refs(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline_refs(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, definitions) for item in schema]
    return schema


def json_schema(model: Any) -> dict[str, Any]:
    """A self-contained JSON schema of what a model accepts (the contract's models are not recursive)."""
    schema = TypeAdapter(model).json_schema(mode="validation")
    return _inline_refs(schema, schema.get("$defs", {}))


def request_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


INSTANCE_REFERENCE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"workflow_instance": {"type": "string", "description": "component/workflow/parameter"}},
            "required": ["workflow_instance"],
        },
        json_schema(WorkflowInstance),
    ]
}

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "@type": {"type": "string", "enum": ["halt", "timeout", "dequeue"]},
        "workflow_instance": {"type": "string", "description": "component/workflow/parameter"},
    },
    "required": ["@type", "workflow_instance"],
}


# ---------------------------------------------------------------------------------------------------------
# Response wrappers of the contract


class WorkflowPayload(Workflow):
    """A Workflow as the contract shows it: with `component_uri`, a field of old Styx versions (the file
    a workflow was read from) that this service has no value for and writes as null."""

    component_uri: str | None = None

    @classmethod
    def of(cls, workflow: Workflow) -> Self:
        return cls(
            component_id=workflow.component_id, workflow_id=workflow.workflow_id, configuration=workflow.configuration
        )


class SavedWorkflowPayload(WorkflowPayload):
    """The create/update response, which the contract marks with the API version it came through."""

    from_api: str = Field(default="V3", alias="__from_api")


class WorkflowWithStatePayload(StyxModel):
    workflow: WorkflowPayload
    state: WorkflowState


class ResourcesPayload(StyxModel):
    resources: list[Resource]


class BackfillStatusesPayload(RunStateDataPayload):
    """One page of a backfill's partition statuses (docs/api.md, "Bounds"): `next_status_from` is the first
    partition after the page, the `statusFrom` that asks for the next page; null on the last page."""

    next_status_from: Instant | None = None


class BackfillPayload(StyxModel):
    backfill: Backfill
    statuses: BackfillStatusesPayload | None = None


class BackfillsPayload(StyxModel):
    backfills: list[BackfillPayload]


class GlobalEnabledPayload(StyxModel):
    enabled: str  # the contract writes it as the string "true"/"false"


class ServiceAccountUsageRequest(StyxModel):
    service_account: str
    principal: str


class ServiceAccountUsageResponse(StyxModel):
    authorized: bool
    blacklisted: bool
    message: str | None
    service_account: str
    principal: str


def event_payload(stored: StoredEvent, instance: WorkflowInstance) -> dict[str, Any]:
    """One entry of the events endpoint: the persisted event with the contract's instance form."""
    event = json.loads(stored.event_json)
    event["workflow_instance"] = instance.slash_form()
    return {"event": event, "timestamp": stored.timestamp}
