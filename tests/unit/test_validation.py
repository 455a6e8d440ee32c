"""Workflow validation: Styx's messages, their order, and the boundaries of every limit
(docs/semantics.md#workflow-validation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx_actors.model import DeploymentSource, Workflow, WorkflowConfiguration
from styx_actors.retry_condition import RetryConditionSyntaxError, parse_retry_condition
from styx_actors.validation import (
    ValidationLimits,
    format_errors_bracketed,
    format_errors_plain,
    workflow_errors,
)

MAX_RUNNING = timedelta(hours=48)


def workflow(component_id: str = "component", workflow_id: str | None = None, **config: Any) -> Workflow:
    defaults = {"id": "workflow", "schedule": "@daily", "docker_image": "busybox"}
    configuration = WorkflowConfiguration(**{**defaults, **config})
    return Workflow(
        component_id=component_id,
        workflow_id=configuration.id if workflow_id is None else workflow_id,
        configuration=configuration,
    )


def errors(max_running_timeout: timedelta | None = None, **kwargs: Any) -> list[str]:
    return workflow_errors(workflow(**kwargs), ValidationLimits(max_running_timeout))


def syntax_message(condition: str) -> str:
    with pytest.raises(RetryConditionSyntaxError) as raised:
        parse_retry_condition(condition)
    return str(raised.value)


def test_a_complete_valid_workflow_has_no_errors() -> None:
    valid = workflow(
        offset="P1DT2H",
        commit_sha="a" * 40,
        docker_args=["--date", "{}"],
        docker_termination_logging=True,
        service_account="runner@project.iam.gserviceaccount.com",
        resources=["r1", "r2"],
        env={"KEY": "value"},
        running_timeout="PT2H",
        retry_condition="(#tries < 2 && #triggerType == 'backfill') || (#triggerType != 'backfill')",
        deployment_source={"repository": "https://github.com/org/repo", "source": "ci"},
    )
    assert workflow_errors(valid, ValidationLimits(MAX_RUNNING)) == []


def test_a_workflow_without_docker_image_is_valid() -> None:
    assert errors(docker_image=None) == []


# -----------------------------------------------------------------------------------------------------------
# Identity


def test_component_id() -> None:
    assert errors(component_id="") == ["component id cannot be empty"]
    assert errors(component_id="a#b") == ["component id cannot contain #"]
    assert errors(component_id="a/b c") == []  # nothing else is checked


def test_workflow_id() -> None:
    assert errors(workflow_id="", id="") == ["workflow id cannot be empty"]
    assert errors(workflow_id="other") == ["workflow id mismatch"]
    assert errors(workflow_id="", id="workflow") == ["workflow id cannot be empty", "workflow id mismatch"]
    assert errors(id="has#hash and Spaces") == []  # no regex on workflow ids


# -----------------------------------------------------------------------------------------------------------
# Limits (boundary values)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("id", "id too long"),
        ("commit_sha", "commitSha too long"),
        ("retry_condition", "retry condition too long"),
    ],
)
def test_256_character_fields(field: str, message: str) -> None:
    fill = "true" + " " * 252 if field == "retry_condition" else "x" * 256
    assert errors(**{field: fill}) == []
    assert errors(**{field: fill + " "}) == [f"{message}: 257, limit = 256"]


def test_service_account_length() -> None:
    at_limit = "a" * (256 - len("@example.com")) + "@example.com"
    assert errors(service_account=at_limit) == []
    assert errors(service_account="a" + at_limit) == ["service account too long: 257, limit = 256"]


def test_resources() -> None:
    assert errors(resources=[f"r{i}" for i in range(5)]) == []
    assert errors(resources=[f"r{i}" for i in range(6)]) == ["too many resources: 6, limit = 5"]
    assert errors(resources=["r" * 256]) == []
    assert errors(resources=["a", "r" * 257, "s" * 300]) == [
        "resource name too long: 257, limit = 256",
        "resource name too long: 300, limit = 256",
    ]


def test_env_var_count() -> None:
    assert errors(env={f"K{i}": "v" for i in range(128)}) == []
    assert errors(env={f"K{i}": "v" for i in range(129)}) == ["too many env vars: 129, limit = 128"]


def test_env_size_counts_keys_and_values() -> None:
    assert errors(env={"K": "v" * 16383}) == []
    assert errors(env={"K": "v" * 16384}) == ["env too big: 16385, limit = 16384"]
    assert errors(env={"A" * 8000: "b" * 192, "C": "d" * 8191}) == []
    assert errors(env={"A" * 8000: "b" * 193, "C": "d" * 8191}) == ["env too big: 16385, limit = 16384"]


def test_lengths_count_utf16_code_units_like_java() -> None:
    assert errors(id="😀" * 128) == []
    assert errors(id="😀" * 128 + "x") == ["id too long: 257, limit = 256"]
    assert errors(env={"K": "é" * 16383}) == []  # inside the BMP: one unit each


def test_docker_args_size_counts_args_and_characters() -> None:
    assert errors(docker_args=["x" * 999_999]) == []  # 1 arg + 999,999 characters
    assert errors(docker_args=["x" * 1_000_000]) == ["docker args is too large: 1000001, limit = 1000000"]
    assert errors(docker_args=[""] * 1_000_001) == ["docker args is too large: 1000001, limit = 1000000"]
    assert errors(docker_args=[]) == []
    assert errors(docker_args=None) == []


# -----------------------------------------------------------------------------------------------------------
# Formats


def test_offset() -> None:
    assert errors(offset="P1DT2H") == []
    assert errors(offset="-PT1H") == []
    assert errors(offset="P1D2H") == ["invalid offset: Unable to parse offset period"]
    assert errors(offset="tomorrow") == ["invalid offset: Unable to parse offset period"]


@pytest.mark.parametrize(
    "schedule",
    [
        "@daily",
        "daily",
        "DAYS",
        "hourly",
        "@weekly",
        "monthly",
        "yearly",
        "annually",
        "0 0 * * MON",
        "*/5 * * * *",
        "0 3 1-7 * 1",
    ],
)
def test_valid_schedules(schedule: str) -> None:
    assert errors(schedule=schedule) == []


@pytest.mark.parametrize("schedule", ["", "never", "@every 1h", "0 0 * * * *", "* * * *", "61 * * * *"])
def test_invalid_schedules(schedule: str) -> None:
    assert errors(schedule=schedule) == ["invalid schedule"]


def test_running_timeout_minimum() -> None:
    assert errors(running_timeout=timedelta(minutes=1)) == []
    assert errors(running_timeout=timedelta(seconds=59)) == ["running timeout is too small: PT59S, limit = PT1M"]
    assert errors(running_timeout=timedelta(0)) == ["running timeout is too small: PT0S, limit = PT1M"]


def test_running_timeout_maximum_only_when_given() -> None:
    assert errors(MAX_RUNNING, running_timeout=timedelta(hours=48)) == []
    too_big = ["running timeout is too big: PT49H, limit = PT48H"]
    assert errors(MAX_RUNNING, running_timeout=timedelta(hours=49)) == too_big
    assert errors(running_timeout=timedelta(hours=49)) == []  # the CLI validates without the extended check
    assert errors(MAX_RUNNING, running_timeout=None) == []


@pytest.mark.parametrize(
    "account",
    [
        "runner@project.iam.gserviceaccount.com",
        "RUNNER@PROJECT.COM",
        "first+tag.last@sub-domain.example.org",
        "under_score@x.io",
    ],
)
def test_valid_service_accounts(account: str) -> None:
    assert errors(service_account=account) == []


@pytest.mark.parametrize(
    "account",
    [
        "runner",
        "runner@",
        "@example.com",
        "runner@example",
        "runner@example.c",
        "runner@example.com\n",  # `$` would accept the trailing newline; Styx's matches() does not
        "runner@example.com ",
        " runner@example.com",
        "run ner@example.com",
        "runner@example..com",
        "runner@exampl\u212a.com",  # the Kelvin sign only matches [a-z] under Unicode case folding
        "first.last+tag@example.org",  # Styx's regex allows `+` only before the first dot
    ],
)
def test_invalid_service_accounts(account: str) -> None:
    assert errors(service_account=account) == [f"service account is not a valid email address: {account}"]


def test_retry_condition_syntax() -> None:
    assert errors(retry_condition="#exitCode == 1 or #tries lt 3") == []
    assert errors(retry_condition="#tries <") == [
        "invalid retry condition: expected a value but found the end of the expression at position 8"
    ]
    assert errors(retry_condition="21 * 2") == []  # parses; it only fails to be true when evaluated


def test_docker_image_gives_one_error_per_reason() -> None:
    assert errors(docker_image="UP:.bad") == [
        'invalid image: Illegal tag: ".bad", must match [\\w][\\w.-]{0,127}',
        "invalid image: Invalid image name (UP:.bad), only ^([a-z0-9._-]+)$ is allowed for each slash-separated "
        'name component (failed on "UP")',
    ]
    assert errors(docker_image="foo:") == ["invalid image: Tag cannot be empty"]


# -----------------------------------------------------------------------------------------------------------
# Rules beyond Styx


def test_extra_length_limits_come_after_styx_messages() -> None:
    long_image = "gcr.io/p/img@sha256:" + "a" * 1100
    assert errors(docker_image=long_image) == [
        f'invalid image: Illegal digest: "sha256:{"a" * 1100}"',
        f"docker image too long: {len(long_image)}, limit = 1024",
    ]
    valid_long_digest = "foo@sha512:" + "a" * 1013
    assert len(valid_long_digest) == 1024
    assert errors(docker_image=valid_long_digest) == []
    assert errors(docker_image=valid_long_digest + "a") == ["docker image too long: 1025, limit = 1024"]


def test_extra_schedule_and_deployment_source_limits() -> None:
    long_cron = "0 0 * * " + ",".join(["1"] * 600)
    assert errors(schedule=long_cron) == [f"schedule too long: {len(long_cron)}, limit = 1024"]  # a valid cron
    source = DeploymentSource(repository="r" * 1025, source="s" * 1024)
    assert errors(deployment_source=source) == ["deployment source repository too long: 1025, limit = 1024"]
    assert errors(deployment_source={"source": "s" * 1025}) == ["deployment source too long: 1025, limit = 1024"]


# -----------------------------------------------------------------------------------------------------------
# Accumulation order


def test_every_problem_is_listed_in_styx_order() -> None:
    broken = workflow(
        component_id="",
        workflow_id="other",
        id="i" * 257,
        commit_sha="c" * 257,
        service_account="s" * 257,
        resources=["r1", "r2", "r3", "r4", "r5", "r" * 257],
        env={f"K{i:03}": "v" * 130 for i in range(129)},
        retry_condition="(" * 257,
        offset="P1D2H",
        schedule="bogus",
        running_timeout=timedelta(seconds=30),
        docker_args=["x" * 1_000_000],
        docker_image="UPPER",
    )
    assert workflow_errors(broken, ValidationLimits(MAX_RUNNING)) == [
        "component id cannot be empty",
        "workflow id mismatch",
        "id too long: 257, limit = 256",
        "commitSha too long: 257, limit = 256",
        "service account too long: 257, limit = 256",
        "too many resources: 6, limit = 5",
        "too many env vars: 129, limit = 128",
        "env too big: 17286, limit = 16384",
        "retry condition too long: 257, limit = 256",
        "resource name too long: 257, limit = 256",
        "invalid offset: Unable to parse offset period",
        "invalid schedule",
        "running timeout is too small: PT30S, limit = PT1M",
        f"service account is not a valid email address: {'s' * 257}",
        f"invalid retry condition: {syntax_message('(' * 257)}",
        "docker args is too large: 1000001, limit = 1000000",
        "invalid image: Invalid image name (UPPER), only ^([a-z0-9._-]+)$ is allowed for each slash-separated "
        'name component (failed on "UPPER")',
    ]


def test_extended_check_comes_after_the_image() -> None:
    assert errors(MAX_RUNNING, running_timeout=timedelta(hours=49), docker_image="foo:") == [
        "invalid image: Tag cannot be empty",
        "running timeout is too big: PT49H, limit = PT48H",
    ]


# -----------------------------------------------------------------------------------------------------------
# Formatting and raising


def test_formats() -> None:
    assert format_errors_bracketed(["a", "b"]) == "Invalid workflow configuration: [a, b]"
    assert format_errors_plain(["a", "b"]) == "Invalid workflow configuration: a, b"
    assert format_errors_bracketed(["only"]) == "Invalid workflow configuration: [only]"
    assert format_errors_plain(["only"]) == "Invalid workflow configuration: only"


_TEXT = st.one_of(st.none(), st.text(max_size=40))


@settings(max_examples=200, deadline=None)
@given(
    component_id=st.text(max_size=10),
    offset=_TEXT,
    schedule=st.text(max_size=30),
    service_account=_TEXT,
    retry_condition=_TEXT,
    docker_image=_TEXT,
    resources=st.lists(st.text(max_size=5), max_size=7),
)
def test_any_text_gives_messages_never_an_exception(
    component_id: str,
    offset: str | None,
    schedule: str,
    service_account: str | None,
    retry_condition: str | None,
    docker_image: str | None,
    resources: list[str],
) -> None:
    found = errors(
        MAX_RUNNING,
        component_id=component_id,
        offset=offset,
        schedule=schedule,
        service_account=service_account,
        retry_condition=retry_condition,
        docker_image=docker_image,
        resources=resources,
    )
    assert all(isinstance(message, str) and message for message in found)
