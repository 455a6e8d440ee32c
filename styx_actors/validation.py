"""Workflow validation with Styx's messages, in Styx's order (docs/semantics.md#workflow-validation).

`workflow_errors` runs every check of docs/semantics.md#workflow-validation; Styx's Flyte checks are left
out (Flyte is out of scope and the model has no Flyte configuration). The last check, `running timeout is
too big`, the extended check used by the API and the scheduler, runs only when a maximum running timeout
is given; the CLI validates without it.

Lengths are counted as Java counts them (UTF-16 code units), so limits and the numbers in messages match
Styx also for text outside the Basic Multilingual Plane.

Rules beyond Styx (they only add messages after Styx's, never change or reorder them):
- The component id is capped at MAX_ID_LENGTH characters, as the workflow id is: `component id too long`.
- Fields Styx leaves unbounded are capped at EXTRA_FIELD_LENGTH_LIMIT characters, because each is stored
  and echoed back: `docker image too long`, `schedule too long`, `deployment source repository too long`
  and `deployment source too long`, with Styx's `<msg>: <value>, limit = <limit>` form. A real image
  reference (≤ 255-character repository, ≤ 128-character tag, a digest, a ≤ 253-character host) and any
  sensible cron expression fit well within the cap.
- The image's registry must be one of STYX_ALLOWED_REGISTRIES when that list is set
  (`docker image registry not allowed: <registry>, allowed = [<registries>]`).
- Env keys and values and docker args are strings by construction (the model converts scalars and refuses
  anything else), so no check is needed here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from styx_actors.docker_image import disallowed_registry, image_errors
from styx_actors.model import DeploymentSource, Workflow
from styx_actors.retry_condition import RetryConditionSyntaxError, parse_retry_condition
from styx_actors.schedule import Offset, Schedule
from styx_actors.settings import Settings
from styx_actors.timeouts import TimeoutConfig
from styx_actors.timeutil import format_duration

MAX_ID_LENGTH = 256
MAX_COMMIT_SHA_LENGTH = 256
MAX_SERVICE_ACCOUNT_LENGTH = 256
MAX_RESOURCES = 5
MAX_ENV_VARS = 128
MAX_ENV_SIZE = 16 * 1024
MAX_RETRY_CONDITION_LENGTH = 256
MAX_RESOURCE_LENGTH = 256
MAX_DOCKER_ARGS_TOTAL = 1_000_000
MIN_RUNNING_TIMEOUT = timedelta(minutes=1)
EXTRA_FIELD_LENGTH_LIMIT = 1024

# Styx's regex, matched against the whole text: `$` would also accept a trailing newline. ASCII keeps
# case-insensitive [a-z] from matching the Kelvin sign and the long s, as Java's default does.
_SERVICE_ACCOUNT_EMAIL = re.compile(
    r"[_A-Za-z0-9+-]+(\.[_A-Za-z0-9-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9]+)*(\.[A-Za-z]{2,})",
    re.IGNORECASE | re.ASCII,
)

ERROR_PREFIX = "Invalid workflow configuration: "


DOCKER_IMAGE_REQUIRED = "docker image cannot be empty"


@dataclass(frozen=True)
class ValidationLimits:
    """What workflow validation takes from the settings: the largest running_timeout a workflow may ask for
    (None: any), and the registries its image may come from (STYX_ALLOWED_REGISTRIES, normalized; empty: any)."""

    max_running_timeout: timedelta | None = None
    allowed_registries: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ValidationLimits:
        return cls(
            TimeoutConfig.from_settings(settings).max_running_timeout_for_validation(),
            tuple(settings.allowed_registries),
        )


NO_LIMITS = ValidationLimits()


def deployment_errors(workflow: Workflow, limits: ValidationLimits = NO_LIMITS) -> list[str]:
    """What stops `workflow` from being deployed: Styx's checks, plus a docker image, which the v3 contract
    requires of every deployed workflow although Styx would store one that cannot run
    (docs/api.md#decisions-where-the-contract-and-styx-differ)."""
    errors = workflow_errors(workflow, limits)
    if workflow.configuration.docker_image is None:
        errors.append(DOCKER_IMAGE_REQUIRED)
    return errors


def workflow_errors(workflow: Workflow, limits: ValidationLimits = NO_LIMITS) -> list[str]:
    """Every problem with `workflow`, in Styx's order (docs/semantics.md#workflow-validation), within the
    settings' `limits`; empty when it is valid."""
    cfg = workflow.configuration
    errors: list[str] = []

    if not workflow.component_id:
        errors.append("component id cannot be empty")
    elif "#" in workflow.component_id:
        errors.append("component id cannot contain #")
    if not workflow.workflow_id:
        errors.append("workflow id cannot be empty")
    if workflow.workflow_id != cfg.id:
        errors.append("workflow id mismatch")

    _upper_limit(errors, _java_length(cfg.id), MAX_ID_LENGTH, "id too long")
    _upper_limit(errors, _java_length(cfg.commit_sha), MAX_COMMIT_SHA_LENGTH, "commitSha too long")
    _upper_limit(errors, _java_length(cfg.service_account), MAX_SERVICE_ACCOUNT_LENGTH, "service account too long")
    _upper_limit(errors, len(cfg.resources), MAX_RESOURCES, "too many resources")
    errors.extend(env_errors(cfg.env))
    _upper_limit(errors, _java_length(cfg.retry_condition), MAX_RETRY_CONDITION_LENGTH, "retry condition too long")
    for resource in cfg.resources:
        _upper_limit(errors, _java_length(resource), MAX_RESOURCE_LENGTH, "resource name too long")

    if cfg.offset is not None:
        try:
            Offset.parse(cfg.offset)
        except ValueError as exc:
            errors.append(f"invalid offset: {exc}")
    try:
        Schedule.parse(cfg.schedule)
    except ValueError:
        errors.append("invalid schedule")

    timeout = cfg.running_timeout
    if timeout is not None and timeout < MIN_RUNNING_TIMEOUT:
        errors.append(_limit_message("running timeout is too small", timeout, MIN_RUNNING_TIMEOUT))
    if cfg.service_account is not None and not _SERVICE_ACCOUNT_EMAIL.fullmatch(cfg.service_account):
        errors.append(f"service account is not a valid email address: {cfg.service_account}")
    if cfg.retry_condition is not None:
        try:
            parse_retry_condition(cfg.retry_condition)
        except RetryConditionSyntaxError as exc:
            errors.append(f"invalid retry condition: {exc}")

    if cfg.docker_args is not None:
        args_size = len(cfg.docker_args) + sum(_java_length(arg) for arg in cfg.docker_args)
        _upper_limit(errors, args_size, MAX_DOCKER_ARGS_TOTAL, "docker args is too large")
    if cfg.docker_image is not None:
        errors.extend(f"invalid image: {reason}" for reason in image_errors(cfg.docker_image))

    maximum = limits.max_running_timeout
    if maximum is not None and timeout is not None and timeout > maximum:
        errors.append(_limit_message("running timeout is too big", timeout, maximum))

    return errors + _errors_beyond_styx(workflow) + _registry_errors(cfg.docker_image, limits.allowed_registries)


def _errors_beyond_styx(workflow: Workflow) -> list[str]:
    """Caps on fields Styx leaves unbounded (see the module docstring)."""
    cfg = workflow.configuration
    errors: list[str] = []
    _upper_limit(errors, _java_length(workflow.component_id), MAX_ID_LENGTH, "component id too long")
    source = cfg.deployment_source or DeploymentSource()
    for text, message in (
        (cfg.docker_image, "docker image too long"),
        (cfg.schedule, "schedule too long"),
        (source.repository, "deployment source repository too long"),
        (source.source, "deployment source too long"),
    ):
        _upper_limit(errors, _java_length(text), EXTRA_FIELD_LENGTH_LIMIT, message)
    return errors


def _registry_errors(image: str | None, allowed_registries: Collection[str]) -> list[str]:
    """The engine pulls images as root from wherever they name: only the allowed registries may be named."""
    registry = disallowed_registry(image, allowed_registries) if image is not None else None
    if registry is None:
        return []
    return [f"docker image registry not allowed: {registry}, allowed = [{', '.join(allowed_registries)}]"]


def env_errors(env: Mapping[str, str]) -> list[str]:
    """Styx's limits on a workflow's env (docs/semantics.md#workflow-validation), which also bound the env
    of trigger parameters."""
    errors: list[str] = []
    _upper_limit(errors, len(env), MAX_ENV_VARS, "too many env vars")
    env_size = sum(_java_length(key) + _java_length(value) for key, value in env.items())
    _upper_limit(errors, env_size, MAX_ENV_SIZE, "env too big")
    return errors


def format_errors_bracketed(errors: Iterable[str]) -> str:
    """The workflow POST form: `Invalid workflow configuration: [e1, e2]`."""
    return f"{ERROR_PREFIX}[{', '.join(errors)}]"


def format_errors_plain(errors: Iterable[str]) -> str:
    """The trigger and backfill form: `Invalid workflow configuration: e1, e2`."""
    return ERROR_PREFIX + ", ".join(errors)


def _java_length(text: str | None) -> int:
    """Java's String.length(): UTF-16 code units (a character outside the BMP counts twice); 0 for None."""
    if text is None:
        return 0
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _upper_limit(errors: list[str], value: int, limit: int, message: str) -> None:
    if value > limit:
        errors.append(f"{message}: {value}, limit = {limit}")


def _limit_message(message: str, value: timedelta, limit: timedelta) -> str:
    return f"{message}: {format_duration(value)}, limit = {format_duration(limit)}"
