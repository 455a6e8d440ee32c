"""The janitor keeps the end of each execution's output in the store just before it removes the container
(docs/runner.md, "Output after the container"), on SQLite and on Redis, with a real Docker Engine."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import docker
import pytest
import redis

from styx_actors.actors.janitor import clean_up_executions
from styx_actors.clock import ManualClock
from styx_actors.runners.docker import OUTPUT_KEEP_RETRY_WINDOW, DockerRunner, _engine_time
from styx_actors.settings import Settings
from styx_actors.store.base import ExecutionOutput, Store
from styx_actors.store.redis import RedisStore
from styx_actors.store.sqlite import SqliteStore
from styx_actors.timeutil import to_millis
from tests.conftest import RedisServer
from tests.integration.test_docker_runner import (  # noqa: F401 - fixtures: clock, engine, installation, settings
    clock,
    containers_of,
    engine,
    eventually,
    installation,
    run_to_exit,
    settings,
    spec_for,
)

pytestmark = pytest.mark.docker

DAY = timedelta(days=1)
NUMBERS = "".join(f"{number}\n" for number in range(1, 101))  # what `seq 1 100` prints: 292 bytes


@pytest.fixture
def keeping_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"output_tail_bytes": 64, "output_retention": DAY})


async def test_the_end_of_each_containers_output_is_kept_before_it_is_removed(
    store: Store, keeping_settings: Settings, clock: ManualClock, engine: docker.APIClient, installation: str
) -> None:
    runner = DockerRunner(keeping_settings, clock)
    try:
        finished = spec_for(["seq", "1", "100"])
        # Wanted by no active instance (say, halted while its stop failed): removed while it still runs.
        running = spec_for(["sh", "-c", "echo started >&2; sleep 300"], parameter="2016-03-15")
        await run_to_exit(runner, finished)
        await runner.start(running)
        await eventually(lambda: runner.logs(running.execution_id), lambda output: output == "started\n")
        finished_at = _engine_time(engine.inspect_container(finished.execution_id)["State"]["FinishedAt"])
        removed_at = clock.advance(keeping_settings.container_grace_period + timedelta(seconds=30))

        await clean_up_executions(store, runner)
    finally:
        await runner.close()

    assert containers_of(engine, installation) == []
    day_millis = DAY // timedelta(milliseconds=1)
    assert finished_at is not None
    ended_at = to_millis(finished_at)
    # its last 64 bytes, kept for a day from the end of the execution
    expected = ExecutionOutput(finished.instance, finished.execution_id, ended_at, NUMBERS[-64:], ended_at + day_millis)
    assert await store.execution_output(finished.instance, finished.execution_id) == expected
    ended_at = to_millis(removed_at)  # it never finished: it ended when it was removed; stderr is output too
    expected = ExecutionOutput(running.instance, running.execution_id, ended_at, "started\n", ended_at + day_millis)
    assert await store.execution_output(running.instance, running.execution_id) == expected


async def test_a_container_whose_output_cannot_be_kept_stays_for_a_while(
    volatile_redis: RedisServer,
    keeping_settings: Settings,
    clock: ManualClock,
    engine: docker.APIClient,
    installation: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisStore(volatile_redis.url)
    await store.open()
    runner = DockerRunner(keeping_settings, clock)
    try:
        finished = spec_for(["echo", "kept or not"])
        await run_to_exit(runner, finished)
        clock.advance(keeping_settings.container_grace_period + timedelta(seconds=30))
        with redis.Redis.from_url(volatile_redis.url) as admin:
            admin.config_set("maxmemory", 1)  # full: every write is refused, reads still answer
        with caplog.at_level(logging.WARNING, logger="styx_actors.runners.docker"):
            await clean_up_executions(store, runner)
            assert len(containers_of(engine, installation)) == 1  # it waits for a store that takes the output
            clock.advance(OUTPUT_KEEP_RETRY_WINDOW)
            await clean_up_executions(store, runner)
            assert containers_of(engine, installation) == []  # not for ever: the engine's disk matters too
    finally:
        await runner.close()
        await store.close()
    notices = [record.getMessage() for record in caplog.records if finished.execution_id in record.getMessage()]
    assert len(notices) == 2
    assert "stays for the next cleanup" in notices[0] and "maxmemory" in notices[0]
    assert "removed anyway" in notices[1]


async def test_no_output_is_kept_when_the_tail_is_zero_bytes(
    store: Store, settings: Settings, clock: ManualClock, engine: docker.APIClient, installation: str
) -> None:
    runner = DockerRunner(settings.model_copy(update={"output_tail_bytes": 0}), clock)
    try:
        finished = spec_for(["echo", "not kept"])
        await run_to_exit(runner, finished)
        clock.advance(settings.container_grace_period + timedelta(seconds=30))
        await clean_up_executions(store, runner)
    finally:
        await runner.close()
    assert containers_of(engine, installation) == []
    assert await store.execution_outputs(finished.instance) == []


async def test_the_janitor_deletes_outputs_past_their_retention(
    tmp_path: Path, settings: Settings, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "styx.db")
    await store.open()
    runner = DockerRunner(settings, clock)
    try:
        expired = ExecutionOutput(spec_for(["true"]).instance, "styx-run-old", 0, "old", expires_at=1)
        await store.put_execution_output(expired)
        await clean_up_executions(store, runner)
        assert await store.delete_expired_outputs(10) == 0  # the janitor's round deleted it already
    finally:
        await runner.close()
        await store.close()
