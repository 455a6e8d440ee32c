"""`styx logs` against a running service that runs real containers: the output while the container exists,
`--follow` as it grows, and from the store once the container was removed (docs/cli.md)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from styx_actors.actors.janitor import clean_up_executions
from styx_actors.cli.errors import ExitStatus
from styx_actors.cli.logs import ANCHOR_CHARS, unseen_output
from styx_actors.runners.docker import DockerRunner
from styx_actors.settings import Settings
from styx_actors.store.sqlite import SqliteStore
from tests.cli.conftest import IMAGE, REQUEST_ID_SUFFIX, Styx, serve, service_settings

COMPONENT = "logs"
# Three lines a second apart: `--follow` reads the output several times while it grows.
COUNTING = (
    f"id: counting\nschedule: daily\ndocker_image: {IMAGE}\n"
    "docker_args: [sh, -c, 'for i in 1 2 3; do echo line $i; sleep 1; done']\n"
)
GREETING = (
    f"id: greeting\nschedule: daily\ndocker_image: {IMAGE}\ndocker_args: [sh, -c, 'echo hello $STYX_PARAMETER ☃']\n"
)


@dataclass(frozen=True)
class Service:
    styx: Styx
    settings: Settings

    def remove_finished_containers(self) -> None:
        """One round of the service's janitor once the grace period has passed: it keeps the end of each
        finished container's output in the store, then removes the container."""
        asyncio.run(self._clean_up())

    async def _clean_up(self) -> None:
        store = SqliteStore(self.settings.data_dir / "styx.db")
        runner = DockerRunner(self.settings.model_copy(update={"container_grace_period": timedelta(0)}))
        await store.open()
        try:
            await clean_up_executions(store, runner)
        finally:
            await runner.close()
            await store.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, cli_home: Path) -> Iterator[Service]:
    """A service whose own janitor leaves containers alone for an hour: tests remove them when they want."""
    data_dir = tmp_path_factory.mktemp("service")
    overrides = {
        "container_grace_period": timedelta(hours=1),
        "docker_installation_id": f"styx-cli-logs-{uuid.uuid4().hex[:8]}",
    }
    with serve(data_dir, **overrides) as url:
        yield Service(Styx(url, cli_home), service_settings(data_dir, **overrides))


@pytest.mark.docker
def test_follow_prints_the_output_as_it_grows_once_and_ends_with_the_instance(service: Service) -> None:
    styx = service.styx
    styx.ok("workflow", "create", COMPONENT, stdin=COUNTING)
    styx.ok("trigger", COMPONENT, "counting", "2024-01-01")
    followed = styx.ok("logs", COMPONENT, "counting", "2024-01-01", "--follow")
    assert followed.stdout == "line 1\nline 2\nline 3\n"
    assert followed.stderr == ""
    assert styx.ok("logs", COMPONENT, "counting", "2024-01-01").stdout == "line 1\nline 2\nline 3\n"


@pytest.mark.docker
def test_logs_come_from_the_store_once_the_container_is_removed(service: Service) -> None:
    styx = service.styx
    styx.ok("workflow", "create", COMPONENT, stdin=GREETING)
    for parameter in ("2024-01-01", "2024-01-02"):
        styx.ok("trigger", COMPONENT, "greeting", parameter)
        styx.ok("events", COMPONENT, "greeting", parameter, "--follow")  # until it succeeded
    live = styx.ok("logs", COMPONENT, "greeting", "2024-01-01", "--json").json()
    assert live["source"] == "container" and live["logs"] == "hello 2024-01-01 ☃\n"

    service.remove_finished_containers()
    assert styx.ok("logs", COMPONENT, "greeting", "2024-01-01").stdout == "hello 2024-01-01 ☃\n"
    kept = styx.ok("logs", COMPONENT, "greeting", "2024-01-01", "--execution", live["execution_id"], "--json").json()
    assert kept == {**live, "source": "store"}
    # A finished instance: --follow prints what is kept and ends.
    assert styx.ok("logs", COMPONENT, "greeting", "2024-01-02", "--follow").stdout == "hello 2024-01-02 ☃\n"

    other = styx("logs", COMPONENT, "greeting", "2024-01-02", "--execution", live["execution_id"])
    assert other.code == ExitStatus.API_ERROR
    refusal = f"API error: 404 Workflow instance has no execution {re.escape(live['execution_id'])} {REQUEST_ID_SUFFIX}"
    assert re.fullmatch(refusal, other.stderr.strip())
    never = styx("logs", COMPONENT, "greeting", "2024-01-09", "--follow")  # not active, never ran: no waiting
    assert never.code == ExitStatus.API_ERROR and never.stdout == ""
    assert re.fullmatch(f"API error: 404 Workflow instance has no execution {REQUEST_ID_SUFFIX}", never.stderr.strip())


def test_unseen_output_is_what_a_later_read_adds() -> None:
    assert unseen_output("", "a\n") == "a\n"
    assert unseen_output("a\n", "a\nb\n") == "b\n"
    assert unseen_output("a\nb\n", "a\nb\n") == ""
    # The read holds only the end of the output: it moved on past the start of what was seen.
    lines = [f"line {number}\n" for number in range(100)]
    seen = "".join(lines[:60])
    assert len(seen) > ANCHOR_CHARS  # what was seen last is found by its end, not all of it
    assert unseen_output(seen, "".join(lines[30:80])) == "".join(lines[60:80])  # an overlap longer than the anchor
    assert unseen_output(seen, "".join(lines[50:80])) == "".join(lines[60:80])  # and a shorter one
    assert unseen_output(seen, "".join(lines[45:60])) == ""  # a shorter read of the same end (the store's tail)
    # More was written in between than one read holds.
    assert unseen_output(seen, "".join(lines[70:90])) is None
