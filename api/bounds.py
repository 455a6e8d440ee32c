"""Bounds on what a request may ask for, where Styx leaves it open (docs/api.md, "Bounds").

Everything a request names is stored, echoed back or worked on once per item, so each id, count and list has
a ceiling. Refusals are 400s in Styx's `<what>: <value>, limit = <limit>` form, raised before anything is
looked up or written. The workflow configuration's own limits stay in styx_actors/validation.py, with
Styx's messages; the env limits there also bound the env of trigger parameters.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from styx_actors.errors import BadRequest
from styx_actors.model import TriggerParameters, WorkflowInstance
from styx_actors.validation import EXTRA_FIELD_LENGTH_LIMIT, MAX_ID_LENGTH, env_errors

# The most instances one resource or one backfill may keep active at once.
MAX_CONCURRENCY = 10_000
MIN_RESOURCE_CONCURRENCY = 0  # 0 holds the resource's instances back (QUEUED) until it is raised
MIN_BACKFILL_CONCURRENCY = 1  # a backfill of concurrency 0 would never trigger anything
MAX_DESCRIPTION_LENGTH = EXTRA_FIELD_LENGTH_LIMIT
MAX_COMPONENTS_PER_QUERY = 100  # `activeStates?components=`: one store read per component

# A component, workflow, resource or backfill id, or a partition parameter, named in a path or a query.
PathId = Annotated[str, Path(max_length=MAX_ID_LENGTH)]
QueryId = Annotated[str | None, Query(max_length=MAX_ID_LENGTH)]


def refuse_unless_empty(errors: list[str]) -> None:
    if errors:
        raise BadRequest(", ".join(errors))


def upper_limit_errors(value: int, limit: int, message: str) -> list[str]:
    return [f"{message}: {value}, limit = {limit}"] if value > limit else []


def concurrency_errors(concurrency: int | None, minimum: int) -> list[str]:
    """None: not given (an edit that keeps it)."""
    if concurrency is None:
        return []
    if concurrency < minimum:
        return [f"concurrency is too small: {concurrency}, limit = {minimum}"]
    return upper_limit_errors(concurrency, MAX_CONCURRENCY, "concurrency is too big")


def description_errors(description: str | None) -> list[str]:
    return upper_limit_errors(len(description or ""), MAX_DESCRIPTION_LENGTH, "description too long")


def trigger_parameters_errors(parameters: TriggerParameters | None) -> list[str]:
    """The env given at trigger time is stored with every instance it starts: a workflow's env limits apply."""
    env = parameters.env if parameters is not None else {}
    return [f"trigger_parameters.env: {error}" for error in env_errors(env)]


def instance_errors(instance: WorkflowInstance) -> list[str]:
    """An instance named in a body (trigger, retry, halt, events): ids as long as a stored one can be."""
    return [
        *upper_limit_errors(len(instance.workflow_id.component_id), MAX_ID_LENGTH, "component id too long"),
        *upper_limit_errors(len(instance.workflow_id.id), MAX_ID_LENGTH, "workflow id too long"),
        *upper_limit_errors(len(instance.parameter), MAX_ID_LENGTH, "parameter too long"),
    ]


def component_list_errors(components: list[str]) -> list[str]:
    longest = max((len(name) for name in components), default=0)
    return [
        *upper_limit_errors(len(components), MAX_COMPONENTS_PER_QUERY, "too many components"),
        *upper_limit_errors(longest, MAX_ID_LENGTH, "component id too long"),
    ]
