"""What one finished instance costs the store: Redis memory and SQLite file bytes per instance.

    python benchmarks/store_memory.py [--count 1000 --count 10000] [--batch 1000]

For each count N, writes N finished instances into an empty store through `Store.commit()`, each the seven
transitions of a natural trigger that runs once and succeeds (triggerExecution, dequeue, submit, submitted,
started, terminate 0, success) made by the state machine from real events, over 100 hourly workflows.
Redis: a fresh redis-server started here (AOF on, as in production), `used_memory` after minus before, per
instance. SQLite: a temporary file, its size after minus the size of the empty schema, per instance. Then
`delete_expired_history` removes them all in the janitor's batches, timed, and for Redis what is left is
printed (keys, memory). The sizing rule built on these figures is in docs/store.md, "Retention and sizing".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import redis
from store_recovery import redis_server

from styx_actors.actors.janitor import HISTORY_EXPIRY_BATCH
from styx_actors.events import (
    Dequeue,
    Event,
    Started,
    Submit,
    Submitted,
    Success,
    Terminate,
    TriggerExecution,
    event_to_json_text,
)
from styx_actors.execution import execution_description, new_execution_id
from styx_actors.model import (
    Trigger,
    TriggerParameters,
    Workflow,
    WorkflowConfiguration,
    WorkflowInstance,
)
from styx_actors.state_machine import new_instance_state, transition
from styx_actors.store import open_store
from styx_actors.store.base import Store, Transition
from styx_actors.timeutil import UTC, to_millis

COMPONENT = "benchmark"
WORKFLOWS = 100  # the instances are spread over this many hourly workflows of one component
FIRST_PARTITION = datetime(2024, 1, 1, tzinfo=UTC)
STEP_MILLIS = 1_000  # between two transitions of one run
TRANSITIONS_PER_RUN = 7


def workflow(number: int) -> Workflow:
    """An hourly job as deployment pipelines write them: an image, arguments with the partition, env."""
    configuration = WorkflowConfiguration(
        id=f"workflow-{number:03d}",
        schedule="hours",
        docker_image="registry.example.com/team/job:1.2.3",
        docker_args=["--date", "{}", "--verbose"],
        env={"STAGE": "production", "OWNER": "team"},
        resources=["bigquery"],
    )
    return Workflow.create(COMPONENT, configuration)


def finished_run(job: Workflow, parameter: str, started_at: int) -> list[Transition]:
    """The transitions of one instance from its natural trigger to DONE, as an instance actor commits them
    (the submit is what PREPARE sends for a valid workflow: styx_actors/execution.py)."""
    instance = WorkflowInstance(workflow_id=job.id, parameter=parameter)
    state = new_instance_state(instance, latest_event_counter=-1, now_millis=started_at)
    transitions: list[Transition] = []

    def apply(event: Event) -> None:
        nonlocal state
        state = transition(state, event, started_at + len(transitions) * STEP_MILLIS)
        transitions.append(Transition(state, event_to_json_text(event, instance), insert=not transitions))

    apply(TriggerExecution(trigger=Trigger.natural(), parameters=TriggerParameters()))
    apply(Dequeue(resource_ids=tuple(job.configuration.resources)))
    apply(Submit(execution_description=execution_description(job, state), execution_id=new_execution_id()))
    apply(Submitted(execution_id=state.data.execution_id, runner_id="default"))
    apply(Started())
    apply(Terminate(exit_code=0))
    apply(Success())
    assert len(transitions) == TRANSITIONS_PER_RUN and state.state.is_terminal
    return transitions


def runs(count: int) -> Iterator[list[Transition]]:
    workflows = [workflow(number) for number in range(WORKFLOWS)]
    for number in range(count):
        partition = FIRST_PARTITION + timedelta(hours=number // WORKFLOWS)
        started_at = to_millis(partition + timedelta(hours=1))
        yield finished_run(workflows[number % WORKFLOWS], f"{partition:%Y-%m-%dT%H}", started_at)


async def write_finished(store: Store, count: int, batch: int) -> int:
    """Commit `count` finished runs, `batch` transitions per commit (whole runs); a cutoff after every finish."""
    pending: list[Transition] = []
    for run in runs(count):
        pending += run
        if len(pending) >= batch:
            assert all(await store.commit(pending)), "the benchmark store was not empty"
            pending = []
    if pending:
        assert all(await store.commit(pending)), "the benchmark store was not empty"
    return to_millis(FIRST_PARTITION + timedelta(hours=count // WORKFLOWS + 2))


@contextlib.asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def delete_all(store: Store, finished_before: int, count: int) -> float:
    """Delete every finished instance's history in the janitor's batches; the seconds it took."""
    started = time.perf_counter()
    deleted = 0
    while batch_deleted := await store.delete_expired_history(finished_before, HISTORY_EXPIRY_BATCH):
        deleted += batch_deleted
    assert deleted == count, f"deleted {deleted} of {count}"
    return time.perf_counter() - started


def measure_redis(count: int, batch: int) -> dict[str, float]:
    """used_memory per instance written; then, once their history is deleted, the keys left (none should be)
    and used_memory above its start, before and after a FLUSHALL (what FLUSHALL frees was data)."""
    with redis_server() as url, redis.Redis.from_url(url) as client:
        store = open_store(url)

        def used() -> int:
            return int(client.info("memory")["used_memory"])

        async def scenario() -> dict[str, float]:
            async with opened(store):
                before = used()
                cutoff = await write_finished(store, count, batch)
                written = used()
                seconds = await delete_all(store, cutoff, count)
                return {"before": before, "written": written, "deleted": used(), "delete_seconds": seconds}

        figures = asyncio.run(scenario())
        keys_left = int(client.dbsize())
        client.flushall()
        flushed = used()
    return {
        "per_instance": (figures["written"] - figures["before"]) / count,
        "keys_left": keys_left,
        "left_kib": (figures["deleted"] - figures["before"]) / 1024,
        "flushed_kib": (flushed - figures["before"]) / 1024,
        "deleted_per_second": count / figures["delete_seconds"],
    }


def measure_sqlite(count: int, batch: int) -> dict[str, float]:
    """File bytes per instance written (the WAL checkpointed into the file by closing), then the deletion."""
    with tempfile.TemporaryDirectory(prefix="styx-bench-sqlite-") as directory:
        path = Path(directory) / "styx.db"

        async def scenario() -> dict[str, float]:
            store = open_store(f"sqlite:///{path}")
            async with opened(store):  # the last connection to close checkpoints the WAL into the file
                pass
            empty = path.stat().st_size
            async with opened(store):
                cutoff = await write_finished(store, count, batch)
            written = path.stat().st_size
            async with opened(store):
                seconds = await delete_all(store, cutoff, count)
            return {"per_instance": (written - empty) / count, "deleted_per_second": count / seconds}

        return asyncio.run(scenario())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, action="append", help="finished instances (repeatable; 1000 and 10000)")
    parser.add_argument("--batch", type=int, default=1000, help="transitions per commit() (default 1000)")
    args = parser.parse_args()
    counts = args.count or [1_000, 10_000]
    print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}; {TRANSITIONS_PER_RUN} events each")
    for count in counts:
        memory = measure_redis(count, args.batch)
        disk = measure_sqlite(count, args.batch)
        print(
            f"{count:>7,} finished instances"
            f" | redis used_memory {memory['per_instance']:,.0f} B/instance;"
            f" deleted at {memory['deleted_per_second']:,.0f}/s, then {memory['keys_left']:.0f} keys and"
            f" {memory['left_kib']:,.0f} KiB above the start ({memory['flushed_kib']:,.0f} after FLUSHALL)"
            f" | sqlite file {disk['per_instance']:,.0f} B/instance; deleted at {disk['deleted_per_second']:,.0f}/s"
        )


if __name__ == "__main__":
    main()
