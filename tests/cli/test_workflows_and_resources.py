"""`styx workflow ...` and `styx resource ...` against a running service, in the three output modes."""

from __future__ import annotations

import re

import pytest

from styx_actors.cli.errors import ExitStatus
from tests.cli.conftest import EXAMPLES, IMAGE, REQUEST_ID_SUFFIX, Styx

pytestmark = pytest.mark.docker


def test_resource_commands_and_aliases(styx: Styx) -> None:
    created = styx.ok("resource", "create", "slots", "2").stdout.splitlines()
    assert created[0].split() == ["RESOURCE", "CONCURRENCY"]
    assert created[-1].split() == ["slots", "2"]
    assert styx.ok("resource", "edit", "slots", "--concurrency", "3", "--plain").stdout == "slots 3\n"
    assert styx.ok("resource", "e", "slots", "--concurrency", "4", "--json").json() == [
        {"id": "slots", "concurrency": 4}
    ]
    assert styx.ok("resource", "show", "slots", "--json").json() == [{"id": "slots", "concurrency": 4}]
    assert styx.ok("-p", "resource", "get", "slots").stdout == "slots 4\n"
    assert {"id": "slots", "concurrency": 4} in styx.ok("resource", "list", "--json").json()
    assert "slots 4" in styx.ok("resource", "ls", "-p").stdout.splitlines()

    unchanged = styx.ok("resource", "edit", "slots")
    assert "Nothing to edit" in unchanged.stderr and unchanged.stdout == ""
    assert styx.ok("resource", "show", "slots", "-p").stdout == "slots 4\n"


def test_api_errors_exit_with_status_4_and_the_request_id(styx: Styx) -> None:
    result = styx("resource", "show", "no-such-resource")
    assert result.code == ExitStatus.API_ERROR
    assert re.fullmatch(rf"API error: 404 Resource not found {REQUEST_ID_SUFFIX}", result.stderr.strip())
    result = styx("workflow", "show", "nowhere", "nothing", "--json")
    assert result.code == ExitStatus.API_ERROR
    assert re.fullmatch(rf"API error: 404 Workflow does not exist {REQUEST_ID_SUFFIX}", result.stderr.strip())
    assert result.stdout == ""


def test_create_show_enable_disable(styx: Styx) -> None:
    assert styx.ok("workflow", "create", "life", "-f", str(EXAMPLES / "hello.yaml")).stdout == (
        "Workflow hello in component life created.\n"
    )

    shown = styx.ok("workflow", "show", "life", "hello").stdout.splitlines()
    assert re.fullmatch(r"Component:\s+life", shown[0])
    assert re.fullmatch(r"Docker Image:\s+styx-test/busybox:latest", shown[4])
    assert re.fullmatch(r'Docker Arguments:\s+\["echo", "hello", "\{\}"\]', shown[5])
    assert re.fullmatch(r"Enabled:\s+false", shown[13])
    assert re.fullmatch(r"Next Trigger:\s+\d{4}-\d\d-\d\dT00:00:00Z", shown[14])
    labels = [line.split(":")[0] for line in shown]
    assert labels == [
        "Component",
        "Workflow",
        "Schedule",
        "Offset",
        "Docker Image",
        "Docker Arguments",
        "Termination Logging",
        "Service Account",
        "Resources",
        "Environment",
        "Timeout",
        "Commit",
        "Retry Condition",
        "Enabled",
        "Next Trigger",
        "Next Trigger (offset)",
    ]

    assert styx.ok("workflow", "enable", "life", "hello").stdout == "Workflow hello in component life enabled.\n"
    full = styx.ok("workflow", "get", "life", "hello", "--json").json()
    assert full["workflow"]["configuration"]["docker_args"] == ["echo", "hello", "{}"]
    assert full["state"]["enabled"] == "true"
    assert styx.ok("workflow", "disable", "life", "hello", "ghost", "--json").json_lines() == [
        "Workflow hello in component life disabled.",
        "Workflow ghost in component life not found.",
    ]
    plain = styx.ok("workflow", "show", "life", "hello", "-p").stdout.split()
    assert plain[:6] == ["life", "hello", "days", "N/A", IMAGE, '["echo",']
    assert "false" in plain


def test_multi_document_create_from_stdin_and_list(styx: Styx) -> None:
    text = (EXAMPLES / "pipeline.yaml").read_text()
    assert styx.ok("workflow", "create", "multi", "--json", stdin=text).json_lines() == [
        f"Workflow {workflow} in component multi created." for workflow in ("ingest", "aggregate", "weekly-cleanup")
    ]
    listed = styx.ok("workflow", "list", "--json").json()
    assert {(w["component_id"], w["workflow_id"]) for w in listed} >= {
        ("multi", "ingest"),
        ("multi", "aggregate"),
        ("multi", "weekly-cleanup"),
    }
    plain = styx.ok("workflow", "ls", "--plain").stdout.splitlines()
    assert ["multi aggregate", "multi ingest", "multi weekly-cleanup"] == [
        line for line in plain if line.startswith("multi ")
    ]
    pretty = styx.ok("workflow", "ls").stdout.splitlines()
    assert pretty[0].split() == ["COMPONENT", "WORKFLOW"]
    assert ["multi", "weekly-cleanup"] in [line.split() for line in pretty]
    shown = styx.ok("workflow", "show", "multi", "weekly-cleanup", "--json").json()
    assert shown["workflow"]["configuration"]["schedule"] == "0 3 * * sun"


def test_create_warns_about_unknown_keys_and_missing_resources_and_creates_anyway(styx: Styx) -> None:
    styx.ok("resource", "create", "present", "1")
    workflows = (
        f"id: typo\nschedule: daily\ndocker_image: {IMAGE}\ndocker_arg: [echo, hi]\n"
        "resources: [present, absent-a, absent-b]\n---\n"
        f"id: clean\nschedule: daily\ndocker_image: {IMAGE}\nresources: [present]\n"
    )
    created = styx("workflow", "create", "warned", "--json", stdin=workflows)
    assert created.code == 0, created.stderr
    assert created.stderr.splitlines() == [
        "Warning: workflow typo: unknown key 'docker_arg' is ignored (did you mean docker_args?)",
        "Warning: workflow typo uses resources that do not exist: absent-a, absent-b. Its instances fail "
        '("Referenced resources not found") and are retried until they exist: '
        "`styx resource create absent-a CONCURRENCY`.",
    ]
    assert created.json_lines() == [  # warnings never mix with the output
        "Workflow typo in component warned created.",
        "Workflow clean in component warned created.",
    ]
    # The service keeps Styx's behaviour: it accepts both, unknown keys dropped and resources as given.
    typo = styx.ok("workflow", "show", "warned", "typo", "--json").json()["workflow"]["configuration"]
    assert typo["resources"] == ["present", "absent-a", "absent-b"] and typo.get("docker_args") is None


def test_server_side_rejection_of_a_locally_valid_workflow(styx: Styx) -> None:
    # The maximum running timeout is the server's setting: the CLI validates without it
    # (docs/semantics.md#workflow-validation).
    workflow = f"id: slow\nschedule: daily\ndocker_image: {IMAGE}\nrunning_timeout: PT72H\n"
    result = styx("workflow", "create", "life", stdin=workflow)
    assert result.code == ExitStatus.API_ERROR
    assert result.stderr.startswith(
        "API error: 400 Invalid workflow configuration: "
        "[running timeout is too big: PT72H, limit = PT48H] (Request ID: "
    )


def test_an_imageless_workflow_is_refused_before_calling_the_api(styx: Styx) -> None:
    result = styx("workflow", "create", "life", stdin="id: imageless\nschedule: daily\n")
    assert result.code == ExitStatus.ARGUMENT_ERROR
    assert "error: docker image cannot be empty" in result.stderr


def _create(styx: Styx, component: str, *workflows: str) -> None:
    documents = "---\n".join(f"id: {workflow}\nschedule: daily\ndocker_image: {IMAGE}\n" for workflow in workflows)
    styx.ok("workflow", "create", component, stdin=documents)


def test_delete_asks_on_a_terminal_unless_forced(styx: Styx) -> None:
    _create(styx, "doomed", "a", "b", "c", "d")

    declined = styx.on_terminal("workflow", "delete", "doomed", "a", typed="n\n")
    assert declined.code == ExitStatus.UNKNOWN_ERROR
    assert "Sure you want to delete the workflow a in component doomed? [y/N] " in declined.stderr
    assert styx("workflow", "show", "doomed", "a").code == 0

    confirmed = styx.on_terminal("workflow", "delete", "doomed", "a", "b", typed="y\n")
    assert confirmed.code == 0, confirmed.stderr
    assert "Sure you want to delete the workflows a, b in component doomed? [y/N] " in confirmed.stderr
    assert confirmed.stdout.splitlines() == [
        "Workflow a in component doomed deleted.",
        "Workflow b in component doomed deleted.",
    ]
    assert styx("workflow", "show", "doomed", "a").code == ExitStatus.API_ERROR

    forced = styx.on_terminal("workflow", "delete", "doomed", "c", "--force", typed="")
    assert forced.code == 0 and "Sure" not in forced.stderr
    # Without a console there is nobody to ask (scripts, CI): it deletes.
    assert styx.ok("workflow", "delete", "doomed", "d", "zzz", "--json").json_lines() == [
        "Workflow d in component doomed deleted.",
        "Workflow zzz in component doomed not found.",
    ]
    assert not [w for w in styx.ok("workflow", "ls", "--json").json() if w["component_id"] == "doomed"]
