"""What the CLI makes of its inputs: hosts, `-e` entries, backfill partitions, workflow files, serve flags,
and the example workflow files (in-process; no server)."""

from __future__ import annotations

import argparse

import pytest

from styx_actors.cli.arguments import env_vars, partition_instant
from styx_actors.cli.client import DEFAULT_HOST, HOST_ENV, resolve_host
from styx_actors.cli.errors import ArgumentError, InputError, UnknownError
from styx_actors.cli.workflow_files import MINIMAL_EXAMPLE, read_workflow_documents
from styx_actors.model import Workflow, WorkflowConfiguration
from styx_actors.validation import workflow_errors
from styx_server.cli import build_parser, service_settings
from tests.cli.conftest import EXAMPLES, IMAGE


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("localhost", "http://localhost"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("styx.example.com", "https://styx.example.com"),
        ("10.1.2.3:8080", "https://10.1.2.3:8080"),
        ("http://styx.example.com/", "http://styx.example.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_hosts_get_a_scheme_by_where_they_are(given: str, resolved: str) -> None:
    assert resolve_host(given) == resolved


def test_host_comes_from_option_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOST_ENV, raising=False)
    assert resolve_host(None) == DEFAULT_HOST
    monkeypatch.setenv(HOST_ENV, "styx.example.com")
    assert resolve_host(None) == "https://styx.example.com"
    assert resolve_host("127.0.0.1:9") == "http://127.0.0.1:9"


def test_hosts_that_are_not_urls_are_argument_errors() -> None:
    for host in ("ftp://example.com", "http://", "http://:80"):
        with pytest.raises(ArgumentError, match="invalid Styx API host"):
            resolve_host(host)


def test_env_entries() -> None:
    assert env_vars(None) == {}
    assert env_vars(["A=1", "B=", "C=x=y", "A=2"]) == {"A": "2", "B": "", "C": "x=y"}
    for malformed in ("A", "=1"):
        with pytest.raises(UnknownError, match="expected KEY=VALUE"):
            env_vars([malformed])


def test_partitions_are_utc_dates_or_datehours() -> None:
    start = partition_instant("start")
    assert start("2019-05-01") == "2019-05-01T00:00:00Z"
    assert start("2019-05-01T07") == "2019-05-01T07:00:00Z"
    for text in ("2019-5-1", "2019-05-01T7", "2019-05-01T24", "2019-02-30", "2019-05-01T07:00", "yesterday"):
        with pytest.raises(
            argparse.ArgumentTypeError,
            match=r"^could not parse date/datehour for parameter 'start'; if datehour: \[.+\], if date: \[.+\]$",
        ):
            start(text)


def read_workflow_configurations(text: str) -> list[WorkflowConfiguration]:
    return [document.configuration for document in read_workflow_documents(text)]


def test_workflow_documents_read_plain_scalars_as_text() -> None:
    [configuration] = read_workflow_configurations(
        "id: 123\nschedule: daily\ndocker_image: busybox\ndocker_args: [sleep, 10]\n"
        "docker_termination_logging: true\nrunning_timeout: 7200\n"
        "env: {PORT: 8080, DAY: 2019-05-01, FLAG: yes}\noffset:\n"
    )
    assert configuration.id == "123"
    assert configuration.docker_args == ["sleep", "10"]
    assert configuration.docker_termination_logging is True
    assert configuration.running_timeout is not None and configuration.running_timeout.total_seconds() == 7200
    assert configuration.env == {"PORT": "8080", "DAY": "2019-05-01", "FLAG": "yes"}
    assert configuration.offset is None


def test_json_and_multi_document_files() -> None:
    assert [c.id for c in read_workflow_configurations('{"id": "a", "schedule": "hours", "env": {"N": 1}}')] == ["a"]
    text = "---\nid: a\nschedule: daily\n---\n---\nid: b\nschedule: hourly\n...\n"
    assert [c.id for c in read_workflow_configurations(text)] == ["a", "b"]


def test_unknown_keys_are_kept_for_a_warning_with_the_closest_known_key() -> None:
    text = "id: a\nschedule: daily\ndocker_arg: [echo]\ncolour: blue\n---\nid: b\nschedule: daily\n"
    first, second = read_workflow_documents(text)
    assert first.configuration.docker_args is None  # ignored, as Styx ignores it
    assert first.unknown_keys == ["docker_arg", "colour"]
    assert first.unknown_key_warnings() == [
        "workflow a: unknown key 'docker_arg' is ignored (did you mean docker_args?)",
        "workflow a: unknown key 'colour' is ignored",
    ]
    assert second.unknown_keys == [] and second.unknown_key_warnings() == []


def test_structural_problems_name_the_document_and_field() -> None:
    with pytest.raises(InputError) as raised:
        read_workflow_configurations("id: a\nschedule: daily\n---\nid: b\ndocker_args: {x: 1}\n")
    message = raised.value.message
    assert (
        "problem: document 2 (b): schedule: Field required; docker_args.0: Input should be a valid string\n" in message
    )
    assert message.endswith(f"\n{MINIMAL_EXAMPLE}")
    assert (
        "========================\nid: bar\nschedule: DAYS\ndocker_image: busybox\ndocker_args: [echo, bar]\n"
        in message
    )


def test_every_example_file_is_a_valid_set_of_workflows_of_the_test_image() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {path.name for path in files} >= {"hello.yaml", "hourly-report.yaml", "pipeline.yaml"}
    for path in files:
        documents = read_workflow_documents(path.read_text())
        assert [document.unknown_keys for document in documents] == [[]] * len(documents), path.name
        for configuration in (document.configuration for document in documents):
            assert workflow_errors(Workflow.create("examples", configuration)) == [], (path.name, configuration.id)
            assert configuration.docker_image == IMAGE
    assert len(read_workflow_configurations((EXAMPLES / "pipeline.yaml").read_text())) > 1
    [report] = read_workflow_configurations((EXAMPLES / "hourly-report.yaml").read_text())
    assert report.resources == ["reports"] and report.env and report.schedule == "hourly"
    [hello] = read_workflow_configurations((EXAMPLES / "hello.yaml").read_text())
    assert (hello.schedule, hello.docker_args) == ("daily", ["echo", "hello", "{}"])


def test_serve_flags_override_styx_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYX_PORT", "9999")
    monkeypatch.setenv("STYX_RUNNER", "noop")
    monkeypatch.setenv("STYX_AUTH", "none")
    args = build_parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--runner", "docker", "--store", "redis://h:1/0", "--ray-address", "auto"]
    )
    settings = service_settings(args)
    assert (settings.host, settings.port, settings.runner, settings.store, settings.ray_address, settings.auth) == (
        "0.0.0.0",
        9999,
        "docker",
        "redis://h:1/0",
        "auto",
        "none",
    )
    assert settings.debug is False
    assert service_settings(build_parser().parse_args(["serve", "--debug"])).debug is True
    monkeypatch.setenv("STYX_PORT", "not-a-port")
    with pytest.raises(ArgumentError, match="invalid service settings .*port"):
        service_settings(build_parser().parse_args(["serve"]))


def test_global_options_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-H", "h1", "--json", "backfill", "ls", "-c", "comp"])
    after = parser.parse_args(["backfill", "ls", "--plain", "-c", "comp", "--host", "h2", "--debug"])
    assert (before.host, before.json, getattr(before, "plain", False)) == ("h1", True, False)
    assert (after.host, after.plain, after.debug, after.component) == ("h2", True, True, "comp")
    assert parser.parse_args(["--plain", "ls"]).plain is True
