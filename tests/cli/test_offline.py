"""The CLI without a reachable API: help, version, argument errors and the checks made before any request.

The host points at a loopback port where nothing listens, so a command that sent a request would end with
status 3; the statuses asserted here prove which checks happen first.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

from styx_actors.cli.errors import ExitStatus
from styx_actors.cli.version import VERSION_TEXT
from tests.cli.conftest import Styx, cli_environment, run_cli
from tests.conftest import free_port


def test_no_arguments_prints_help_and_succeeds(cli_home: Path) -> None:
    result = run_cli([], cli_home)
    assert result.code == ExitStatus.SUCCESS
    assert result.stdout.startswith("usage: styx")
    for command in (
        "ls (list)",
        "events (e)",
        "trigger (t)",
        "halt (h)",
        "retry (r)",
        "backfill",
        "resource",
        "workflow",
        "serve",
        "version",
    ):
        assert command in result.stdout


def test_version_as_option_command_and_json(offline_styx: Styx) -> None:
    assert offline_styx.ok("--version").stdout.strip() == VERSION_TEXT
    assert offline_styx.ok("ls", "--version").stdout.strip() == VERSION_TEXT  # global options also after the command
    assert offline_styx.ok("version").stdout.strip() == VERSION_TEXT
    assert offline_styx.ok("version", "--json").json() == VERSION_TEXT


def test_the_installed_styx_script_runs_the_cli(cli_home: Path) -> None:
    script = shutil.which("styx", path=str(Path(sys.executable).parent)) or shutil.which("styx")
    assert script is not None, "the `styx` console script is not installed (pip install -e .)"
    completed = subprocess.run(
        [script, "--version"], check=False, capture_output=True, text=True, env=cli_environment(cli_home), timeout=60
    )
    assert (completed.returncode, completed.stdout.strip()) == (0, VERSION_TEXT)


def test_argument_errors_exit_with_status_2(offline_styx: Styx) -> None:
    for args in (
        ["frobnicate"],
        ["trigger", "c", "w"],
        ["backfill"],
        ["backfill", "create", "c", "w", "2019-05-01", "2019-05-02", "two"],
        ["workflow", "delete", "c"],
        ["serve", "--runner", "kubernetes"],
    ):
        result = offline_styx(*args)
        assert result.code == ExitStatus.ARGUMENT_ERROR, args
        assert "usage: styx" in result.stderr and result.stdout == ""


def test_backfill_dates_are_dates_or_datehours(offline_styx: Styx) -> None:
    result = offline_styx("backfill", "create", "c", "w", "2019-13-01", "2019-05-02", "2")
    assert result.code == ExitStatus.ARGUMENT_ERROR
    assert "could not parse date/datehour for parameter 'start'; if datehour: [" in result.stderr
    assert "], if date: [month must be in 1..12]" in result.stderr
    result = offline_styx("backfill", "create", "c", "w", "2019-05-01", "2019-05-02T1", "2")
    assert "could not parse date/datehour for parameter 'end'" in result.stderr
    # Both forms are accepted: the request is sent (and fails to connect).
    assert (
        offline_styx("backfill", "create", "c", "w", "2019-05-01T05", "2019-05-02", "2").code == ExitStatus.CLIENT_ERROR
    )


def test_connection_refused_says_to_start_the_service(cli_home: Path) -> None:
    port = free_port()
    for args, env, shown_host in (
        (["ls"], {"STYX_CLI_HOST": f"http://127.0.0.1:{port}"}, f"http://127.0.0.1:{port}"),
        (["-H", f"127.0.0.1:{port}", "workflow", "ls"], {}, f"http://127.0.0.1:{port}"),  # loopback: http
        (["resource", "ls", "--host", f"localhost:{port}"], {}, f"http://localhost:{port}"),
    ):
        result = run_cli(args, cli_home, env=env)
        assert result.code == ExitStatus.CLIENT_ERROR, args
        assert result.stderr.startswith(f"Client error: could not connect to {shown_host} — is `styx serve` running?")


def test_malformed_env_argument_exits_with_status_1_before_any_request(offline_styx: Styx) -> None:
    for args in (
        ["trigger", "c", "w", "2019-05-01", "-e", "NO_EQUALS"],
        ["backfill", "create", "c", "w", "2019-05-01", "2019-05-02", "1", "-e", "=x"],
    ):
        result = offline_styx(*args)
        assert result.code == ExitStatus.UNKNOWN_ERROR, args
        assert "expected KEY=VALUE" in result.stderr


INVALID_WORKFLOWS = """\
id: bad-schedule
schedule: sometimes
docker_image: styx-test/busybox:latest
---
id: fine
schedule: daily
docker_image: styx-test/busybox:latest
---
id: short-timeout
schedule: hourly
docker_image: Busybox
running_timeout: PT10S
"""


def test_invalid_workflows_are_reported_locally_with_status_2(offline_styx: Styx) -> None:
    result = offline_styx("workflow", "create", "comp", stdin=INVALID_WORKFLOWS)
    assert result.code == ExitStatus.ARGUMENT_ERROR
    lines = result.stderr.splitlines()
    assert lines[:2] == ["Invalid workflow configuration: bad-schedule", "  error: invalid schedule"]
    assert lines[2].startswith("  accepted schedules: hourly, daily, weekly, monthly, yearly (also written @hourly")
    assert "or a 5-field cron expression" in lines[2]
    assert lines[3] == "Invalid workflow configuration: short-timeout"
    assert sum("accepted schedules" in line for line in lines) == 1  # only where the schedule is wrong
    assert "  error: running timeout is too small: PT10S, limit = PT1M" in lines
    assert any(line.startswith("  error: invalid image: Invalid image name (Busybox)") for line in lines)
    assert "fine" not in result.stderr and result.stdout == ""


def test_a_schedule_in_words_is_refused_with_the_accepted_forms(offline_styx: Styx) -> None:
    workflow = "id: weekly-job\nschedule: every tuesday\ndocker_image: busybox\n"
    result = offline_styx("workflow", "create", "comp", stdin=workflow)
    assert result.code == ExitStatus.ARGUMENT_ERROR
    forms = result.stderr.splitlines()[2]
    for accepted in ("daily", "@weekly", "hours", "cron expression", "'0 4 * * 1-5'"):
        assert accepted in forms


def test_component_is_validated_too(offline_styx: Styx) -> None:
    result = offline_styx("workflow", "create", "a#b", stdin="id: w\nschedule: daily\ndocker_image: busybox\n")
    assert result.code == ExitStatus.ARGUMENT_ERROR
    assert "  error: component id cannot contain #" in result.stderr.splitlines()


def test_unreadable_workflow_files_exit_with_status_6(offline_styx: Styx, tmp_path: Path) -> None:
    missing_schedule = tmp_path / "wf.json"
    missing_schedule.write_text('{"id": "bar", "docker_image": "busybox"}')
    for args, stdin, problem in (
        (["-f", str(missing_schedule)], None, "document 1 (bar): schedule: Field required"),
        ([], "id: [unclosed\n", "expected ',' or ']'"),
        (["-f", "-"], "- just\n- a list\n", "document 1 is a list, not a mapping of fields"),
        ([], "", "no workflow configuration found"),
    ):
        result = offline_styx("workflow", "create", "comp", *args, stdin=stdin)
        assert result.code == ExitStatus.INPUT_ERROR, args
        assert result.stderr.startswith("Workflow configuration doesn't conform to the expected structure, problem: ")
        assert problem in result.stderr
        assert "id: bar\nschedule: DAYS\ndocker_image: busybox\ndocker_args: [echo, bar]" in result.stderr


def test_missing_workflow_file_is_an_argument_error(offline_styx: Styx, tmp_path: Path) -> None:
    result = offline_styx("workflow", "create", "comp", "-f", str(tmp_path / "nope.yaml"))
    assert result.code == ExitStatus.ARGUMENT_ERROR
    assert "cannot read workflow file" in result.stderr and "No such file or directory" in result.stderr


def test_serve_reports_a_taken_port(cli_home: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            ["serve", "--port", str(port), "--runner", "noop", "--store", f"sqlite:///{tmp_path / 's.db'}"], cli_home
        )
    assert result.code == ExitStatus.UNKNOWN_ERROR
    assert f"styx serve: Cannot listen on 127.0.0.1:{port}" in result.stderr


def test_debug_adds_the_stack_trace_and_the_request_log(offline_styx: Styx) -> None:
    result = offline_styx("--debug", "workflow", "ls")
    assert result.code == ExitStatus.CLIENT_ERROR
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("Client error: could not connect to")
    assert "Traceback" not in offline_styx("workflow", "ls").stderr
