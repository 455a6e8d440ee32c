"""PREPARE: turn the *current* workflow configuration into an execution (docs/semantics.md#preparing-an-execution).

Pure: given what the store said about the workflow, decide the event the instance sends next.
Retries therefore pick up configuration changes made between executions.
"""

from __future__ import annotations

import uuid

from styx_actors.events import Event, Halt, Submit
from styx_actors.model import (
    ExecutionDescription,
    RunState,
    TriggerType,
    Workflow,
    WorkflowState,
)
from styx_actors.validation import ValidationLimits, workflow_errors


def substitute_parameter(args: list[str], parameter: str) -> list[str]:
    """Every argument that is exactly `{}` becomes the parameter; `--date={}` is left alone
    (docs/semantics.md#preparing-an-execution)."""
    return [parameter if arg == "{}" else arg for arg in args]


def new_execution_id() -> str:
    return f"styx-run-{uuid.uuid4()}"


def execution_description(workflow: Workflow, run_state: RunState) -> ExecutionDescription:
    config = workflow.configuration
    trigger_env = run_state.data.trigger_parameters.env if run_state.data.trigger_parameters else {}
    return ExecutionDescription(
        docker_image=config.docker_image,
        docker_args=substitute_parameter(list(config.docker_args or []), run_state.workflow_instance.parameter),
        docker_termination_logging=config.docker_termination_logging,
        service_account=config.service_account,
        commit_sha=config.commit_sha,
        env={**config.env, **trigger_env},
        running_timeout=config.running_timeout,
        retry_condition=config.retry_condition,
    )


def prepare_event(
    run_state: RunState,
    found: tuple[Workflow, WorkflowState] | None,
    limits: ValidationLimits,
) -> tuple[Event, str | None]:
    """The event PREPARE sends, and why when it halts (logged; Styx's messages)."""
    instance = run_state.workflow_instance
    if found is None:
        return Halt(), f"Missing {instance.workflow_id}, halting {instance}"
    workflow, state = found
    trigger = run_state.data.trigger
    if not state.enabled and trigger is not None and trigger.type is TriggerType.NATURAL:
        return Halt(), f"{instance.workflow_id} is disabled, halting {instance}"
    errors = workflow_errors(workflow, limits)
    if errors:
        return (
            Halt(),
            f"{instance.workflow_id} configuration is invalid, halting {instance}. Errors: [{', '.join(errors)}]",
        )
    if not workflow.configuration.has_execution_info():
        return Halt(), f"{instance.workflow_id} has no execution info, halting {instance}"
    return Submit(
        execution_description=execution_description(workflow, run_state), execution_id=new_execution_id()
    ), None
