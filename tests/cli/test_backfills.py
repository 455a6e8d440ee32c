"""`styx backfill ...` against a running service that runs real containers, including `show --watch`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from styx_actors.cli.errors import ExitStatus
from tests.cli.conftest import EXAMPLES, IMAGE, REQUEST_ID_SUFFIX, Styx
from tests.conftest import wait_for

pytestmark = pytest.mark.docker

BLOCKED = "blocked"


@pytest.fixture(scope="module")
def hello(styx: Styx) -> Iterator[str]:
    styx.ok("workflow", "create", "bf", "-f", str(EXAMPLES / "hello.yaml"))
    yield "hello"


@pytest.fixture(scope="module")
def stuck(styx: Styx) -> Iterator[str]:
    """A workflow whose instances stay QUEUED (its resource allows none to run)."""
    styx.ok("resource", "create", "no-slots", "0")
    styx.ok(
        "workflow",
        "create",
        BLOCKED,
        stdin=f"id: stuck\nschedule: daily\ndocker_image: {IMAGE}\nresources: [no-slots]\n",
    )
    yield "stuck"


def test_create_and_watch_a_backfill_until_every_partition_is_done(styx: Styx, hello: str) -> None:
    created = styx.ok(
        "backfill",
        "create",
        "bf",
        hello,
        "2024-01-01",
        "2024-01-04",
        "2",
        "-d",
        "three quiet days",
        "-e",
        "GREETING=hi",
        "--json",
    ).json()
    assert created["id"].startswith("backfill-")
    assert (created["start"], created["end"], created["concurrency"], created["reverse"]) == (
        "2024-01-01T00:00:00Z",
        "2024-01-04T00:00:00Z",
        2,
        False,
    )
    assert created["description"] == "three quiet days"
    assert created["trigger_parameters"] == {"env": {"GREETING": "hi"}}

    watched = styx.ok("backfill", "show", created["id"], "--watch", "--plain").stdout.splitlines()
    progress = [line for line in watched if line.startswith(created["id"] + " done=")]
    assert progress[-1] == f"{created['id']} done=3 running=0 failed=0 waiting=0 total=3"
    assert len(progress) == len(set(progress))  # a line only when the counts change
    partitions = [line.split(" ") for line in watched if line.startswith("bf hello ")]
    assert [(p[2], p[3]) for p in partitions] == [
        ("2024-01-01", "DONE"),
        ("2024-01-02", "DONE"),
        ("2024-01-03", "DONE"),
    ]

    shown = styx.ok("backfill", "get", created["id"], "--json").json()
    assert shown["backfill"]["all_triggered"] is True
    assert [status["state"] for status in shown["statuses"]["active_states"]] == ["DONE", "DONE", "DONE"]
    events = styx.ok("events", "bf", hello, "2024-01-02", "--json").json()
    assert events[0]["info"] == f'Trigger id: {created["id"]}, Parameters: {{"env":{{"GREETING":"hi"}}}}'

    on_terminal = styx("backfill", "show", created["id"], "--watch", env={"FORCE_COLOR": "1"})  # every frame drawn
    assert on_terminal.code == 0 and "of 3" in on_terminal.stdout and "of None" not in on_terminal.stdout
    pretty = styx.ok("backfill", "show", created["id"], "--watch").stdout.splitlines()
    assert "3 done 0 running 0 failed 0 waiting of 3" in " ".join(pretty[0].split())
    header = pretty.index(next(line for line in pretty if line.startswith("BACKFILL ID")))
    assert re.split(r"\s{2,}", pretty[header].strip()) == [
        "BACKFILL ID",
        "HALTED",
        "ALL TRIGGERED",
        "CONCURRENCY",
        "START (INCL)",
        "END (EXCL)",
        "REVERSE",
        "NEXT TRIGGER",
        "COMPONENT",
        "WORKFLOW",
        "CREATED",
        "LAST MODIFIED",
        "DESCRIPTION",
        "TRIGGER ENV",
    ]
    row = re.split(r"\s{2,}", pretty[header + 2].strip())
    assert row[:10] == [
        created["id"],
        "false",
        "true",
        "2",
        "2024-01-01",
        "2024-01-04",
        "false",
        "2024-01-04",
        "bf",
        "hello",
    ]
    assert row[12:] == ["three quiet days", "GREETING=hi"]

    assert created["id"] not in styx.ok("backfill", "list", "-c", "bf", "--json").stdout  # finished: shown with -a only
    listed = styx.ok("backfill", "ls", "-c", "bf", "-w", hello, "-a", "--json").json()
    assert [payload["backfill"]["id"] for payload in listed] == [created["id"]]
    assert listed[0]["statuses"] is None


def test_edit_list_and_halt_a_running_backfill(styx: Styx, stuck: str) -> None:
    created = styx.ok(
        "backfill", "create", BLOCKED, stuck, "2024-02-01", "2024-02-10", "1", "--reverse", "-d", "x" * 30, "--json"
    ).json()
    backfill_id = created["id"]
    assert created["reverse"] is True and created["next_trigger"] == "2024-02-09T00:00:00Z"

    edited = styx.ok("backfill", "edit", backfill_id, "--concurrency", "2", "--json").json()
    assert edited["concurrency"] == 2
    assert styx.ok("backfill", "e", backfill_id, "--concurrency", "3", "-p").stdout.split(" ")[:4] == [
        backfill_id,
        "false",
        "false",
        "3",
    ]
    assert "Nothing to edit" in styx.ok("backfill", "edit", backfill_id).stderr

    listed = styx.ok("backfill", "ls", "-c", BLOCKED).stdout
    assert backfill_id in listed and "xxxxxxxxxxxxxxxxxxxx..." in listed  # descriptions are cut at 20 characters
    assert "x" * 30 in styx.ok("backfill", "list", "-w", stuck, "--no-trunc").stdout

    halted = styx.ok("backfill", "halt", backfill_id)
    assert halted.stdout == f"Backfill halted! Use `styx backfill show {backfill_id}` to check the backfill status.\n"
    # A halted backfill ends the watch at once, whatever its partitions.
    final = styx.ok("backfill", "show", backfill_id, "--watch", "--json").json()
    assert final["backfill"]["halted"] is True
    assert styx.ok("ls", "-c", BLOCKED, "--json").json() == {}  # not graceful: its instances were halted
    assert backfill_id not in styx.ok("backfill", "ls", "-c", BLOCKED, "--json").stdout
    assert backfill_id in styx.ok("backfill", "ls", "-c", BLOCKED, "--show-all", "--json").stdout


def test_graceful_halt_and_future_partitions(styx: Styx, stuck: str) -> None:
    future = styx("backfill", "create", BLOCKED, stuck, "2099-01-01", "2099-01-03", "1")
    assert future.code == ExitStatus.API_ERROR
    assert re.fullmatch(rf"API error: 400 Cannot backfill future partitions {REQUEST_ID_SUFFIX}", future.stderr.strip())

    backfill = styx.ok(
        "backfill", "create", BLOCKED, stuck, "2099-01-01T00", "2099-01-03", "1", "--allow-future", "--json"
    ).json()
    wait_for(lambda: _active_parameters(styx, stuck) == ["2099-01-01"], message="the first partition to be triggered")
    assert styx.ok("backfill", "h", backfill["id"], "--graceful").stdout.startswith("Backfill halted!")
    assert styx.ok("backfill", "get", backfill["id"], "--json").json()["backfill"]["halted"] is True
    assert _active_parameters(styx, stuck) == ["2099-01-01"]  # graceful: the triggered instance is left alone
    styx.ok("halt", BLOCKED, stuck, "2099-01-01")


def _active_parameters(styx: Styx, workflow: str) -> list[str]:
    states = styx.ok("ls", "-c", BLOCKED, "--json").json().get(f"{BLOCKED}#{workflow}", [])
    return [state["workflow_instance"]["parameter"] for state in states]


def test_unknown_backfill_is_an_api_error(styx: Styx) -> None:
    result = styx("backfill", "show", "backfill-0000000000000-00000")
    assert result.code == ExitStatus.API_ERROR
    assert re.fullmatch(rf"API error: 404 backfill not found {REQUEST_ID_SUFFIX}", result.stderr.strip())
