"""`styx trigger|events|ls|halt|retry` against a running service that runs real containers.

Instances that must stay active use a workflow whose resource has concurrency 0: they wait in QUEUED until
halted, deterministically.
"""

from __future__ import annotations

import re
import select
import subprocess
import sys
from collections.abc import Iterator

import pytest

from styx_actors.cli.errors import ExitStatus
from styx_actors.cli.output import NO_ACTIVE_INSTANCES
from tests.cli.conftest import EXAMPLES, IMAGE, REQUEST_ID_SUFFIX, Styx, cli_environment
from tests.conftest import wait_for

pytestmark = pytest.mark.docker

BLOCKED = "blocked"  # component of the workflow whose instances stay QUEUED
EVENT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d +(\w+) *(.*)")


@pytest.fixture(scope="module")
def blocked_workflow(styx: Styx) -> Iterator[str]:
    styx.ok("resource", "create", "no-slots", "0")
    styx.ok(
        "workflow",
        "create",
        BLOCKED,
        stdin=f"id: stuck\nschedule: daily\ndocker_image: {IMAGE}\nresources: [no-slots]\n",
    )
    yield "stuck"


def test_trigger_runs_a_container_and_follow_ends_with_its_success(styx: Styx) -> None:
    styx.ok("workflow", "create", "run", "-f", str(EXAMPLES / "hello.yaml"))
    triggered = styx.ok("trigger", "run", "hello", "2024-01-01", "-e", "GREETING=hi", "-e", "EMPTY=")
    assert triggered.stdout == (
        "Triggered! Workflow instance run hello 2024-01-01.\n"
        "Follow it with `styx events run hello 2024-01-01 --follow`; `styx ls -c run` lists the active instances.\n"
    )

    followed = styx.ok("events", "run", "hello", "2024-01-01", "--follow", "--json").json_lines()
    names = [event["name"] for event in followed]
    assert names == ["triggerExecution", "dequeue", "submit", "submitted", "started", "terminate", "success"]
    assert 'Parameters: {"env":{"EMPTY":"","GREETING":"hi"}}' in followed[0]["info"]
    assert followed[0]["info"].startswith("Trigger id: ad-hoc-cli-")
    assert followed[5]["info"] == "Exit code: 0"
    # The execution as a person reads it: image and arguments as a shell takes them, no Python repr.
    assert followed[2]["info"].startswith(f"Execution description: {IMAGE} echo hello 2024-01-01 (env ")
    assert "ExecutionDescription" not in followed[2]["info"] and "=[" not in followed[2]["info"]

    listed = styx.ok("e", "run", "hello", "2024-01-01", "--json").json()
    assert listed == followed
    pretty = styx.ok("events", "run", "hello", "2024-01-01").stdout.splitlines()
    assert pretty[0].split() == ["TIME", "EVENT", "DATA"]
    parsed = [EVENT_LINE.fullmatch(line.rstrip()) for line in pretty[1:]]
    assert [match.group(1) for match in parsed if match] == names
    plain = styx.ok("events", "run", "hello", "2024-01-01", "-p", "--follow").stdout.splitlines()
    assert [line.split(" ")[1] for line in plain] == names  # a finished instance: follow prints and ends

    # Ad-hoc triggers work on disabled workflows, and the parameter is free to be re-run once finished.
    assert (
        styx.ok("t", "run", "hello", "2024-01-02", "--json")
        .json()
        .startswith("Triggered! Workflow instance run hello 2024-01-02.\n")
    )
    plain_follow = styx.ok("--plain", "e", "run", "hello", "2024-01-02", "--follow").stdout.splitlines()
    assert plain_follow[-1].split(" ")[1] == "success"


def test_trigger_says_which_instance_a_finer_time_triggers(styx: Styx, blocked_workflow: str) -> None:
    triggered = styx.ok("trigger", BLOCKED, blocked_workflow, "2024-05-01T05")
    assert triggered.stdout.splitlines() == [
        f"Triggered! Workflow instance {BLOCKED} {blocked_workflow} 2024-05-01 "
        "(2024-05-01T05 floored to the workflow's schedule, days).",
        f"Follow it with `styx events {BLOCKED} {blocked_workflow} 2024-05-01 --follow`; "
        f"`styx ls -c {BLOCKED}` lists the active instances.",
    ]
    active = styx.ok("ls", "-c", BLOCKED, "--json").json()[f"{BLOCKED}#{blocked_workflow}"]
    assert [state["workflow_instance"]["parameter"] for state in active] == ["2024-05-01"]  # what the CLI said
    styx.ok("halt", BLOCKED, blocked_workflow, "2024-05-01")


def test_a_parameter_that_is_no_time_is_refused_with_the_forms_the_schedule_takes(
    styx: Styx, blocked_workflow: str
) -> None:
    refused = styx("trigger", BLOCKED, blocked_workflow, "yesterday")
    assert refused.code == ExitStatus.ARGUMENT_ERROR and refused.stdout == ""
    assert re.fullmatch(
        rf"Cannot read the parameter 'yesterday' as a time\. Workflow {BLOCKED}#{blocked_workflow} \(schedule days\) "
        r"takes partitions like \d{4}-\d\d-\d\d; any time yyyy-MM-dd\[THH\[:mm\[:ss\]\]\] in UTC .* is floored to its "
        r"schedule\.",
        refused.stderr.strip(),
    )
    assert "could not be parsed" not in refused.stderr
    assert styx.ok("ls", "-c", BLOCKED, "--json").json() == {}  # nothing was triggered
    # A workflow that does not exist is the service's to refuse, as before.
    missing = styx("trigger", BLOCKED, "no-such-workflow", "yesterday")
    assert missing.code == ExitStatus.API_ERROR and "workflow is not found" in missing.stderr


def test_an_empty_ls_says_so(styx: Styx) -> None:
    assert styx.ok("ls", "-c", "nothing-runs-here").stdout == f"{NO_ACTIVE_INSTANCES}\n"
    assert styx.ok("ls", "-c", "nothing-runs-here", "-p").stdout == ""  # plain output stays empty for scripts
    assert styx.ok("ls", "-c", "nothing-runs-here", "--json").json() == {}


def test_trigger_refusals_are_api_errors(styx: Styx, blocked_workflow: str) -> None:
    future = styx("trigger", BLOCKED, blocked_workflow, "2099-01-01")
    assert future.code == ExitStatus.API_ERROR
    assert re.fullmatch(
        rf"API error: 400 Cannot trigger an instance of the future {REQUEST_ID_SUFFIX}", future.stderr.strip()
    )
    assert styx.ok("trigger", BLOCKED, blocked_workflow, "2099-01-01", "--allow-future").stdout.startswith("Triggered!")
    again = styx("t", BLOCKED, blocked_workflow, "2099-01-01", "--allow-future")
    assert again.code == ExitStatus.API_ERROR and "already triggered" in again.stderr
    styx.ok("halt", BLOCKED, blocked_workflow, "2099-01-01")


def test_ls_retry_and_halt_of_active_instances(styx: Styx, blocked_workflow: str) -> None:
    for parameter in ("2024-03-02", "2024-03-01"):
        styx.ok("trigger", BLOCKED, blocked_workflow, parameter)

    grouped = styx.ok("ls", "-c", BLOCKED, "--json").json()
    assert list(grouped) == [f"{BLOCKED}#{blocked_workflow}"]
    states = grouped[f"{BLOCKED}#{blocked_workflow}"]
    assert [(s["workflow_instance"]["parameter"], s["state"]) for s in states] == [
        ("2024-03-01", "QUEUED"),
        ("2024-03-02", "QUEUED"),
    ]

    plain = styx.ok("list", "-c", BLOCKED, "-p").stdout.splitlines()
    assert [line.split(" ")[:6] for line in plain] == [
        [BLOCKED, blocked_workflow, "2024-03-01", "QUEUED", "<no-execution-id>", "0"],
        [BLOCKED, blocked_workflow, "2024-03-02", "QUEUED", "<no-execution-id>", "0"],
    ]
    pretty = styx.ok("ls", "-c", BLOCKED).stdout.splitlines()
    assert pretty[0].split() == [
        "WORKFLOW",
        "INSTANCE",
        "STATE",
        "EXECUTION",
        "ID",
        "TRIES",
        "PREVIOUS",
        "EXECUTION",
        "MESSAGE",
    ]
    assert pretty[2].split() == [BLOCKED, blocked_workflow]
    assert pretty[3].split()[:4] == ["2024-03-01", "QUEUED", "<no-execution-id>", "0"]
    coloured = styx("ls", "-c", BLOCKED, env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[90mQUEUED\x1b[0m" in coloured  # grey, as Styx shows waiting states

    assert styx.ok("retry", BLOCKED, blocked_workflow, "2024-03-01").stdout == (
        f"Retrying! Use `styx ls -c {BLOCKED}` to check active workflow instances.\n"
    )
    assert styx.ok("r", BLOCKED, blocked_workflow, "2024-03-02", "--json").json().startswith("Retrying!")
    events = styx.ok("events", BLOCKED, blocked_workflow, "2024-03-01", "--json").json()
    assert "retryAfter" in [event["name"] for event in events]

    assert styx.ok("halt", BLOCKED, blocked_workflow, "2024-03-01").stdout == (
        f"Halted! Use `styx events {BLOCKED} {blocked_workflow} 2024-03-01` to verify.\n"
    )
    assert styx.ok("h", BLOCKED, blocked_workflow, "2024-03-02", "-p").stdout.startswith("Halted!")
    assert styx.ok("ls", "-c", BLOCKED, "--json").json() == {}
    assert styx.ok("e", BLOCKED, blocked_workflow, "2024-03-01", "--json").json()[-1]["name"] == "halt"


def test_follow_ends_when_the_instance_is_halted_meanwhile(styx: Styx, blocked_workflow: str) -> None:
    styx.ok("trigger", BLOCKED, blocked_workflow, "2024-04-01")
    follower = subprocess.Popen(
        [sys.executable, "-m", "styx_server.cli", "events", BLOCKED, blocked_workflow, "2024-04-01", "--follow", "-p"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(styx.home, {"STYX_CLI_HOST": styx.host}),
    )
    try:
        assert follower.stdout is not None
        # The follower shows what exists while it waits (nothing is left in its buffers).
        assert select.select([follower.stdout], [], [], 30)[0], "the follower printed nothing"
        first = follower.stdout.readline()
        assert first.split(" ")[1] == "triggerExecution"
        assert follower.poll() is None
        styx.ok("halt", BLOCKED, blocked_workflow, "2024-04-01")
        rest, _ = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0
    assert rest.splitlines()[-1].split(" ")[1] == "halt"
    wait_for(lambda: styx.ok("ls", "-c", BLOCKED, "--json").json() == {}, message="no active instances")
